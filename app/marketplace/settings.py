"""The one settings module of every tier. Everything that differs between tiers, instances
and machines comes from environment variables prefixed LAB_ (see `env()` calls below)."""
import os
import secrets
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = APP_DIR.parent


def env(name, default=None):
    return os.environ.get(f"LAB_{name}", default)


def env_bool(name, default=False):
    return env(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


def generated_secret(name):
    """A secret from the environment, else one generated on first use and kept (mode 0600) in
    .secrets/, which git ignores: no secret is ever in the repository, and every instance
    started on this machine shares the same value."""
    value = env(name)
    if value:
        return value
    folder = Path(env("SECRETS_DIR", REPO_DIR / ".secrets"))
    path = folder / name.lower()
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value


# Which tier this process serves: entity | experience | web, or "all" (tests, manage.py).
TIER = env("TIER", "all")
INSTANCE = env("INSTANCE", f"{TIER}-local")  # sent back as X-Served-By
TIERS = ("entity", "experience", "web") if TIER == "all" else (TIER,)

SECRET_KEY = generated_secret("SECRET_KEY")
SERVICE_TOKEN = generated_secret("SERVICE_TOKEN")  # the experience tier sends it, the entity tier checks it
# The web tier sends it to the experience tier; HAProxy exempts its holder from the experience
# frontend's log-in rate limit (the visitor was already counted at the web frontend).
WEB_TIER_TOKEN = generated_secret("WEB_TIER_TOKEN")
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = env("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",")

# Where the other tiers are (the HAProxy frontends in the running stack).
ENTITY_URL = env("ENTITY_URL", "http://127.0.0.1:8002")
EXPERIENCE_URL = env("EXPERIENCE_URL", "http://127.0.0.1:8001")
# Calls between tiers: a short connect timeout so a dead tier fails fast (503), a read
# timeout that still lets a slow search finish.
UPSTREAM_CONNECT_TIMEOUT = float(env("UPSTREAM_CONNECT_TIMEOUT", "1.0"))
UPSTREAM_READ_TIMEOUT = float(env("UPSTREAM_READ_TIMEOUT", "5.0"))
# Sign-up and log-in hash a password (PBKDF2, deliberately slow): on a busy machine that alone
# can pass 5 s, and a timed-out sign-up would leave an account the visitor was told failed.
# Kept under HAProxy's 15 s server timeout.
UPSTREAM_SLOW_READ_TIMEOUT = float(env("UPSTREAM_SLOW_READ_TIMEOUT", "12.0"))

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6390/0")
CACHE_MODE = env("CACHE_MODE", "off")  # off | ttl | invalidate | django
CACHE_TTL = int(env("CACHE_TTL", "300"))

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "django.contrib.messages",
    "entity",
    "experience",
    "web",
]

MIDDLEWARE = [
    "marketplace.middleware.served_by",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
if "web" in TIERS:
    MIDDLEWARE += [
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]

ROOT_URLCONF = "marketplace.urls"
WSGI_APPLICATION = "marketplace.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The database belongs to the entity tier; other tiers never open it.
if env("DB", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": env("PG_HOST", "127.0.0.1"),
            "PORT": env("PG_PORT", "5433"),
            "NAME": env("PG_NAME", "marketplace"),
            "USER": env("PG_USER", "marketplace"),
            "PASSWORD": env("PG_PASSWORD", ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", str(REPO_DIR / "data" / "marketplace.sqlite3")),
            "OPTIONS": {
                # WAL lets readers in other gunicorn processes run beside one writer;
                # IMMEDIATE takes the write lock at BEGIN so writers queue instead of
                # failing with "database is locked" half-way through a transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
if env_bool("FAST_HASHER"):  # tests only: hashing strength is not what they measure
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATOR_LIFETIME_HOURS = int(env("AUTHENTICATOR_LIFETIME_HOURS", "24"))

# Bodies larger than this are refused with a 400 before any parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(env("MAX_BODY_BYTES", str(64 * 1024)))

# The authenticator cookie the web tier sets after log in.
AUTH_COOKIE_NAME = "auth"
AUTH_COOKIE_SECURE = env_bool("COOKIE_SECURE")  # on behind TLS; off on plain-HTTP loopback
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = AUTH_COOKIE_SECURE
SESSION_COOKIE_SECURE = AUTH_COOKIE_SECURE
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT", str(REPO_DIR / "data" / "static"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": env("LOG_LEVEL", "WARNING")},
    # a 4xx is the client's mistake, answered with a clear error: not worth a log line each
    "loggers": {"django.request": {"level": "ERROR"}},
}

# --- web tier (owned by app/web/) -----------------------------------------------------------
if "web" in TIERS:
    # WhiteNoise serves the stylesheet from the web process itself, right after
    # SecurityMiddleware as its docs ask: https://whitenoise.readthedocs.io/en/stable/django.html
    MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                      "whitenoise.middleware.WhiteNoiseMiddleware")
    # request.account (the logged-in user, asked of the experience tier only when the auth
    # cookie exists), Cache-Control: private for logged-in visitors, friendly 404/503 pages.
    MIDDLEWARE.append("web.visitor.VisitorMiddleware")
    # Serve app/web/static/ straight from the app directories, so the site works with DEBUG
    # off and without `collectstatic` (files are indexed once at start-up); a collected
    # STATIC_ROOT is used too when it exists. WhiteNoise warns at every start when STATIC_ROOT
    # does not exist yet, which is the normal case here.
    WHITENOISE_USE_FINDERS = True
    import warnings

    warnings.filterwarnings("ignore", message=r"No directory at: ", category=UserWarning)
    # A form posted without a valid CSRF token gets the site's own 403 page.
    CSRF_FAILURE_VIEW = "web.views.csrf_failure"

# --- page cache (issue 4: app/web/pagecache/, app/entity/invalidation.py) ---------------------
# CACHE_MODE picks the design compared in the lab: off | ttl | invalidate (redis-py, our own
# middleware) | django (Django's cache middleware with its Redis backend, the baseline).
# Tunables, all in seconds unless named otherwise:
PAGE_CACHE_GRACE = float(env("CACHE_GRACE", "30"))  # an expired page may be served STALE this
#   long after its TTL while one request re-renders it (Redis drops it at TTL + grace)
PAGE_CACHE_WAIT = float(env("CACHE_WAIT", "1.0"))  # how long a request waits for another's
#   render of an invalidated page before rendering it itself
PAGE_CACHE_LOCK_TTL = float(env("CACHE_LOCK_TTL", "5"))  # render lock; outlives a slow render
PAGE_CACHE_PASS_TTL = float(env("CACHE_PASS_TTL", "10"))  # "not cacheable" marker of a URL
PAGE_CACHE_MAX_BYTES = int(env("CACHE_MAX_BYTES", str(1024 * 1024)))
# Redis down or slow must cost a page at most one short timeout, then nothing while the
# circuit breaker is open (https://redis.readthedocs.io/en/stable/connections.html).
PAGE_CACHE_SOCKET_TIMEOUT = float(env("CACHE_SOCKET_TIMEOUT", "0.1"))
PAGE_CACHE_BREAKER_FAILURES = int(env("CACHE_BREAKER_FAILURES", "3"))
PAGE_CACHE_BREAKER_COOLDOWN = float(env("CACHE_BREAKER_COOLDOWN", "1.0"))
if "web" in TIERS:
    _after_served_by = MIDDLEWARE.index("marketplace.middleware.served_by") + 1
    if CACHE_MODE == "django":
        # https://docs.djangoproject.com/en/5.2/topics/cache/#the-per-site-cache: Update first
        # (outermost, after served_by so X-Served-By is not cached), Fetch last. Vary: Cookie
        # keeps a logged-in visitor from being served the anonymous page.
        CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": "pc-django",
                "OPTIONS": {"socket_timeout": PAGE_CACHE_SOCKET_TIMEOUT,
                            "socket_connect_timeout": PAGE_CACHE_SOCKET_TIMEOUT},
            }
        }
        CACHE_MIDDLEWARE_SECONDS = CACHE_TTL
        CACHE_MIDDLEWARE_KEY_PREFIX = "page"
        MIDDLEWARE[_after_served_by:_after_served_by] = [
            "web.pagecache.middleware.DjangoModeStatus",
            "django.middleware.cache.UpdateCacheMiddleware",
            "web.pagecache.middleware.DjangoVaryOnCookie",
        ]
        MIDDLEWARE.append("django.middleware.cache.FetchFromCacheMiddleware")
    else:
        # Outermost of the web middleware: a hit skips all the others (off: headers only).
        MIDDLEWARE.insert(_after_served_by, "web.pagecache.middleware.PageCacheMiddleware")
