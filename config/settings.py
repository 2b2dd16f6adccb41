"""Quorum settings: every value comes from the environment, with embedded defaults.

No DATABASE_URL -> a SQLite file in var/. No REDIS_URL -> the in-memory channel layer (one process
only). With both, any number of Daphne processes can serve the same rooms. See docs/deploy.md.
"""

import logging
import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("QUORUM_VAR_DIR", BASE_DIR / "var"))

logger = logging.getLogger("quorum.settings")


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


DEBUG = env_bool("DEBUG", False)
# PRODUCTION=1: served to the internet over HTTPS (docs/security.md). It turns on Secure cookies,
# HSTS and the HTTPS redirect by default, and insists on a SECRET_KEY from the environment.
PRODUCTION = env_bool("PRODUCTION", False)
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment; in development, generated once into var/secret_key."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("PRODUCTION=1 needs SECRET_KEY from the environment.")
    path = VAR_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        # O_EXCL: when several processes start at once on a fresh var/, one key wins.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "classroom",
    "debate",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # With health checks on, the pool checks a connection before handing it out when it has been
    # idle DB_CHECK_IDLE_SECONDS or longer (config/postgresql/base.py): a connection given back a
    # moment ago is not checked again, which would cost a round trip per save under load.
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_health_checks=env_bool("DB_HEALTH_CHECKS", True)
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "config.postgresql"
    DB_CHECK_IDLE_SECONDS = env_float("DB_CHECK_IDLE_SECONDS", 2.0)
    # A database that accepts connections and never answers must not hang a server for minutes.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DB_CONNECT_TIMEOUT", 3
    )
    # Each server process holds at most DB_POOL_MAX connections (psycopg's pool, built into
    # Django's PostgreSQL backend): a burst of page loads or sockets waits for a free connection
    # (up to DB_POOL_TIMEOUT seconds) instead of opening more. docs/deploy.md.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DB_POOL_MIN", 1),
        "max_size": env_int("DB_POOL_MAX", 10),
        "timeout": env_int("DB_POOL_TIMEOUT", 3),
    }
    # Threads that run the sockets' database work (debate/dbthreads.py). Two: the ORM's work is
    # CPU-bound under the GIL, and more threads starved the event loop that delivers events
    # (bench/RESULTS.md, 2026-11-30: nine threads lost 93,000 deliveries to broadcast timeouts
    # under overload, two lost none). At most DB_POOL_MAX - 1: one connection stays for pages.
    DB_THREADS = env_int("DB_THREADS", max(1, min(2, env_int("DB_POOL_MAX", 10) - 1)))
