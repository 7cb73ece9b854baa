"""Settings every test run shares; set before Django configures itself."""
import os
import tempfile

os.environ.setdefault("LAB_FAST_HASHER", "1")
# Keep tests from creating or reading the developer's .secrets/ and database.
os.environ.setdefault("LAB_SECRETS_DIR", tempfile.mkdtemp(prefix="lab-test-secrets-"))
os.environ.setdefault("LAB_SQLITE_PATH", os.path.join(tempfile.gettempdir(), "lab-test.sqlite3"))
