"""The compose file describes the native stack: the same services, ports, variable names and
haproxy.cfg. No Docker engine runs here, so the files are read, and HAProxy checks its
configuration with the environment the containers would give it as well as the native one."""
import re
from pathlib import Path

import pytest
import yaml

from infra import Stack, StackConfig
from infra import compose, load_balancer
from infra.config import (FRONTEND_PORTS, MAX_INSTANCES_PER_TIER, POSTGRES_PORT, REDIS_PORT,
                          REPO_DIR, STATS_PORT, TIERS)
from infra.credentials import Credentials

INFRA = REPO_DIR / "infra"
INSTANCE_SERVICES = {f"{tier}{number}": tier for tier in TIERS for number in (1, 2)}
# Compose's ${NAME}, ${NAME:-default} and ${NAME:?message} interpolation.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def placeholder_values():
    return {name: f"placeholder-{name.lower()}" for name in
            compose.compose_variables(Credentials("k", "t", "w", "r", "s", "p"))}


def interpolate(text: str, values: dict) -> str:
    def substitute(match):
        name, kind, default = match.groups()
        if name in values:
            return values[name]
        if kind == "-":
            return default
        raise AssertionError(f"compose needs ${{{name}}}, which compose-env does not write")

    return INTERPOLATION.sub(substitute, text)


@pytest.fixture(scope="module")
def services():
    text = interpolate(compose.COMPOSE_FILE.read_text(), placeholder_values())
    return yaml.safe_load(text)["services"]


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    """A native stack of the compose topology (two instances per tier, PostgreSQL); nothing
    is started, only its settings are read."""
    config = StackConfig(web=2, experience=2, entity=2, db="postgres",
                         run_dir=tmp_path_factory.mktemp("native"),
                         secrets_dir=tmp_path_factory.mktemp("secrets"))
    return Stack(config, progress=None)


def compose_environment(service: dict) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "environment is written as a mapping"
    return {name: str(value) for name, value in environment.items()}


def test_compose_has_every_process_of_the_native_stack(services, native):
    assert set(services) == {"redis", "postgres", "migrate", "haproxy", *INSTANCE_SERVICES}
    for name, tier in INSTANCE_SERVICES.items():
        env = compose_environment(services[name])
        assert env["LAB_TIER"] == tier
        assert env["LAB_INSTANCE"] == name  # its X-Served-By, as natively
    assert sorted(INSTANCE_SERVICES) == sorted(instance.name for instance in native.instances())


def test_compose_sets_every_variable_the_native_stack_gives_an_instance(services, native):
    by_design = {
        "LAB_SECRETS_DIR",  # containers get every secret in the environment instead
        "LAB_GUNICORN_BIND",  # a container binds 0.0.0.0:8000; set, but with another value
    }
    for instance in native.instances():
        native_names = {name for name in native._instance_env(instance) if
                        name.startswith("LAB_") and name not in native.config.extra_env}
        compose_names = set(compose_environment(services[instance.name]))
        if instance.tier == "web":  # natively a value that opens nothing; here none at all
            native_names.discard("LAB_SERVICE_TOKEN")
        missing = native_names - by_design - compose_names
        assert not missing, f"{instance.name} lacks {missing}"
        extra = compose_names - native_names - {"LAB_ALLOWED_HOSTS"}
        assert not extra, f"{instance.name} sets what the native stack does not: {extra}"


def test_only_experience_and_entity_containers_get_the_service_token(services):
    for name, tier in INSTANCE_SERVICES.items():
        has_token = "LAB_SERVICE_TOKEN" in compose_environment(services[name])
        assert has_token == (tier != "web"), name


def test_compose_uses_the_native_ports(services):
    app_env = compose_environment(services["web1"])
    assert app_env["LAB_REDIS_URL"].endswith(f"@redis:{REDIS_PORT}/0")
    assert app_env["LAB_PG_PORT"] == str(POSTGRES_PORT)
    assert f"{POSTGRES_PORT}" in services["postgres"]["command"]
    assert str(REDIS_PORT) in services["redis"]["command"]
    assert app_env["LAB_ENTITY_URL"] == f"http://haproxy:{FRONTEND_PORTS['entity']}"
    assert app_env["LAB_EXPERIENCE_URL"] == f"http://haproxy:{FRONTEND_PORTS['experience']}"
    published = {port.split(":")[-1]: port for port in services["haproxy"]["ports"]}
    assert set(published) == {str(FRONTEND_PORTS["web"]), str(FRONTEND_PORTS["experience"]),
                              str(STATS_PORT)}
    assert all(port.startswith("127.0.0.1:") for port in published.values())
    # the entity frontend is never published: only the stack's own containers reach it


def test_redis_runs_without_persistence_and_with_a_password_in_both(services, native):
    command = services["redis"]["command"]
    assert command[command.index("--save") + 1] == ""
    assert command[command.index("--appendonly") + 1] == "no"
    assert "--requirepass" in command


def test_haproxy_is_the_official_image_plus_the_native_haproxy_cfg(services):
    build = services["haproxy"]["build"]
    context = (compose.COMPOSE_FILE.parent / build["context"]).resolve()
    dockerfile = (context / build.get("dockerfile", "Dockerfile")).read_text()
    assert re.search(r"^FROM haproxy:2\.6\s*$", dockerfile, re.M)
    copy = re.search(r"^COPY (\S+) /usr/local/etc/haproxy/haproxy.cfg$", dockerfile, re.M)
    assert copy, "the Dockerfile copies a haproxy.cfg into the image's config path"
    assert (context / copy.group(1)).resolve() == load_balancer.HAPROXY_CFG


