"""One run of the lab writes everything into data/runs/<run-id>/: one folder per topic with its
raw data, logs and figures, plus `commands.jsonl`, every command line the run executed (the
write-up lists them), and `parameters.json`.

Notebooks get the run directory as a parameter and use `RunDir(path)`; `RunDir.run()` is the
one way the lab runs a command, so that every command line is recorded with its outcome."""
import json
import shlex
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
RUNS_DIR = REPO_DIR / "data" / "runs"


def new_run_id():
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def latest_run():
    """The newest run directory, for exploring a notebook interactively after `make report`."""
    runs = sorted(path for path in RUNS_DIR.glob("*") if path.is_dir())
    return runs[-1] if runs else None


def display_command(argv):
    """A command line as a person would type it from the repository root."""
    parts = [str(part) for part in argv]
    parts = [part.replace(str(REPO_DIR) + "/", "") for part in parts]
    return shlex.join(parts)


class RunDir:
    def __init__(self, path):
        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)

    def topic(self, name):
        """The folder of one topic (created)."""
        folder = self.path / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # --- data -------------------------------------------------------------------------------

    def save_json(self, topic, name, data):
        path = self.topic(topic) / f"{name}.json"
        path.write_text(json.dumps(data, indent=2, default=str))
        return path

    def load_json(self, topic, name, default=None):
        path = self.path / topic / f"{name}.json"
        if not path.exists():
            return default
        return json.loads(path.read_text())

    def figure_path(self, topic, name):
        return self.topic(topic) / f"{name}.png"

    # --- commands ---------------------------------------------------------------------------

    def record_command(self, topic, argv, purpose, returncode=None, seconds=None, log=None):
        entry = {"topic": topic, "command": display_command(argv), "purpose": purpose,
                 "returncode": returncode, "seconds": seconds,
                 "log": str(Path(log).relative_to(self.path)) if log else None}
        with open(self.path / "commands.jsonl", "a") as handle:
            handle.write(json.dumps(entry) + "\n")
        return entry

    def commands(self):
        path = self.path / "commands.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def run(self, topic, argv, purpose, *, log_name=None, timeout=600, env=None, check=True,
            cwd=REPO_DIR):
        """Runs a command to completion with its output in a log file of the topic; records
        the command line, its exit code and duration; returns (CompletedProcess, log text)."""
        log = self.topic(topic) / f"{log_name or Path(str(argv[0])).name}.log"
        started = time.monotonic()
        with open(log, "w") as handle:
            completed = subprocess.run([str(part) for part in argv], stdout=handle,
                                       stderr=subprocess.STDOUT, timeout=timeout, env=env,
                                       cwd=cwd, check=False)
        seconds = round(time.monotonic() - started, 2)
        self.record_command(topic, argv, purpose, completed.returncode, seconds, log)
        text = log.read_text(errors="replace")
        if check and completed.returncode != 0:
            tail = "\n".join(text.splitlines()[-30:])
            raise RuntimeError(f"{display_command(argv)} exited {completed.returncode}:\n{tail}")
        return completed, text
