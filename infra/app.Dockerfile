# The marketplace, one image for every tier: LAB_TIER (entity | experience | web) picks the tier
# when a container starts, as it does for the native instances. gunicorn runs with the native
# stack's own settings file (infra/gunicorn.conf.py). Built from the repository root:
#     docker compose -f infra/docker-compose.yml build
# https://hub.docker.com/_/python
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv

# Only the "--- the site ---" block of the one pinned list: the lab's own packages (papermill,
# locust, numpy, ...) have no business in the site's image.
COPY requirements.txt .
RUN awk '/^# --- /{site = ($0 ~ /^# --- the site ---/)} site' requirements.txt > site-requirements.txt \
    && pip install -r site-requirements.txt

COPY app/ app/
# what the containers run besides the app: gunicorn's settings and the database preparation
COPY infra/gunicorn.conf.py infra/prepare_database.py infra/
ENV PYTHONPATH=/srv/app:/srv \
    DJANGO_SETTINGS_MODULE=marketplace.settings \
    LAB_GUNICORN_BIND=0.0.0.0:8000

# An unprivileged user; .secrets/ is where the settings keep any secret not given in the
# environment (the web tier's unused service token).
RUN useradd --system --home-dir /srv --shell /usr/sbin/nologin lab \
    && mkdir -p /srv/.secrets /srv/data && chown lab /srv/.secrets /srv/data
USER lab
EXPOSE 8000
CMD ["gunicorn", "-c", "infra/gunicorn.conf.py"]
