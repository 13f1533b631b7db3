"""Saghat's one settings module: everything configurable comes from the environment or `.env`."""

import datetime as dt
import hashlib
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import environ
from csp.constants import NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEV_SECRET_KEY = "saghat-development-only-secret-key-change-me"

DEBUG = env.bool("DEBUG", default=False)
# The test suite (tests/settings.py sets SAGHAT_TESTING=1) and the benchmarks run with
# production-like settings (DEBUG off) but may use the development key. Nothing guesses it.
TESTING = env.bool("SAGHAT_TESTING", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
if not DEBUG and not TESTING and SECRET_KEY == DEV_SECRET_KEY:
    # Production must never sign sessions and password links with a key that is in the repository.
    raise ImproperlyConfigured("SECRET_KEY must be set to a real secret when DEBUG is off.")
if not DEBUG and not TESTING and len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY is too short: use at least 32 random characters.")
if not DEBUG and not TESTING and len(set(SECRET_KEY)) < 10:
    # Long but not random (36 times the same character, a short word repeated): as guessable as a short key.
    raise ImproperlyConfigured("SECRET_KEY has too little variety: use at least 32 random characters.")

ALLOWED_HOSTS = [h.strip() for h in env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"]) if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env.list("CSRF_TRUSTED_ORIGINS", default=[]) if o.strip()]

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.import_export",
    "unfold.contrib.simple_history",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "import_export",
    "django_q",
    "simple_history",
    "axes",
    "csp",
    "fund",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "fund.persian.PersianDigitsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "fund.middleware.AdminOnlyForOperatorsMiddleware",
    "fund.security.PrivatePagesMiddleware",
    # Last, as django-axes asks: it turns a paused login into its answer (fund.security.lockout_response).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
# SQLite is the embedded default so a fresh checkout runs with no server. A web process and a
# worker write at once, so SQLite runs in WAL mode with immediate transactions and a busy timeout
# (without them concurrent writers fail with "database is locked").
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file, not memory, so that a real qcluster worker started by a test sees the test database;
    # in the temporary directory, not the repository. SAGHAT_TEST_DB names it (a bare name goes
    # there too); by default the name is this checkout's own, so two checkouts never share one.
    _checkout = hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:10]
    _test_db = Path(env.str("SAGHAT_TEST_DB", default=f"saghat-test-{_checkout}.sqlite3"))
    _test_db = _test_db if _test_db.is_absolute() else Path(tempfile.gettempdir()) / _test_db
    DATABASES["default"]["TEST"] = {"NAME": str(_test_db)}
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # PostgreSQL's JIT compiles any plan it estimates as costly, such as the member list sorted by
    # balance: ~100 ms of compiling for a ~200 ms query. Saghat's queries are short; JIT only costs.
    # (A DATABASE_URL with its own ?options=… keeps them.)
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "fund.User"


# --- Cache and background jobs --------------------------------------------------------------------
def _resp2(url: str) -> str:
    """redis-py 8 speaks RESP3 by default, which needs Redis 6 or later; RESP2 works with any."""
    parts = urlsplit(url)
    if any(name == "protocol" for name, _value in parse_qsl(parts.query)):
        return url
    return urlunsplit(parts._replace(query="&".join(filter(None, [parts.query, "protocol=2"]))))


REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    REDIS_URL = _resp2(REDIS_URL)
if REDIS_URL:
    # Redis for funds that run several web or worker machines: the cache (the import preview,
    # django-q2's cluster status) and the job queue, shared by all of them.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # A database cache is shared by the web processes and the worker (the import preview and
    # django-q2's cluster status need that); LocMemCache would be private to each process.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "saghat_cache"}}

Q_CLUSTER = {
    "name": "saghat",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 120,
    # retry > timeout, or a long task is delivered twice.
    "retry": 300,
    "max_attempts": 3,
    "ack_failures": True,
    "save_limit": 500,
    "catch_up": False,
    "poll": 1,
    "label": _("Background jobs"),
    # django-q2 logs every task at INFO: four lines a minute from the schedules alone.
    "log_level": env.str("Q_LOG_LEVEL", default="WARNING"),
}
if REDIS_URL:
    # Jobs are queued on commit (fund.tasks.queue), so a Redis queue never sees a rolled-back job.
    # Redis keeps no receipt: a job a worker had taken when it died is lost, and the sweep and the
    # schedules pick its work up again (README, "Deployment").
    Q_CLUSTER["redis"] = REDIS_URL
else:
    # django-q2 uses Redis unless told otherwise: the ORM broker needs no extra server.
    Q_CLUSTER["orm"] = "default"

# The worker is stalled when no job, the minute's heartbeat included, has finished for this many
# seconds (fund/health.py); `manage.py run_worker` then restarts the cluster.
WORKER_STALL_AFTER = env.int("WORKER_STALL_AFTER", default=180)
# How often run_worker looks, and how long a stalled cluster gets to stop before it is killed.
WORKER_CHECK_EVERY = env.float("WORKER_CHECK_EVERY", default=10)

# --- Passwords, sessions, login ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "member-home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 8)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60 * 24 * 7)
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=15 * 60)
# How many reverse proxies (each appending to X-Forwarded-For) stand between clients and gunicorn.
# 0: the client is REMOTE_ADDR and X-Forwarded-For is ignored.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Login throttling: django-axes, the pair (user name, client address) is paused after
# LOGIN_FAILURE_LIMIT failures within LOGIN_FAILURE_WINDOW seconds, for that long (fund/security.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a paused pair before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = dt.timedelta(seconds=LOGIN_FAILURE_WINDOW)  # a bare number would mean hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # the inner list is AND: both must match
AXES_CLIENT_IP_CALLABLE = "fund.security.client_ip"
AXES_LOCKOUT_CALLABLE = "fund.security.lockout_response"
AXES_RESET_ON_SUCCESS = True
# Axes' own admin pages are not styled for unfold; `manage.py axes_reset_username NAME` lifts a pause.
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False

