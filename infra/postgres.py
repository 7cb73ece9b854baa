"""A throwaway PostgreSQL cluster for `--db postgres`: created under the run directory, on its
own port, listening on 127.0.0.1 only, and deleted by `down`. The Debian package is installed
on first use (infra/install_system_packages.sh); initdb refuses to run as root, so as root the
cluster belongs to the `postgres` user and its commands run through `runuser`."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from .config import REPO_DIR
from .processes import StackError

DATABASE = "marketplace"
USER = "marketplace"
INSTALL_SCRIPT = REPO_DIR / "infra" / "install_system_packages.sh"


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parent.parent.name))
    return Path(found[-1]).parent if found else None


def ensure_installed(progress=print) -> Path:
    if bin_dir() is None:
        progress("PostgreSQL is not installed: installing the Debian package")
        subprocess.run(["bash", str(INSTALL_SCRIPT), "postgresql"], check=True)
    found = bin_dir()
    if found is None:
        raise StackError("PostgreSQL is still missing after installing the postgresql package")
    return found


def _as_owner() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _chown_to_owner(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user="postgres", group="postgres")


class ThrowawayCluster:
    def __init__(self, data_dir: Path, port: int, password: str, log_path: Path):
        self.data_dir, self.port, self.password, self.log_path = data_dir, port, password, log_path

    def initialise(self, progress=print) -> None:
        binaries = ensure_installed(progress)
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _chown_to_owner(self.data_dir)
        check = subprocess.run([*_as_owner(), "test", "-w", str(self.data_dir)])
        if check.returncode != 0:
            raise StackError(f"the postgres user cannot write {self.data_dir}: choose a run "
                             f"directory whose parents it may enter (o+x)")
        password_file = self.data_dir.parent / "postgres-password.tmp"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        _chown_to_owner(password_file)
        try:
            # --no-sync: a throwaway cluster need not survive a power cut while being created.
            result = subprocess.run(
                [*_as_owner(), str(binaries / "initdb"), "-D", str(self.data_dir), "-U", USER,
                 f"--pwfile={password_file}", "--auth=scram-sha-256", "--encoding=UTF8",
                 "--no-locale", "--no-sync"],
                capture_output=True, text=True, timeout=120)
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float) -> int:
        """Starts the server and waits until it accepts connections (pg_ctl -w); returns the
        postmaster's pid."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        _chown_to_owner(self.log_path)
        # TCP on 127.0.0.1 only, and no Unix socket (its path could exceed the 107-byte limit
        # under a deep run directory, and nothing here uses it).
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        result = subprocess.run(
            [*_as_owner(), str(bin_dir() / "pg_ctl"), "start", "-D", str(self.data_dir),
             "-l", str(self.log_path), "-o", options, "-w", "-t", str(int(timeout))],
            capture_output=True, text=True, timeout=timeout + 10,
            start_new_session=True)  # the server is not in our terminal's process group
        if result.returncode != 0:
            raise StackError(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}")
        return self.postmaster_pid()

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER,
                             password=self.password, dbname="postgres", autocommit=True,
                             connect_timeout=5) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                        (DATABASE,)).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{DATABASE}"')

    def ping(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(host="127.0.0.1", port=self.port, user=USER,
                                 password=self.password, dbname=DATABASE,
                                 connect_timeout=1) as connection:
                connection.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
