"""infra/deploy/configure.py writes the VM's settings: secrets generated on the spot, kept across
runs, in root-only files; HAProxy's variables such that the repository's haproxy.cfg parses
with them and serves the web frontend on port 80; nothing the web tier must not have."""
import re
import shutil
import stat
import subprocess

import pytest

from infra.config import StackConfig
from infra.deploy import configure
from tests.deploy.deployfiles import REPO_DIR, UNIT_DIR, parse_unit

HAPROXY = shutil.which("haproxy")


def read_env(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines()
                if line and not line.startswith("#"))


@pytest.fixture
def etc(tmp_path):
    folder = tmp_path / "etc-marketplace"
    configure.configure(StackConfig(web=3, experience=2, entity=1), etc_dir=folder,
                        allowed_hosts=["203.0.113.7", "localhost"])
    return folder


def test_every_file_the_units_read_is_written(etc):
    read_by_units = set()
    for path in UNIT_DIR.glob("*.service"):
        service = parse_unit(path)["Service"]
        read_by_units.update(value.lstrip("-") for value in service.get("EnvironmentFile", []))
        read_by_units.update(value.split(":", 1)[1] for value in
                             service.get("LoadCredential", []))
    assert {path.replace("/etc/marketplace", str(etc)) for path in read_by_units} <= {
        str(path) for path in etc.iterdir()}


def test_settings_and_secrets_are_readable_by_root_only(etc):
    assert stat.S_IMODE(etc.stat().st_mode) == 0o700
    for path in [*etc.iterdir(), *(etc / "secrets").iterdir()]:
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_secrets_are_generated_once_and_kept_when_run_again(etc):
    first = read_env(etc / "env")["LAB_SECRET_KEY"]
    configure.configure(StackConfig(web=1), etc_dir=etc, allowed_hosts=["localhost"])
    assert read_env(etc / "env")["LAB_SECRET_KEY"] == first
    assert len(first) >= 50


def test_two_vms_get_different_secrets(tmp_path):
    keys = []
    for name in ("one", "two"):
        configure.configure(StackConfig(), etc_dir=tmp_path / name, allowed_hosts=["x"])
        keys.append(read_env(tmp_path / name / "env")["LAB_SECRET_KEY"])
    assert keys[0] != keys[1]


def test_the_web_tiers_settings_do_not_hold_the_service_credential(etc):
    token = read_env(etc / "service-token.env")["LAB_SERVICE_TOKEN"]
    assert token not in (etc / "env").read_text()
    assert read_env(etc / "haproxy.env")["LAB_SERVICE_TOKEN"] == token


def test_every_app_setting_written_is_one_the_app_reads(etc):
    settings = (REPO_DIR / "app" / "marketplace" / "settings.py").read_text()
    read = {f"LAB_{name}" for name in
            re.findall(r'(?:env|env_bool|generated_secret)\("(\w+)"', settings)}
    read |= set(re.findall(r"LAB_\w+", (REPO_DIR / "infra" / "gunicorn.conf.py").read_text()))
    assert set(read_env(etc / "env")) - read == set()


def test_the_site_answers_to_the_given_hosts_and_talks_to_redis_with_the_password(etc):
    env = read_env(etc / "env")
    assert env["LAB_ALLOWED_HOSTS"] == "203.0.113.7,localhost"
    password = (etc / "secrets" / "redis_password").read_text().strip()
    assert env["LAB_REDIS_URL"] == f"redis://:{password}@127.0.0.1:6390/0"
    assert f"requirepass {password}" in (etc / "redis.conf").read_text()


def test_redis_may_evict_cached_pages_but_never_the_tag_versions(etc):
    conf = (etc / "redis.conf").read_text()
    assert "maxmemory-policy volatile-lru" in conf
    assert "bind 127.0.0.1" in conf


def test_haproxy_serves_the_web_frontend_on_port_80_and_one_server_per_instance(etc):
    env = read_env(etc / "haproxy.env")
    assert env["LAB_HAPROXY_WEB_BIND"] == ":80"
    assert env["LAB_HAPROXY_STATS_BIND"].startswith("127.0.0.1:")
    assert env["LAB_HAPROXY_ENTITY_BIND"].startswith("127.0.0.1:")
    assert sorted(name for name in env if re.fullmatch(r"LAB_WEB_SERVER_\d", name)) == [
        "LAB_WEB_SERVER_1", "LAB_WEB_SERVER_2", "LAB_WEB_SERVER_3"]
    assert env["LAB_WEB_SERVER_3"] == "127.0.0.1:8103"
    assert "LAB_ENTITY_SERVER_2" not in env


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
def test_the_repository_haproxy_cfg_parses_with_the_written_variables(etc):
    result = subprocess.run([HAPROXY, "-c", "-f", str(REPO_DIR / "infra" / "haproxy" /
                                                     "haproxy.cfg")],
                            env={"PATH": "/usr/sbin:/usr/bin:/bin", **read_env(
                                etc / "haproxy.env")},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_units_to_enable_are_one_per_instance():
    assert configure.instance_units(StackConfig(web=2, experience=1, entity=1)) == [
        "marketplace-entity@1.service", "marketplace-experience@1.service",
        "marketplace-web@1.service", "marketplace-web@2.service"]


def test_a_value_an_environment_file_would_mangle_is_refused():
    with pytest.raises(ValueError, match="LAB_ALLOWED_HOSTS"):
        configure.env_file({"LAB_ALLOWED_HOSTS": "a b"}, "hosts")


def test_the_command_line_adds_the_health_checks_host_and_prints_what_it_wrote(tmp_path,
                                                                              capsys):
    assert configure.main(["--etc-dir", str(tmp_path / "etc"), "--web", "1",
                           "--allowed-hosts", "shop.example.org"]) == 0
    assert "wrote" in capsys.readouterr().out
    hosts = read_env(tmp_path / "etc" / "env")["LAB_ALLOWED_HOSTS"].split(",")
    assert hosts == ["shop.example.org", "localhost", "127.0.0.1"]
