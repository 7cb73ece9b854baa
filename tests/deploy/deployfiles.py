"""Where the deployment files are, and how to read them, for the tests beside this module."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import yaml

REPO_DIR = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_DIR / "infra" / "deploy"
UNIT_DIR = DEPLOY_DIR / "systemd"
INSTALL_PREFIX = "/opt/marketplace"  # where cloud-init clones the repository on the VM
USER_DATA_FILES = sorted(DEPLOY_DIR.glob("cloud-init*.yaml"))
UNIT_FILES = sorted(path for path in UNIT_DIR.iterdir()
                    if path.suffix in (".service", ".target"))


def load_user_data(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}}. configparser cannot read one: systemd allows
    a key many times (Environment=, EnvironmentFile=), and each occurrence counts."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], defaultdict(list))
            continue
        if current is None or "=" not in line or raw.endswith("\\"):
            raise ValueError(f"{path.name}:{number}: not a key=value line in a section: {raw!r}")
        key, value = line.split("=", 1)
        current[key.strip()].append(value.strip())
    return sections
