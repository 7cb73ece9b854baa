"""The cloud-init user data (infra/deploy/cloud-init*.yaml) is what cloud-init would accept: a
#cloud-config header, valid YAML, and valid against cloud-init's own schema (the copy in
infra/deploy/schema/, from Debian's cloud-init package). It asks the user for their repository
instead of naming one, and carries no secret."""
import copy
import json
import re

import jsonschema
import pytest

from tests.deploy.deployfiles import (DEPLOY_DIR, INSTALL_PREFIX, USER_DATA_FILES,
                                      load_user_data)

SCHEMA = json.loads((DEPLOY_DIR / "schema" / "schema-cloud-config-v1.json").read_text())
# cloud-init's schema is JSON Schema draft 4 (its "$schema" says so).
Validator = jsonschema.validators.validator_for(SCHEMA)
PLACEHOLDER = "REPLACE-ME"

by_name = pytest.mark.parametrize("path", USER_DATA_FILES, ids=lambda path: path.name)


def schema_errors(user_data: dict) -> list[str]:
    return [f"{'.'.join(map(str, error.absolute_path)) or '<top>'}: {error.message}"
            for error in Validator(SCHEMA).iter_errors(user_data)]


def known_top_level_keys() -> set[str]:
    """Every top-level key some module of cloud-init's schema defines. The schema itself lets
    unknown top-level keys pass (cloud-init only warns), so a misspelt `packges:` would be
    silently ignored at boot: this catches it."""
    keys = set()
    for definition in SCHEMA["$defs"].values():
        keys.update(definition.get("properties", {}))
    return keys


def test_there_is_a_native_and_a_docker_user_data_file():
    assert {path.name for path in USER_DATA_FILES} == {"cloud-init.yaml", "cloud-init-docker.yaml"}


@by_name
def test_user_data_starts_with_the_cloud_config_header(path):
    # Without this exact first line cloud-init does not treat the file as cloud-config at all.
    # https://cloudinit.readthedocs.io/en/latest/explanation/format.html#cloud-config-data
    assert path.read_text().splitlines()[0] == "#cloud-config"


@by_name
def test_user_data_is_a_yaml_mapping(path):
    assert isinstance(load_user_data(path), dict)


@by_name
def test_user_data_is_valid_against_cloud_inits_schema(path):
    assert schema_errors(load_user_data(path)) == []


@by_name
def test_user_data_uses_only_keys_cloud_init_knows(path):
    assert set(load_user_data(path)) - known_top_level_keys() == set()


def test_the_schema_check_catches_a_misspelt_key_inside_a_module():
    user_data = copy.deepcopy(load_user_data(DEPLOY_DIR / "cloud-init.yaml"))
    user = next(item for item in user_data["users"] if isinstance(item, dict))
    user["sytem"] = user.pop("system")
    assert schema_errors(user_data)


@by_name
def test_user_data_asks_for_the_repository_instead_of_naming_one(path):
    text = path.read_text()
    assert re.search(rf"^\s*REPOSITORY={PLACEHOLDER}\s*$", text, re.MULTILINE)
    assert "github.com/" not in text.replace("github.com/YOU/REPO", "")


@by_name
def test_user_data_refuses_to_run_with_the_placeholder_left_in(path):
    script = "\n".join(str(command) for command in load_user_data(path)["runcmd"])
    assert f'"$REPOSITORY" = "{PLACEHOLDER}"' in script
    assert "exit 1" in script


@by_name
def test_user_data_writes_the_deploy_settings_without_secrets(path):
    files = {item["path"]: item for item in load_user_data(path)["write_files"]}
    deploy_conf = files["/etc/marketplace/deploy.conf"]
    assert deploy_conf["permissions"] == "0644"
    assert not re.search(r"(PASSWORD|SECRET|TOKEN)\w*=\S", deploy_conf["content"], re.I)


def test_native_user_data_installs_what_the_stack_runs_on():
    packages = set(load_user_data(DEPLOY_DIR / "cloud-init.yaml")["packages"])
    assert packages >= {"git", "python3", "python3-venv", "redis-server", "haproxy", "sqlite3"}


def test_native_user_data_creates_a_service_user_that_cannot_log_in():
    users = load_user_data(DEPLOY_DIR / "cloud-init.yaml")["users"]
    assert "default" in users  # the droplet's own login (and SSH key) is kept
    marketplace = next(user for user in users
                       if isinstance(user, dict) and user["name"] == "marketplace")
    assert marketplace["system"] is True
    assert marketplace["shell"] == "/usr/sbin/nologin"
    assert marketplace["lock_passwd"] is True


def test_native_user_data_clones_into_the_install_prefix_and_runs_the_installer():
    script = "\n".join(map(str, load_user_data(DEPLOY_DIR / "cloud-init.yaml")["runcmd"]))
    assert f'"$REPOSITORY" {INSTALL_PREFIX}' in script
    assert f"{INSTALL_PREFIX}/infra/deploy/install.sh" in script
    assert (DEPLOY_DIR / "install.sh").stat().st_mode & 0o111, "install.sh must be executable"


SECRET_LOOKING = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # a key, password or token assigned a literal value (not a variable or a placeholder)
    re.compile(r"(?i)\b[\w-]*(password|passwd|secret|token|api[_-]?key)[\w-]*\s*[=:]\s*"
               r"(?![\s$<{\"']|REPLACE|none\b|null\b|true\b|false\b|not-issued)[^\s#]{8,}"),
    # something shaped like a generated secret (48 bytes of token_urlsafe are 64 characters)
    re.compile(r"\b[A-Za-z0-9_-]{40,}\b"),
]


def looks_secret(line: str) -> bool:
    return any(pattern.search(line) for pattern in SECRET_LOOKING)


@pytest.mark.parametrize("line", [
    "LAB_HAPROXY_STATS_PASSWORD=hunter2hunter2",
    "requirepass: Zk3v9QpL0wXy7TtR2mNn8bBvCcDdEeFfGgHhIiJjKkLl",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
])
def test_the_secret_scan_flags_a_committed_secret(line):
    assert looks_secret(line)


@pytest.mark.parametrize("line", [
    "EnvironmentFile=/etc/marketplace/service-token.env",
    'LAB_SERVICE_TOKEN="${LAB_SERVICE_TOKEN}"',
    "Environment=LAB_SERVICE_TOKEN=not-issued-to-the-web-tier",
])
def test_the_secret_scan_lets_references_to_secrets_pass(line):
    assert not looks_secret(line)


def deployment_text_files():
    for path in sorted(DEPLOY_DIR.rglob("*")):
        if path.is_file() and path.suffix != ".json" and "__pycache__" not in path.parts:
            yield path


@pytest.mark.parametrize("path", list(deployment_text_files()),
                         ids=lambda path: str(path.relative_to(DEPLOY_DIR)))
def test_no_secret_is_committed_in_the_deployment_files(path):
    hits = [(number, line.strip()) for number, line in
            enumerate(path.read_text().splitlines(), start=1)
            if not line.lstrip().startswith(("#", "//"))
            and "https://" not in line and "file://" not in line
            and looks_secret(line)]
    assert hits == []
