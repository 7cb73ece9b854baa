"""What the write-up notebook reads from a run: each topic's saved results (or a clear note
that the topic did not run), the command lines the run executed, the repository's code
links and files. The prose lives in the notebook; this module only fetches and formats."""
import json
from pathlib import Path

import pandas as pd

from .rundir import REPO_DIR

# Links are relative to writeup/, where report.html is written, so they open the repository's
# files from a checkout (and on GitHub, from the rendered repository).
CODE = [
    ("The entity tier: models, schema-validated CRUD API, services", "app/entity/"),
    ("The experience tier: one call per screen", "app/experience/services.py"),
    ("The web tier: views, forms, templates", "app/web/views.py"),
    ("Whole-page cache in Redis (redis-py, tag versions, stampede lock, circuit breaker)",
     "app/web/pagecache/"),
    ("Invalidation owned by the entity tier (signals after commit)", "app/entity/invalidation.py"),
    ("Calls between tiers (pooled httpx, timeouts, 503s)", "app/marketplace/upstream.py"),
    ("The stack on one machine (`python -m infra`)", "infra/stack.py"),
    ("HAProxy configuration", "infra/haproxy/haproxy.cfg"),
    ("docker-compose.yml", "infra/docker-compose.yml"),
    ("Unit tests", "tests/unit/"),
    ("Selenium integration tests", "tests/integration/"),
    ("locustfile", "tests/load/locustfile.py"),
    ("Performance experiments", "lab/perf.py"),
    ("Cache benchmark", "lab/cache_benchmark.py"),
    ("Load-balancing lab", "lab/loadbalancing.py"),
    ("Hosting: deployment files and the simulated VM", "infra/deploy/"),
    ("Reliability: faults under load", "lab/reliability.py"),
    ("The notebooks", "notebooks/"),
]


def code_links():
    rows = [f"- {what}: [`{path}`](../{path})" for what, path in CODE if (REPO_DIR / path).exists()]
    return "\n".join(rows)


def repository_file(path):
    return (REPO_DIR / path).read_text()


def load_json(run, topic, name):
    path = Path(run.path) / topic / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def load_csv(run, topic, name):
    path = Path(run.path) / topic / f"{name}.csv"
    return pd.read_csv(path) if path.exists() else None


def commands(run, exclude_topics=("notebooks",)):
    """Every command line the run executed, by topic, in order (papermill's own are left out:
    `make report` stands for them)."""
    rows = [entry for entry in run.commands() if entry["topic"] not in exclude_topics]
    frame = pd.DataFrame(rows, columns=["topic", "command", "purpose", "returncode", "seconds"])
    return frame.drop_duplicates(subset=["command"])


def missing(topic):
    return (f"*The {topic} notebook did not produce results in this run, so this section has "
            f"no figures.*")
