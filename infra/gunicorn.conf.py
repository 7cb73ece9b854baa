"""gunicorn settings for every instance of every tier, native and in containers: the per-instance
parts come from the environment (LAB_GUNICORN_*), the rest is the same everywhere.
Reference: https://docs.gunicorn.org/en/stable/settings.html

    gunicorn -c infra/gunicorn.conf.py      (the app is named below: wsgi_app)
"""
import gc
import os
from pathlib import Path

wsgi_app = "marketplace.wsgi:application"
# app/ holds the Django project; this file sits in infra/ beside it (also in the image).
pythonpath = str(Path(__file__).resolve().parent.parent / "app")

# One instance = one gunicorn master on its own port (127.0.0.1 natively, 0.0.0.0:8000 in a
# container, where the container's address is what tells instances apart).
bind = os.environ.get("LAB_GUNICORN_BIND", "127.0.0.1:8000")

# gthread rather than sync: the web and experience tiers spend most of a request waiting for
# the tier behind them, so a few threads per process serve several requests at once for the
# memory of one process; and gthread keeps HTTP connections alive, so HAProxy can reuse its
# connections to the instance (sync workers close the connection after every response).
# https://docs.gunicorn.org/en/stable/design.html#choosing-a-worker-type
worker_class = "gthread"
workers = int(os.environ.get("LAB_GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("LAB_GUNICORN_THREADS", "4"))

# Import Django once in the master and fork the workers from it: the instance starts in about
# half the time and the workers share the imported code's memory (copy-on-write). Safe here
# because the app opens its connections (database, Redis, HTTP pools) lazily, per worker.
# https://docs.gunicorn.org/en/stable/settings.html#preload-app
preload_app = True


def when_ready(server):
    """Load the URLconf (and with it every view and API schema) in the master too: Django
    would otherwise do it in each worker at its first request, which for the entity and
    experience tiers costs half a second of CPU per worker (django-ninja builds its schemas).
    Any database connection opened meanwhile is closed, so no worker inherits one. (Only for
    a preloaded Django app: the lab also runs a plain WSGI app with this file.)"""
    from django.conf import settings

    if not (server.cfg.preload_app and settings.configured):
        return
    from django.db import connections
    from django.urls import get_resolver

    get_resolver().url_patterns
    connections.close_all()


def pre_fork(server, worker):
    """Move everything the master imported into the garbage collector's permanent generation
    before forking a worker: collections in the worker then never walk (and so never copy) the
    shared pages, and a worker exits at once instead of spending a second or more in its final
    collection. https://docs.python.org/3/library/gc.html#gc.freeze"""
    gc.freeze()


# HAProxy keeps idle connections to instances in a pool and halves that pool every 5 s
# (pool-purge-delay); a server-side keep-alive well above that makes it rare for HAProxy to
# reuse a connection at the moment the instance closes it.
# https://docs.gunicorn.org/en/stable/settings.html#keepalive
keepalive = 60
# A worker silent this long is restarted; a stop waits this long for requests in flight, which
# keeps `down` within its few seconds. https://docs.gunicorn.org/en/stable/settings.html#timeout
timeout = 30
graceful_timeout = 2

# gunicorn >= 25.1 opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl),
# which the instances of a stack would fight over; the stack controls instances by pid instead.
# https://docs.gunicorn.org/en/stable/settings.html#control-socket-disable
control_socket_disable = True

# HAProxy logs every request in its HTTP log format; per-instance access logs are opt-in.
accesslog = os.environ.get("LAB_GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LAB_GUNICORN_LOG_LEVEL", "warning")