def test_the_app_image_runs_gunicorn_with_the_native_settings(services):
    build = services["web1"]["build"]
    context = (compose.COMPOSE_FILE.parent / build["context"]).resolve()
    assert context == REPO_DIR
    dockerfile = (context / build["dockerfile"]).read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", dockerfile, re.M)
    assert '["gunicorn", "-c", "infra/gunicorn.conf.py"]' in dockerfile
    assert "pip install -r site-requirements.txt" in dockerfile
    assert services["migrate"]["command"][:2] == ["python", "infra/prepare_database.py"]


def test_the_app_image_installs_the_sites_requirements():
    """The Dockerfile's awk keeps only the "--- the site ---" block of requirements.txt."""
    site, keep = [], False
    for line in (REPO_DIR / "requirements.txt").read_text().splitlines():
        if line.startswith("# --- "):
            keep = line.startswith("# --- the site ---")
        if keep and line and not line.startswith("#"):
            site.append(re.split(r"[=\[ ]", line)[0].lower())
    assert {"django", "gunicorn", "django-ninja", "httpx", "redis", "psycopg"} <= set(site)


def haproxy_env_from_compose(services) -> dict[str, str]:
    return compose_environment(services["haproxy"])


def test_compose_gives_haproxy_the_variables_the_native_stack_gives_it(services, native):
    required, optional = load_balancer.referenced_variables()
    compose_env = haproxy_env_from_compose(services)
    native_env = native.haproxy_environment()
    assert required <= set(native_env), required - set(native_env)
    assert required <= set(compose_env), required - set(compose_env)
    assert set(compose_env) - set(native_env) <= {"LAB_HAPROXY_DNS"}
    assert set(native_env) <= set(compose_env)
    for tier in TIERS:
        for number in (1, 2):
            variable = load_balancer.server_variable(tier, number)
            assert compose_env[variable] == f"{tier}{number}:8000"
            assert native_env[variable] == f"127.0.0.1:{native.config.instance_port(tier, number)}"
    server_slots = {name for name in optional if re.fullmatch(r"LAB_[A-Z]+_SERVER_\d", name)}
    assert len(server_slots) == len(TIERS) * (MAX_INSTANCES_PER_TIER - 1)


def run_haproxy_check(env: dict) -> str:
    return load_balancer.check_config({"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env})


def test_haproxy_cfg_is_valid_with_the_compose_environment(services):
    output = run_haproxy_check(haproxy_env_from_compose(services))
    # the service names do not resolve on this machine: those servers start in maintenance,
    # which is the only warning allowed
    for line in output.splitlines():
        if "WARNING" in line:
            assert "could not resolve address" in line, line


@pytest.mark.parametrize("instances", [1, 2, MAX_INSTANCES_PER_TIER])
def test_haproxy_cfg_is_valid_with_the_native_environment(native, instances):
    config = native.config.replace(web=instances, experience=instances, entity=instances,
                                   db="sqlite")
    output = run_haproxy_check(Stack(config, progress=None).haproxy_environment())
    assert "WARNING" not in output and "ALERT" not in output, output


@pytest.mark.parametrize("cfg", [load_balancer.HAPROXY_CFG,
                                 load_balancer.HAPROXY_CFG.with_name("naive.cfg")],
                         ids=["haproxy.cfg", "naive.cfg"])
def test_a_service_token_that_starts_with_a_dash_is_a_pattern_not_an_option(native, cfg):
    # secrets.token_urlsafe starts with "-" once in 64 tokens; HAProxy reads "-..." after
    # `-m str` as an option unless `--` ends the options
    env = {**native.haproxy_environment(), "LAB_SERVICE_TOKEN": "-starts-with-a-dash",
           "LAB_WEB_TIER_TOKEN": "-starts-with-a-dash-too"}
    output = load_balancer.check_config({"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env}, cfg)
    assert "ALERT" not in output, output


def test_haproxy_cfg_refuses_to_start_without_one_of_its_variables(native):
    env = native.haproxy_environment()
    del env["LAB_SERVICE_TOKEN"]
    with pytest.raises(Exception) as failed:
        run_haproxy_check(env)
    assert "haproxy -c" in str(failed.value)


def test_haproxy_cfg_retries_only_safe_methods_at_layer_7():
    config = load_balancer.HAPROXY_CFG.read_text()
    frontends = re.findall(r"^frontend (\w+)\n(.*?)(?=^\S)", config, re.M | re.S)
    assert {name for name, _ in frontends} == set(TIERS)
    for name, body in frontends:
        assert "http-request disable-l7-retry unless METH_GET || { method OPTIONS }" in body, name
    assert re.search(r"^\s+retry-on conn-failure empty-response response-timeout$", config, re.M)
    assert re.search(r"^\s+option redispatch 1$", config, re.M)


def test_compose_env_writes_every_variable_compose_requires(tmp_path):
    credentials = Credentials.load(tmp_path / "secrets")
    path = compose.write_env_file(credentials, tmp_path / ".env")
    assert path.stat().st_mode & 0o777 == 0o600
    written = dict(line.split("=", 1) for line in path.read_text().splitlines()
                   if line and not line.startswith("#"))
    required = {name for name, kind, _ in INTERPOLATION.findall(compose.COMPOSE_FILE.read_text())
                if kind != "-"}
    assert set(written) == required
    assert written["LAB_SERVICE_TOKEN"] == credentials.service_token


def test_env_file_is_ignored_by_git():
    ignored = (INFRA / ".gitignore").read_text().split()
    assert ".env" in ignored
    assert Path(compose.ENV_FILE).name == ".env"
