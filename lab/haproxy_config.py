"""Reading infra/haproxy/haproxy.cfg for the write-up: its sections, each with the comment
lines that explain it, so a notebook can show and discuss the file one section at a time."""
from pathlib import Path

from .rundir import REPO_DIR

CONFIG = REPO_DIR / "infra" / "haproxy" / "haproxy.cfg"
SECTION_KEYWORDS = ("global", "defaults", "frontend", "backend", "listen", "resolvers",
                    "peers", "userlist", "cache", "program")


def sections(path=CONFIG):
    """[(title, text)] in file order, e.g. ("frontend web", "<its lines>"); the file's
    leading comment block is returned as ("preamble", ...)."""
    found, title, lines, pending = [], "preamble", [], []
    for line in Path(path).read_text().splitlines():
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        if first in SECTION_KEYWORDS and not line.startswith((" ", "\t")):
            if lines:
                found.append((title, "\n".join(lines).strip("\n")))
            title, lines, pending = line.strip(), pending + [line], []
        elif line.startswith("#") and not line.startswith((" ", "\t")):
            pending.append(line)  # a comment at column 0 introduces the next section
        else:
            lines += pending + [line]
            pending = []
    lines += pending
    if lines:
        found.append((title, "\n".join(lines).strip("\n")))
    return found
