"""Settings for the test suite: the real settings, made fast and hermetic. Environment
variables are set before the real module reads them (pytest-django loads settings before any
conftest runs, so they cannot be set there)."""
import os
import tempfile

os.environ.setdefault("LAB_FAST_HASHER", "1")  # hashing strength is not what tests measure
# Never read or create the developer's .secrets/ or database.
os.environ.setdefault("LAB_SECRETS_DIR", tempfile.mkdtemp(prefix="lab-test-secrets-"))
os.environ.setdefault("LAB_SQLITE_PATH", os.path.join(tempfile.mkdtemp(prefix="lab-test-db-"),
                                                      "marketplace.sqlite3"))

from .settings import *  # noqa: E402,F403
