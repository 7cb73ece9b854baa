"""The installers (infra/deploy/install.sh, native; install-docker.sh, containers) are valid
bash scripts, clean under ShellCheck where it is installed, and install what the repository
holds, the way the guide says."""
import os
import re
import shutil
import subprocess

import pytest

from tests.deploy.deployfiles import DEPLOY_DIR, UNIT_FILES, load_user_data

INSTALL = DEPLOY_DIR / "install.sh"
SCRIPTS = [INSTALL, DEPLOY_DIR / "install-docker.sh"]
SHELLCHECK = shutil.which("shellcheck")
by_script = pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)


@by_script
def test_installer_is_valid_bash(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed "
                    "(Debian package `shellcheck`)")
@by_script
def test_installer_passes_shellcheck(script):
    result = subprocess.run([SHELLCHECK, str(script)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout


@by_script
def test_installer_stops_at_the_first_error_and_is_executable(script):
    assert "set -euo pipefail" in script.read_text()
    assert script.stat().st_mode & 0o111


def test_install_script_enables_every_unit_that_is_not_a_template():
    text = INSTALL.read_text()
    for path in UNIT_FILES:
        if "@." not in path.name:
            assert path.name in text, path.name


def test_install_script_installs_at_least_the_packages_cloud_init_does():
    text = INSTALL.read_text()
    packages = load_user_data(DEPLOY_DIR / "cloud-init.yaml")["packages"]
    for package in packages:
        assert re.search(rf"\s{re.escape(package)}\s", text), package


@by_script
def test_installer_refuses_to_run_without_root(script):
    # The script is fed on standard input, so the unprivileged user need not be able to read
    # the checkout (a CI clone may live in root's home).
    command = ["bash", "-s"]
    if os.geteuid() == 0:  # drop to nobody for this one run
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is needed to run it as another user")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    with open(script, "rb") as source:
        result = subprocess.run(command, stdin=source, capture_output=True, text=True,
                                timeout=30, cwd="/")
    assert result.returncode == 1
    assert "run it as root" in result.stderr
