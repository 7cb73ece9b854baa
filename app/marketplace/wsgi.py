"""WSGI entry point: gunicorn runs `marketplace.wsgi:application` for every tier.

On the web tier in ttl or invalidate cache mode, plain cache hits are answered by the page
cache's fast path before Django builds a request (web/pagecache/wsgi.py explains what it
takes and what it leaves to Django); every other process gets Django's handler unchanged."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
application = get_wsgi_application()

from web.pagecache.wsgi import wrap  # noqa: E402 - needs the settings configured above

application = wrap(application)