else:
    # SQLite has one writer: the sockets' database work stays on asgiref's single thread.
    DB_THREADS = env_int("DB_THREADS", 0)
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(VAR_DIR / "quorum.sqlite3")),
            "OPTIONS": {
                # IMMEDIATE avoids lock-upgrade deadlocks between the server's threads; WAL lets
                # readers run while a save commits.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer ----------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # The pub/sub layer: a group message is published once and every subscribed process receives
    # it. Unlike the core RedisChannelLayer it has no per-channel capacity at which group messages
    # are dropped silently, and no group expiry. See docs/deploy.md.
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis's pub/sub layer, tolerant of a Redis that is away when a socket
            # connects (config/channel_layers.py).
            "BACKEND": "config.channel_layers.ResilientRedisPubSubChannelLayer",
            # Redis pub/sub channels are server-wide: deployments sharing one Redis need
            # different prefixes, or they would hear each other's rooms.
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "quorum"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Cache (login throttling counts) ----------------------------------------------------------
if REDIS_URL:
    # Shared by every server process; keys carry the deployment's prefix.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CHANNEL_LAYER_PREFIX", "quorum"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed sign-ins allowed per username and address, and per address, in one window (seconds).
LOGIN_THROTTLE = {
    "ATTEMPTS": env_int("LOGIN_ATTEMPTS", 5),
    "ATTEMPTS_PER_ADDRESS": env_int("LOGIN_ATTEMPTS_PER_ADDRESS", 30),
    "WINDOW_SECONDS": env_int("LOGIN_WINDOW_SECONDS", 15 * 60),
}
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "debate:home"
LOGOUT_REDIRECT_URL = "debate:home"

SESSION_COOKIE_AGE = 60 * 60 * 24 * 60  # members keep their identity for a term
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Served over HTTPS: PRODUCTION, BEHIND_TLS_PROXY (a proxy that terminates TLS) or HTTPS=1.
SERVED_OVER_HTTPS = PRODUCTION or BEHIND_TLS_PROXY or env_bool("HTTPS", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG and SERVED_OVER_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HSTS is only ever sent on HTTPS responses. One year by default in production; preload is a
# separate commitment (submitting the domain to browsers' lists), so it stays opt-in.
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 365 * 24 * 3600 if SERVED_OVER_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", SERVED_OVER_HTTPS)
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", False)
# Plain-HTTP requests are redirected to HTTPS, except the health check (probes come over HTTP
# from the host itself). Off when nginx does the redirect and Django cannot tell the scheme.
SECURE_SSL_REDIRECT = env_bool("SSL_REDIRECT", PRODUCTION or BEHIND_TLS_PROXY)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
if not SECURE_HSTS_PRELOAD:
    # check --deploy asks for preload whenever HSTS is on; see HSTS_PRELOAD above.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
X_FRAME_OPTIONS = "DENY"
# Sent by config/middleware.py. No inline script or style anywhere: pages load their modules
# from /static/ and pass data in json_script blocks (not executed); sockets go to the same host.
# An empty CONTENT_SECURITY_POLICY environment variable turns the header off.
CONTENT_SECURITY_POLICY = os.environ.get(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)
if BEHIND_TLS_PROXY:
    # nginx terminates TLS and sets X-Forwarded-Proto (docs/deploy.md).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- i18n / static --------------------------------------------------------------------------
LANGUAGE_CODE = "en"
# LocaleMiddleware picks one of these from the browser's Accept-Language; every user-facing
# string is marked for translation, and catalogues go in locale/ (docs/security.md, "i18n").
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = os.environ.get("STATIC_ROOT", str(BASE_DIR / "staticfiles"))
# Daphne serves /static/ itself unless a front proxy does (docs/deploy.md).
SERVE_STATIC = env_bool("SERVE_STATIC", True)

# --- Quorum limits ----------------------------------------------------------------------------
QUORUM = {
    "MAX_MESSAGE_BYTES": env_int("QUORUM_MAX_MESSAGE_BYTES", 64 * 1024),
    "MAX_DRAFT_CHARS": env_int("QUORUM_MAX_DRAFT_CHARS", 4000),
    "MAX_RECOMMENDATION_CHARS": env_int("QUORUM_MAX_RECOMMENDATION_CHARS", 6000),
    "RATE_PER_SECOND": env_int("QUORUM_RATE_PER_SECOND", 10),
    "RATE_BURST": env_int("QUORUM_RATE_BURST", 20),
    "PRESENCE_TOUCH_SECONDS": env_int("QUORUM_PRESENCE_TOUCH_SECONDS", 60),
    # A member socket sends a run of consecutive `tick`s as one frame, at most this long after
    # the first of them and always before anything else (docs/protocol.md, "tick"); 0 sends each.
    "TICK_RUN_MS": env_int("QUORUM_TICK_RUN_MS", 600),
    # A `pong` reports the room's number as this process read it at most this long ago.
    "PONG_SEQ_SECONDS": env_int("QUORUM_PONG_SEQ_SECONDS", 5),
    # Rooms with no activity for this many days are closed and archived by `manage.py
    # archive_rooms` (docs/deploy.md); 0 turns archiving off.
    "ARCHIVE_AFTER_DAYS": env_int("QUORUM_ARCHIVE_AFTER_DAYS", 120),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