# --- Language and time ------------------------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="fa")
LANGUAGES = [("fa", _("Persian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Tehran")
USE_I18N = True
USE_TZ = True
# Money is shown with the full precision we store; thousands are grouped in templates on purpose.
USE_THOUSAND_SEPARATOR = False

# --- Static files -------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Tests render pages without running collectstatic, so they use the plain storage.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not (DEBUG or TESTING)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# --- E-mail (reminders) -----------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="saghat@localhost")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))

# --- Bitpin -------------------------------------------------------------------------------------------------
BITPIN_API_BASE_URL = env.str("BITPIN_API_BASE_URL", default="https://api.bitpin.ir")
BITPIN_API_KEY = env.str("BITPIN_API_KEY", default="")
BITPIN_CONNECT_TIMEOUT = env.float("BITPIN_CONNECT_TIMEOUT", default=3.0)
BITPIN_READ_TIMEOUT = env.float("BITPIN_READ_TIMEOUT", default=10.0)
# The whole request, answer included, ends by then: a server dripping a byte at a time never
# trips the read timeout, which counts from the last byte.
BITPIN_DEADLINE = env.float("BITPIN_DEADLINE", default=BITPIN_CONNECT_TIMEOUT + BITPIN_READ_TIMEOUT + 2)
BITPIN_SWEEP_CONCURRENCY = env.int("BITPIN_SWEEP_CONCURRENCY", default=16)

# A public randomness beacon mixed into each draw's seed (fund/beacon.py); empty: none.
DRAW_BEACON_URL = env.str("DRAW_BEACON_URL", default="")
DRAW_BEACON_GENESIS = env.int("DRAW_BEACON_GENESIS", default=1595431050)  # drand's default chain
DRAW_BEACON_PERIOD = env.int("DRAW_BEACON_PERIOD", default=30)
DRAW_BEACON_DELAY = env.int("DRAW_BEACON_DELAY", default=60 * 60)  # seconds after the commitment, without a deadline
DRAW_BEACON_CONNECT_TIMEOUT = env.float("DRAW_BEACON_CONNECT_TIMEOUT", default=3.0)
DRAW_BEACON_READ_TIMEOUT = env.float("DRAW_BEACON_READ_TIMEOUT", default=10.0)

# --- Notifications: Telegram and Bale bots (a channel without a token is off) -----------------------------
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_BOT_USERNAME = env.str("TELEGRAM_BOT_USERNAME", default="")
TELEGRAM_API_BASE_URL = env.str("TELEGRAM_API_BASE_URL", default="https://api.telegram.org")
TELEGRAM_WEBHOOK_SECRET = env.str("TELEGRAM_WEBHOOK_SECRET", default="")
BALE_BOT_TOKEN = env.str("BALE_BOT_TOKEN", default="")
BALE_BOT_USERNAME = env.str("BALE_BOT_USERNAME", default="")
BALE_API_BASE_URL = env.str("BALE_API_BASE_URL", default="https://tapi.bale.ai")
BALE_WEBHOOK_SECRET = env.str("BALE_WEBHOOK_SECRET", default="")
BOT_CONNECT_TIMEOUT = env.float("BOT_CONNECT_TIMEOUT", default=3.0)
BOT_READ_TIMEOUT = env.float("BOT_READ_TIMEOUT", default=10.0)
BOT_LINK_MINUTES = env.int("BOT_LINK_MINUTES", default=60)

# --- Security when served over HTTPS ---------------------------------------------------------------------------
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=not DEBUG and not TESTING)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy on every response (django-csp). Scripts and styles come only from our own
# static files. unfold's admin needs two relaxations: Alpine.js evaluates its x-data expressions
# with `new Function` ('unsafe-eval'), and unfold, Alpine's :style and htmx write inline styles
# ('unsafe-inline' for styles only; no inline script runs anywhere). Swagger UI's CSS uses data: images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, UNSAFE_EVAL],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}
if SECURE_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Import / export -------------------------------------------------------------------------------------------
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = True
# An upload waits for its confirmation half an hour at most, and goes once confirmed or refused.
IMPORT_EXPORT_TMP_STORAGE_CLASS = "fund.admin.imports.UploadCache"
# Off: the library only drops a leading "="; every export goes through fund.text.safe_cell instead.
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = False

# --- History ---------------------------------------------------------------------------------------------------
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # A refused request (403) is logged in one line: its traceback says nothing about a fault.
    "filters": {"no_traceback_for_403": {"()": "fund.logs.NoTracebackForForbidden"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["no_traceback_for_403"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- The JSON API (/api/) ---------------------------------------------------------------------------------
# The ninja app serves the documentation page's scripts from our static files, not from a CDN.
INSTALLED_APPS += ["ninja"]
# Errors under /api/ that ninja never sees (unknown address, wrong method) answer JSON too.
MIDDLEWARE += ["fund.api.errors.JsonErrorsMiddleware"]
# Bearer tokens expire after this many seconds (8 hours, like a session, by default).
API_TOKEN_LIFETIME = env.int("API_TOKEN_LIFETIME", default=60 * 60 * 8)
if API_TOKEN_LIFETIME <= 0:
    raise ImproperlyConfigured("API_TOKEN_LIFETIME must be a positive number of seconds.")

from config.unfold import UNFOLD  # noqa: E402  (kept in its own module: it is long and admin-only)

__all__ = ["UNFOLD"]
