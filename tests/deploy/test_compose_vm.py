"""The container path on a droplet: infra/deploy/docker-compose.vm.yml is an override that only
adds to infra/docker-compose.yml what a VM needs (port 80, the VM's host names, a database
that survives a reboot), and install-docker.sh generates every secret the compose file
requires. (No Docker engine here: `docker compose config` runs on the VM, these check the
files.)"""
import re

import yaml

from tests.deploy.deployfiles import DEPLOY_DIR, INSTALL_PREFIX, REPO_DIR, load_user_data

BASE = REPO_DIR / "infra" / "docker-compose.yml"
OVERRIDE = DEPLOY_DIR / "docker-compose.vm.yml"
INSTALL = DEPLOY_DIR / "install-docker.sh"


def compose(path):
    return yaml.safe_load(path.read_text())


def required_variables(path) -> set[str]:
    return set(re.findall(r"\$\{(\w+):\?", path.read_text()))


def test_the_override_only_changes_services_the_compose_file_has():
    assert set(compose(OVERRIDE)["services"]) <= set(compose(BASE)["services"])


def test_the_site_is_published_on_port_80_and_the_rest_stays_on_loopback():
    assert compose(OVERRIDE)["services"]["haproxy"]["ports"] == ["80:8000"]
    for port in compose(BASE)["services"]["haproxy"]["ports"]:
        assert port.startswith("127.0.0.1:")


def test_every_web_instance_answers_to_the_vms_host_names():
    base, override = compose(BASE)["services"], compose(OVERRIDE)["services"]
    web = {name for name in base if re.fullmatch(r"web\d+", name)}
    assert web and web <= set(override)
    for name in web:
        assert "${LAB_PUBLIC_HOSTS" in override[name]["environment"]["LAB_ALLOWED_HOSTS"]


def test_the_database_lives_on_a_named_volume_that_survives_a_reboot():
    postgres = compose(OVERRIDE)["services"]["postgres"]
    data_dir = postgres["environment"]["PGDATA"]
    volume, mount = postgres["volumes"][0].split(":")
    assert volume in compose(OVERRIDE)["volumes"]
    assert data_dir.startswith(mount + "/")


def test_every_secret_the_compose_files_require_is_generated_on_the_vm():
    script = INSTALL.read_text()
    generated = set(re.search(r"for name in ([^;]+);", script, re.S).group(1).split()) - {"\\"}
    generated.add("LAB_PUBLIC_HOSTS")  # not a secret: the VM's addresses
    assert required_variables(BASE) | required_variables(OVERRIDE) <= generated


def test_the_secrets_file_is_the_one_compose_reads_and_git_ignores():
    assert 'ENV_FILE="$PREFIX/infra/.env"' in INSTALL.read_text()
    assert ".env" in (REPO_DIR / "infra" / ".gitignore").read_text().split()


def test_the_docker_user_data_installs_docker_and_runs_the_container_installer():
    user_data = load_user_data(DEPLOY_DIR / "cloud-init-docker.yaml")
    assert {"docker.io", "docker-compose-v2", "git"} <= set(user_data["packages"])
    script = "\n".join(map(str, user_data["runcmd"]))
    assert f"{INSTALL_PREFIX}/infra/deploy/install-docker.sh" in script
