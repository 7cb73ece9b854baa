"""No secret in the repository: the scan of every tracked file finds none, and the settings take
each secret from the environment or generate it on first use, kept out of git."""
import os
import secrets
import stat

import pytest

from lab import security
from marketplace import settings as settings_module


@pytest.mark.parametrize("row", security.repository_secrets(), ids=lambda row: row.check)
def test_the_repository_holds_no_secret(row):
    assert row.passed, row.observed


# Built at run time, so that this file holds no credential-shaped text itself.
FAKE_KEY = "-----BEGIN " + "RSA PRIVATE KEY-----"
FAKE_ASSIGNMENT = "SECRET_KEY = '" + secrets.token_urlsafe(32) + "'"
FAKE_GITHUB = "gh" + "p_" + "A1b2C3d4E5" * 4


@pytest.mark.parametrize("text", [FAKE_KEY, FAKE_ASSIGNMENT, FAKE_GITHUB,
                                  "requirepass " + secrets.token_urlsafe(24)])
def test_the_scan_flags_credentials(text):
    assert security.find_credentials(text)


@pytest.mark.parametrize("text", [
    'SECRET_KEY = generated_secret("SECRET_KEY")',
    'LAB_SERVICE_TOKEN="${LAB_SERVICE_TOKEN}"',
    "password = forms.CharField(max_length=128, strip=False)",
    'SEED_PASSWORD = "marketplace-demo"',  # public on purpose: the README gives it
    "token_digest = models.CharField(max_length=64, unique=True)",
])
def test_the_scan_lets_code_about_secrets_pass(text):
    assert not security.find_credentials(text)


def test_a_secret_from_the_environment_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("LAB_EXAMPLE", "from-the-environment")
    assert settings_module.generated_secret("EXAMPLE") == "from-the-environment"
    assert not (tmp_path / "example").exists()


def test_a_missing_secret_is_generated_once_private_and_kept(monkeypatch, tmp_path):
    folder = tmp_path / "secrets"
    monkeypatch.setenv("LAB_SECRETS_DIR", str(folder))
    monkeypatch.delenv("LAB_EXAMPLE", raising=False)
    first = settings_module.generated_secret("EXAMPLE")
    assert len(first) >= 64  # 48 random bytes
    assert settings_module.generated_secret("EXAMPLE") == first
    assert stat.S_IMODE(os.stat(folder / "example").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


def test_each_machine_gets_its_own_secrets(monkeypatch, tmp_path):
    values = []
    for machine in ("one", "two"):
        monkeypatch.setenv("LAB_SECRETS_DIR", str(tmp_path / machine))
        monkeypatch.delenv("LAB_EXAMPLE", raising=False)
        values.append(settings_module.generated_secret("EXAMPLE"))
    assert values[0] != values[1]
