"""infra/deploy/install.sh is a valid bash script (and clean under ShellCheck where it is
installed), and installs the same units the repository holds, the way the guide says."""
import os
import re
import shutil
import subprocess

import pytest

from tests.deploy.deployfiles import DEPLOY_DIR, UNIT_FILES, load_user_data

INSTALL = DEPLOY_DIR / "install.sh"
SHELLCHECK = shutil.which("shellcheck")


def test_install_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed "
                    "(Debian package `shellcheck`)")
def test_install_script_passes_shellcheck():
    result = subprocess.run([SHELLCHECK, str(INSTALL)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout


def test_install_script_stops_at_the_first_error():
    assert "set -euo pipefail" in INSTALL.read_text()


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


def test_install_script_refuses_to_run_without_root(tmp_path):
    command = ["bash", str(INSTALL)]
    if os.geteuid() == 0:  # drop to nobody for this one run
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is needed to run it as another user")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode == 1
    assert "run it as root" in result.stderr
