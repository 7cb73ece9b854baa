"""The systemd units in infra/deploy/systemd/ are what systemd would load on the VM.

`systemd-analyze verify` is systemd's own check: it parses each unit as systemd does (unknown
keys, bad values and specifiers are reported) and checks that every command it would run is
an executable. On the VM the commands live under /opt/marketplace, where cloud-init clones this
repository; here the same files are verified with that install prefix pointed at this checkout,
whose .venv/ and infra/ are a real install of the same code (nothing is mocked: the gunicorn,
haproxy and redis-server that verify finds are the ones that run). The structural tests below
run everywhere, with or without systemd."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.config import INSTANCE_PORT_BASE, TIERS
from tests.deploy.deployfiles import (INSTALL_PREFIX, REPO_DIR, UNIT_DIR, UNIT_FILES,
                                      parse_unit)

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
TIER_TEMPLATES = [UNIT_DIR / f"marketplace-{tier}@.service" for tier in TIERS]
SERVICES = [path for path in UNIT_FILES if path.suffix == ".service"]
LONG_RUNNING = [path for path in SERVICES if path.name != "marketplace-prepare.service"]

by_unit = pytest.mark.parametrize("path", UNIT_FILES, ids=lambda path: path.name)
by_service = pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.name)
by_daemon = pytest.mark.parametrize("path", LONG_RUNNING, ids=lambda path: path.name)
by_tier = pytest.mark.parametrize("path", TIER_TEMPLATES, ids=lambda path: path.name)


def service(path: Path) -> dict[str, list[str]]:
    return parse_unit(path)["Service"]


def one(values: list[str]) -> str:
    assert len(values) == 1, values
    return values[0]


def environment(path: Path) -> dict[str, str]:
    return dict(value.split("=", 1) for value in service(path).get("Environment", []))


# --- systemd's own check ------------------------------------------------------------------
@pytest.fixture(scope="module")
def units_installed_at_this_checkout(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("units")
    for path in UNIT_FILES:
        (folder / path.name).write_text(path.read_text().replace(INSTALL_PREFIX, str(REPO_DIR)))
    return folder


def verify_name(path: Path) -> str:
    # A template is verified as one of its instances (what `systemctl enable` installs).
    return path.name.replace("@.", "@1.")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed "
                    "(Debian/Ubuntu package `systemd`); the structural tests below still ran")
@by_unit
def test_systemd_analyze_verify_accepts_the_unit(path, units_installed_at_this_checkout):
    if not (REPO_DIR / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv/ in this checkout: the units' ExecStart= would not exist "
                    "(`make venv` creates it)")
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", verify_name(path)],
        cwd=units_installed_at_this_checkout, capture_output=True, text=True, timeout=60)
    # verify exits 0 on warnings such as an unknown key: any output at all is a finding.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_reports_a_misspelt_key(tmp_path):
    unit = tmp_path / "broken.service"
    unit.write_text("[Service]\nExecStart=/bin/true\nRestrat=on-failure\n")
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, timeout=60)
    assert "Unknown key" in result.stdout + result.stderr


# --- structure ------------------------------------------------------------------------------
@by_unit
def test_unit_parses_as_sections_of_keys(path):
    assert "Unit" in parse_unit(path)


def test_the_target_starts_at_boot():
    target = parse_unit(UNIT_DIR / "marketplace.target")
    assert target["Install"]["WantedBy"] == ["multi-user.target"]


@by_service
def test_service_is_part_of_the_target_and_enabled_into_it(path):
    unit = parse_unit(path)
    assert unit["Unit"]["PartOf"] == ["marketplace.target"]
    assert unit["Install"]["WantedBy"] == ["marketplace.target"]


@by_daemon
def test_daemon_restarts_on_failure(path):
    assert one(service(path)["Restart"]) == "on-failure"


@by_service
def test_service_is_hardened(path):
    settings = service(path)
    assert one(settings["NoNewPrivileges"]) == "yes"
    assert (settings.get("ProtectSystem") == ["strict"]
            or settings.get("DynamicUser") == ["yes"])  # DynamicUser implies strict
    assert settings.get("PrivateTmp") == ["yes"] or settings.get("DynamicUser") == ["yes"]
    assert settings.get("User") != ["root"]
    assert "User" in settings or settings.get("DynamicUser") == ["yes"]


@by_tier
def test_tier_runs_as_the_service_user_from_the_repository_gunicorn_settings(path):
    settings = service(path)
    assert one(settings["User"]) == "marketplace"
    command = one(settings["ExecStart"]).split()
    assert command[0] == f"{INSTALL_PREFIX}/.venv/bin/python"
    config = command[command.index("-c") + 1]
    assert (REPO_DIR / Path(config).relative_to(INSTALL_PREFIX)).is_file()


@by_tier
def test_tier_instance_listens_on_the_native_stacks_port_for_its_number(path):
    tier = path.name.removeprefix("marketplace-").removesuffix("@.service")
    bind = environment(path)["LAB_GUNICORN_BIND"]
    # instance N (%i) of a tier listens on base + N, as infra/config.py lays ports out
    assert bind == f"127.0.0.1:{str(INSTANCE_PORT_BASE[tier] + 1)[:-1]}%i"
    assert environment(path)["LAB_INSTANCE"] == f"{tier}%i"
    assert environment(path)["LAB_TIER"] == tier


@by_tier
def test_only_the_experience_and_entity_tiers_read_the_service_credential(path):
    files = service(path)["EnvironmentFile"]
    has_token = "/etc/marketplace/service-token.env" in files
    assert has_token == (path.name != "marketplace-web@.service")
    if not has_token:
        assert environment(path)["LAB_SERVICE_TOKEN"] == "not-issued-to-the-web-tier"


def test_the_entity_tier_waits_for_the_migrated_database_and_may_write_it_alone():
    entity = parse_unit(UNIT_DIR / "marketplace-entity@.service")
    assert "marketplace-prepare.service" in entity["Unit"]["Requires"]
    assert one(entity["Service"]["StateDirectory"]) == "marketplace"
    for tier in ("web", "experience"):
        assert "StateDirectory" not in service(UNIT_DIR / f"marketplace-{tier}@.service")


def test_every_lab_variable_the_units_set_is_one_the_code_reads():
    settings = (REPO_DIR / "app" / "marketplace" / "settings.py").read_text()
    read = set(re.findall(r'(?:env|env_bool|generated_secret)\("(\w+)"', settings))
    read = {f"LAB_{name}" for name in read}
    read |= set(re.findall(r"LAB_\w+", (REPO_DIR / "infra" / "gunicorn.conf.py").read_text()))
    for path in SERVICES:
        set_here = {name for name in environment(path) if name.startswith("LAB_")}
        assert set_here - read == set(), path.name


def test_haproxy_runs_the_repository_config_on_port_80_without_root():
    settings = service(UNIT_DIR / "marketplace-haproxy.service")
    assert environment(UNIT_DIR / "marketplace-haproxy.service")["CONFIG"] == (
        f"{INSTALL_PREFIX}/infra/haproxy/haproxy.cfg")
    assert (REPO_DIR / "infra" / "haproxy" / "haproxy.cfg").is_file()
    assert one(settings["AmbientCapabilities"]) == "CAP_NET_BIND_SERVICE"
    assert one(settings["DynamicUser"]) == "yes"
    assert settings["EnvironmentFile"] == ["/etc/marketplace/haproxy.env"]


def test_redis_gets_its_password_as_a_credential_not_a_readable_file():
    settings = service(UNIT_DIR / "marketplace-redis.service")
    assert one(settings["LoadCredential"]) == "redis.conf:/etc/marketplace/redis.conf"
    assert "${CREDENTIALS_DIRECTORY}/redis.conf" in one(settings["ExecStart"])
