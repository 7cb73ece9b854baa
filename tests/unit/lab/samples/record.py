"""Re-records the sample output the analysis tests read (run by hand, never by pytest:
`.venv/bin/python tests/unit/lab/samples/record.py`). Everything is real output of the lab's
own code: locust (tests/load/probe.py) and wrk against the constant WSGI app (lab.constant_page)
under gunicorn with the stack's configuration and
against HAProxy answering by itself, on 127.0.0.1 ports picked free, for about half a minute.

- paced_*   a paced step load (2..10 users, 20-60 ms think time) on gunicorn: every file
            locust and the lab write, except the HTML report (large, not read by tests)
- refused_* the same probe aimed at a port nobody listens on: failures as locust records them
- *_wrk.txt wrk --latency with lab/wrk_report.lua against gunicorn and HAProxy"""
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from lab import loadtest, traffic  # noqa: E402

KEEP = ("_requests.csv", "_meta.json", "_cpu.csv", "_stats.csv", "_stats_history.csv",
        "_failures.csv", ".json", ".log")


def keep(out, name):
    for suffix in KEEP:
        source = out / f"{name}{suffix}"
        if source.exists():
            shutil.copy(source, HERE / source.name)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        with loadtest.constant_gunicorn(out) as gunicorn:
            shape = traffic.StepLoad(step_users=2, step_seconds=3, max_users=10,
                                     warmup_seconds=2)
            loadtest.run_locust(out, "paced", gunicorn.url, shape,
                                locustfile=loadtest.PROBE_LOCUSTFILE, think_time=(0.02, 0.06))
            keep(out, "paced")
            port = int(gunicorn.url.rsplit(":", 1)[1].strip("/"))
            with loadtest.haproxy_ceiling(out, backend_port=port) as haproxy:
                loadtest.run_wrk(out, "gunicorn", gunicorn.url, connections=8, seconds=2)
                loadtest.run_wrk(out, "haproxy", haproxy["alone"], connections=8, seconds=2)
        for name in ("gunicorn", "haproxy"):
            shutil.copy(out / f"{name}_wrk.txt", HERE / f"{name}_wrk.txt")
        refused = f"http://127.0.0.1:{loadtest.free_port()}"
        loadtest.run_locust(out, "refused", refused,
                            traffic.StepLoad(step_users=1, step_seconds=2, max_users=1,
                                             warmup_seconds=0),
                            locustfile=loadtest.PROBE_LOCUSTFILE, think_time=(0.1, 0.1))
        keep(out, "refused")


if __name__ == "__main__":
    main()
