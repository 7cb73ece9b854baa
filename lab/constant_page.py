"""A WSGI app that answers every request with the same bytes: the ceiling a cached page can
approach when it runs under the same gunicorn configuration (infra/gunicorn.conf.py) as the web
tier. lab.cache_benchmark gives it the exact body of the cached home page, so both send the
same number of bytes:

    LAB_CONSTANT_BODY_FILE=home.html gunicorn -c infra/gunicorn.conf.py lab.constant_page:app

LAB_CONSTANT_BYTES=N serves N bytes instead when no file is given."""
import os

_path = os.environ.get("LAB_CONSTANT_BODY_FILE")
if _path:
    with open(_path, "rb") as handle:
        BODY = handle.read()
else:
    BODY = b"x" * int(os.environ.get("LAB_CONSTANT_BYTES", "8192"))
HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(BODY))),
           ("X-Served-By", "constant")]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
