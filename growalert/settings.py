"""Settings, read from the environment (and an optional ``.env`` file at the project root).

Every variable is documented in ``.env.example``. With ``DJANGO_DEBUG`` off, missing secrets
fail at start-up instead of falling back to development values.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from observability import logs as observability_logs

django_stubs_ext.monkeypatch()  # generic admin/form classes (ModelAdmin[Monitor]) at runtime

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG: bool = env.bool("DJANGO_DEBUG", default=False)


def secret(name: str, *, dev_default: str) -> str:
    """A secret from the environment; with DEBUG on, ``dev_default`` stands in for it."""
    value: str = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(f"{name} must be set when DJANGO_DEBUG is off")


SECRET_KEY = secret("DJANGO_SECRET_KEY", dev_default="dev-only-insecure-secret-key-change-me")
ALLOWED_HOSTS: list[str] = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS: list[str] = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Public base URL: every absolute link in emails and notifications is built from it
# (shared.links.absolute_url), never from the request. https in production (a deploy check).
# Unset, it is where `make run` serves: http://127.0.0.1:$PORT (8000 unless PORT is set).
SITE_URL: str = env.str(
    "GROWALERT_SITE_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by the app (/api/docs offline)
    "growalert",  # deploy checks (growalert/checks.py), the site_url template tag
    "django_celery_beat",
    "axes",
    "accounts",
    "monitors",
    "billing",
    "devices",
]

MIDDLEWARE = [
    # Outermost: every log line of the request, and its response, carry its X-Request-ID.
    "observability.middleware.RequestIdMiddleware",
    # First, so that errors raised before DRF (or by other middleware) answer JSON on the API.
    "shared.errors.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "growalert.csp.CSPMiddleware",  # django-csp's, see growalert/csp.py
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.timezones.TimeZoneMiddleware",  # pages in the person's own time zone
    "django.contrib.messages.middleware.MessageMiddleware",
    # The acting member (session or API token) and what their role may do (accounts/permissions)
    "accounts.tenancy.TenancyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login lock-out (axes) into the login page with its message.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "growalert.urls"
WSGI_APPLICATION = "growalert.wsgi.application"

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
                "growalert.pages.context.team",
            ],
        },
    },
]

# The local servers' ports (scripts/services.sh reads the same variables): below the Linux
# ephemeral range (32768-60999), where a busy machine's outgoing connections can hold a port.
PG_PORT: int = env.int("GROWALERT_PG_PORT", default=15432)
REDIS_PORT: int = env.int("GROWALERT_REDIS_PORT", default=16379)
INFLUX_PORT: int = env.int("GROWALERT_INFLUX_PORT", default=18086)
_PG_PASSWORD: str = env.str("GROWALERT_PG_PASSWORD", default="growalert")

DATABASES = {
    "default": env.db(
        "DATABASE_URL",
        default=f"postgres://growalert:{_PG_PASSWORD}@127.0.0.1:{PG_PORT}/growalert",
    ),
}
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 3)
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# psycopg's connection pool in each process (docs/scaling.md "Postgres connections"): a
# connection is taken for a request or a task and given back, instead of one kept per thread.
# Django's pool needs CONN_MAX_AGE 0 (the pool keeps them) and the psycopg-pool package.
DATABASE_POOL: bool = env.bool("DATABASE_POOL", default=False)
if DATABASE_POOL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"]["pool"] = {
        # per process: web worker (threads), Celery pool process, delivery worker (threads)
        "min_size": max(0, env.int("DATABASE_POOL_MIN_SIZE", default=2)),
        "max_size": max(1, env.int("DATABASE_POOL_MAX_SIZE", default=40)),
        "timeout": max(0.5, env.float("DATABASE_POOL_TIMEOUT", default=10.0)),  # wait for one
        "max_idle": max(10.0, env.float("DATABASE_POOL_MAX_IDLE", default=600.0)),
    }
# Behind PgBouncer in transaction mode each transaction may get another server connection:
# no server-side cursors (QuerySet.iterator() would lose its cursor) and no PREPAREd
# statements (monitors/raw_rows.py prepares the GET /monitors page on each connection).
DATABASE_TRANSACTION_POOLING: bool = env.bool("DATABASE_TRANSACTION_POOLING", default=False)
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = DATABASE_TRANSACTION_POOLING
# Lets two test runs share one server (e.g. two checkouts) without sharing a test database.
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_growalert")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL: str = env.str("REDIS_URL", default=f"redis://127.0.0.1:{REDIS_PORT}/0")
# The InfluxDB the deployment itself relies on (demo data, readiness); customers' sources are
# stored per monitor source.
INFLUXDB_URL: str = env.str("INFLUXDB_URL", default=f"http://127.0.0.1:{INFLUX_PORT}")
INFLUXDB_DEMO_DATABASE: str = env.str("INFLUXDB_DEMO_DATABASE", default="growalert_demo")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic's output; production (DEBUG off) serves it with a manifest of hashed names.
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / ".local" / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/app/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Security (README "Running in production"; `manage.py check --deploy` is clean with the
# production variables set, tests/growalert/test_deploy_settings.py runs it) -------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE: bool = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE: bool = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# http -> https redirect; on by default in production. Plain-http use (docker-compose.yml on
# localhost) sets it false. Probes and the metrics scrape answer over plain http either way.
SECURE_SSL_REDIRECT: bool = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^health/deps$", r"^metrics$", r"^status$"]
# Strict-Transport-Security (sent on https responses only). Subdomains and preload are opt-in:
# both are hard to take back once browsers have seen them.
SECURE_HSTS_SECONDS: int = env.int(
    "DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 60 * 60 * 24 * 365
)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool(
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False
)
SECURE_HSTS_PRELOAD: bool = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)


def _proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """``HTTP_X_FORWARDED_PROTO,https``: the header and value a TLS proxy sets for https."""
    if not value.strip():
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 2 or not parts[0].startswith("HTTP_") or not parts[1]:
        raise ImproperlyConfigured(
            "DJANGO_SECURE_PROXY_SSL_HEADER must look like HTTP_X_FORWARDED_PROTO,https"
        )
    return parts[0], parts[1]


# Behind a TLS-terminating proxy that sets the header (and strips it from clients' requests).
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(env.str("DJANGO_SECURE_PROXY_SSL_HEADER", default=""))
USE_X_FORWARDED_HOST: bool = env.bool("DJANGO_USE_X_FORWARDED_HOST", default=False)

# Content-Security-Policy (django-csp): scripts and styles from this site only, inline ones only
# with the request's nonce. Stripe's hosts are added by growalert.csp.stripe_page on the pages
# that load Stripe.js (register, account).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.UserRateThrottle"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "shared.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    # Errors: Django's exceptions too, objects always, Retry-After on 429 (shared/errors.py).
    "EXCEPTION_HANDLER": "shared.errors.api_exception_handler",
    # JSON bounded in size and nesting depth; forms as DRF reads them.
    "DEFAULT_PARSER_CLASSES": [
        "shared.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
# --- Sign-in and API limits (Redis: shared by every worker and host) -----------------------
# API requests per user ("<n>/<sec|min|hour|day>", or "off"); over it: 429 with Retry-After.
API_RATE_LIMIT: str = env.str("API_RATE_LIMIT", default="1200/min")
# Proxies of ours in front of the app that append to X-Forwarded-For; 0 = use REMOTE_ADDR.
TRUSTED_PROXY_HOPS: int = env.int("TRUSTED_PROXY_HOPS", default=0)
# django-axes: LOGIN_FAILURE_LIMIT wrong passwords for one username, or from one address, lock
# sign-in for LOGIN_LOCKOUT_MINUTES; the counters live in the Redis cache and expire by
# themselves (no database table, no unlock command needed).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",  # the username
    "accounts.backends.EmailBackend",  # or the email address
]
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT: int = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the lock-out ends when it said it would
AXES_CLIENT_IP_CALLABLE = "accounts.client_ip.client_address"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.locked_out"
AXES_USERNAME_CALLABLE = "accounts.lockout.attempted_username"
AXES_HTTP_RESPONSE_CODE = 429
AXES_ENABLE_ADMIN = False  # the cache handler keeps no rows for the admin to show

# Bodies above this answer 413 (the API) or a "too much data" page (Django's default, explicit).
DATA_UPLOAD_MAX_MEMORY_SIZE: int = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
SPECTACULAR_SETTINGS = {
    "TITLE": "growalert API",
    "DESCRIPTION": "Monitors on InfluxDB time series, and the customer/billing endpoints.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs uses the Swagger UI files of drf-spectacular-sidecar: no CDN, no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge (an image from validator.swagger.io).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Every operation's error answers (400/401/403/404/.../429), documented once.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "growalert.schema.add_error_responses",
    ],
    # Several models have a "status" and two monitor fields share one policy choice set:
    # named here, the schema's enums read as what they are.
    "ENUM_NAME_OVERRIDES": {
        "MonitorStatusEnum": "monitors.vocabulary.STATUS_CHOICES",
        "DeliveryStatusEnum": "monitors.models.Notification.DeliveryStatus",
        "SubscriptionStatusEnum": "billing.models.Subscription.Status",
        "DeviceOrderStatusEnum": "billing.models.DeviceOrder.Status",
        "DataPolicyEnum": "monitors.vocabulary.DATA_POLICY_CHOICES",
        "MemberRoleEnum": "accounts.models.Role",
        "InvitableRoleEnum": "accounts.models.INVITABLE_ROLE_CHOICES",
    },
}

# Celery: Redis broker, tasks acknowledged after they finish so a killed worker's task runs
# again, one task prefetched at a time, and a time limit on every task.
CELERY_BROKER_URL: str = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND: str | None = None
CELERY_TASK_IGNORE_RESULT = True
# Two queues, two worker pools, so evaluation never waits behind delivery (a hanging webhook
# holds a delivery thread, never an evaluation process): the evaluation queue takes the
# dispatcher, evaluations and housekeeping, the delivery queue monitors.notify.tasks.*. The
# routes live in growalert/celery.py. CELERY_QUEUE (tests, benches) puts every task on one
# private queue; CELERY_EVALUATION_QUEUE / CELERY_DELIVERY_QUEUE rename each on its own.
CELERY_QUEUE: str = env.str("CELERY_QUEUE", default="")
CELERY_EVALUATION_QUEUE: str = env.str(
    "CELERY_EVALUATION_QUEUE", default=CELERY_QUEUE or "evaluation"
)
CELERY_DELIVERY_QUEUE: str = env.str("CELERY_DELIVERY_QUEUE", default=CELERY_QUEUE or "delivery")
CELERY_TASK_DEFAULT_QUEUE: str = CELERY_EVALUATION_QUEUE
# Reuse a worker's Postgres connection for this many tasks instead of reconnecting around each
# (Django's own CONN_MAX_AGE / health checks still apply): a reconnect cost more than a delivery.
CELERY_DB_REUSE_MAX: int = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT: int = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=30)
CELERY_TASK_TIME_LIMIT: int = env.int("CELERY_TASK_TIME_LIMIT", default=60)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

HEALTH_CHECK_TIMEOUT_SECONDS: float = env.float("HEALTH_CHECK_TIMEOUT_SECONDS", default=2.0)
# Monitors of one source evaluated per task (one InfluxDB request each).
EVALUATION_BATCH_SIZE: int = env.int("EVALUATION_BATCH_SIZE", default=1000)
# A busy source is cut into at least this many batches (the worker processes to keep busy).
EVALUATION_SPREAD: int = env.int("EVALUATION_SPREAD", default=2)
# A polled evaluation that changes nothing (a settled ok monitor, nobody told) writes nothing;
# its row's value, reason and last evaluated time are refreshed at most this many seconds apart
# (spread over time; 0: every evaluation writes its row, as before 2026-12-03).
EVALUATION_ROW_REFRESH_SECONDS: float = max(
    0.0, min(env.float("EVALUATION_ROW_REFRESH_SECONDS", default=30.0), 3600.0)
)
# A source's batches run DISPATCH_DATA_MARGIN_MS after the instant its data lands each second,
# learned from the points read (monitors/evaluate/phase.py), rather than at the dispatcher's own.
DISPATCH_ALIGN_TO_DATA: bool = env.bool("DISPATCH_ALIGN_TO_DATA", default=True)
DISPATCH_DATA_MARGIN_MS: int = max(0, min(env.int("DISPATCH_DATA_MARGIN_MS", default=100), 900))
# Monitoring is "blind or late" (growalert_monitoring_blind, /health/deps) when the oldest
# overdue monitor has waited longer than this.
SCHEDULER_LAG_THRESHOLD_SECONDS: float = env.float("SCHEDULER_LAG_THRESHOLD_SECONDS", default=30.0)
# ... or when no worker has recorded the Celery heartbeat for this long,
MONITORING_HEARTBEAT_STALE_SECONDS: float = env.float(
    "MONITORING_HEARTBEAT_STALE_SECONDS", default=60.0
)
# ... or when at least this share of the enabled monitors is in error (their sources are down).
MONITORING_ERROR_RATIO: float = env.float("MONITORING_ERROR_RATIO", default=0.5)
# Staff users (is_staff) and ADMINS get one email per blind episode once it has lasted this
# long, and one when it ends.
MONITORING_BLIND_ALERT_AFTER_MINUTES: float = env.float(
    "MONITORING_BLIND_ALERT_AFTER_MINUTES", default=5.0
)
ADMINS: list[tuple[str, str]] = [
    (address, address) for address in env.list("GROWALERT_ADMIN_EMAILS", default=[]) if address
]
# Prometheus counters and histograms of every process (web and Celery workers) are files
# in this directory (prometheus_client's multiprocess mode), summed by /metrics: they survive
# Redis restarts and processes that exit. The web and worker processes must share it.
PROMETHEUS_MULTIPROC_DIR: str = env.str("PROMETHEUS_MULTIPROC_DIR", default="") or str(
    BASE_DIR / ".local" / "prometheus"
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

# Logs (docs/operations.md): LOG_FORMAT=json writes one JSON object per line with the request
# id, Celery task id/name, monitor and account ids; plain (the default) is for people. The
# per-tick INFO lines of the tasks below (Celery's received/succeeded, beat's sending) are
# DEBUG: LOG_LEVEL=DEBUG shows them.
LOG_FORMAT: str = env.str("LOG_FORMAT", default="plain").strip().lower()
LOG_QUIET_TASKS: list[str] = [
    "monitors.tasks.dispatch_due_monitors",
    "monitors.tasks.evaluate_monitors",
    "monitors.tasks.repair_schedules",
    "monitors.tasks.simulate_demo_devices",
    "monitors.notify.tasks.deliver_due_notifications",
    "monitors.notify.tasks.escalate_due_incidents",
    "growalert.tasks.record_heartbeat",
    "growalert.tasks.check_monitoring",
]
LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO").strip().upper()
if LOG_LEVEL not in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}"
    )
LOGGING = observability_logs.config(fmt=LOG_FORMAT, level=LOG_LEVEL, quiet_tasks=LOG_QUIET_TASKS)

# --- Monitors ------------------------------------------------------------------------------
# Fernet key(s) that encrypt source credentials at rest; the first encrypts, all decrypt (so a
# key can be rotated by prepending a new one).
FIELD_ENCRYPTION_KEYS: list[str] = env.list("FIELD_ENCRYPTION_KEYS", default=[]) or [
    secret("FIELD_ENCRYPTION_KEY", dev_default="ZGV2LW9ubHktZmllbGQta2V5LWNoYW5nZS1tZS0wMDA=")
]
INFLUXDB_QUERY_TIMEOUT_SECONDS: float = env.float("INFLUXDB_QUERY_TIMEOUT_SECONDS", default=5.0)
# Hosted data (devices/hosted.py): each account's database on INFLUXDB_URL is
# HOSTED_DATABASE_PREFIX + account id, with a default retention policy of HOSTED_RETENTION.
HOSTED_DATABASE_PREFIX: str = env.str("HOSTED_DATABASE_PREFIX", default="acct_")
HOSTED_RETENTION: str = env.str("HOSTED_RETENTION", default="30d")
# POST /ingest (devices/ingest/, docs/devices.md): limits and the hot path's caches.
INGEST_MAX_BODY_BYTES: int = env.int("INGEST_MAX_BODY_BYTES", default=256 * 1024)
INGEST_MAX_POINTS: int = env.int("INGEST_MAX_POINTS", default=1000)
INGEST_MAX_FUTURE_SECONDS: int = env.int("INGEST_MAX_FUTURE_SECONDS", default=3600)
INGEST_MAX_PAST_SECONDS: int = env.int("INGEST_MAX_PAST_SECONDS", default=7 * 86400)
INGEST_SIGNATURE_WINDOW_SECONDS: int = env.int("INGEST_SIGNATURE_WINDOW_SECONDS", default=300)
# Per second, counted in Redis: requests and points per device, points per account.
INGEST_DEVICE_REQUESTS_PER_SECOND: int = env.int("INGEST_DEVICE_REQUESTS_PER_SECOND", default=20)
INGEST_DEVICE_POINTS_PER_SECOND: int = env.int("INGEST_DEVICE_POINTS_PER_SECOND", default=2000)
INGEST_ACCOUNT_POINTS_PER_SECOND: int = env.int("INGEST_ACCOUNT_POINTS_PER_SECOND", default=20000)
# POST /influx/write (devices/ingest/pushed.py, docs/arrival.md): a customer's InfluxDB pushing
# its writes (a subscription). Per source and second; the account's points limit above is shared.
PUSH_MAX_BODY_BYTES: int = env.int("PUSH_MAX_BODY_BYTES", default=4 * 1024 * 1024)
PUSH_SOURCE_REQUESTS_PER_SECOND: int = env.int("PUSH_SOURCE_REQUESTS_PER_SECOND", default=200)
PUSH_SOURCE_POINTS_PER_SECOND: int = env.int("PUSH_SOURCE_POINTS_PER_SECOND", default=20000)
# A device found by its key is remembered this long per web process: a rotated or revoked
# key keeps working at most this long.
INGEST_KEY_CACHE_SECONDS: float = env.float("INGEST_KEY_CACHE_SECONDS", default=10.0)
# The flusher (manage.py ingest_flusher) moves accepted readings from Redis to InfluxDB.
INGEST_FLUSH_INTERVAL_MS: int = env.int("INGEST_FLUSH_INTERVAL_MS", default=100)
INGEST_FLUSH_BATCH: int = env.int("INGEST_FLUSH_BATCH", default=500)
# After a round that was not full, the flusher lets batches gather until this long after the
# round began: fewer, larger writes at a moderate rate (a round per request at 100 requests/s
# cost the flusher and InfluxDB ~25 ms of CPU per 1,000 readings), at most this much later.
INGEST_FLUSH_GATHER_MS: int = max(0, env.int("INGEST_FLUSH_GATHER_MS", default=50))
# Concurrent /write requests per flusher round (InfluxDB parses each request on one core).
INGEST_FLUSH_WRITERS: int = env.int("INGEST_FLUSH_WRITERS", default=2)
# Evaluation on arrival (manage.py evaluate_on_arrival, docs/arrival.md): hosted monitors whose
# aggregation is incremental are decided as their readings arrive. ARRIVAL_SHARDS evaluator
# processes each own the monitors whose id modulo ARRIVAL_SHARDS is their shard.
ARRIVAL_EVALUATION: bool = env.bool("ARRIVAL_EVALUATION", default=True)
ARRIVAL_SHARDS: int = env.int("ARRIVAL_SHARDS", default=1)
ARRIVAL_BATCH: int = env.int("ARRIVAL_BATCH", default=1000)
# After a read that was not full, an evaluator waits up to this long before the next, so that a
# read carries several batches (each read costs two Redis round trips and its bookkeeping,
# whatever it carries); 0 reads again at once. Bounded: it adds at most this to the latency.
ARRIVAL_GATHER_MS: int = min(max(env.int("ARRIVAL_GATHER_MS", default=20), 0), 200)
# Demo mode (make run): beat keeps the demo account's GRO-01 devices posting to /ingest.
GROWALERT_DEMO: bool = env.bool("GROWALERT_DEMO", default=False)
# The demo's devices post to this URL (scripts/run_all.sh sets it to the running web server);
# empty, or no server answering, and they go through the ingest service in-process.
DEMO_INGEST_URL: str = env.str("DEMO_INGEST_URL", default="")
DEMO_USERNAME: str = env.str("DEMO_USERNAME", default="admin")

# --- Notifications ------------------------------------------------------------------------
DEFAULT_FROM_EMAIL: str = env.str(
    "DEFAULT_FROM_EMAIL", default="growalert <alerts@growalert.local>"
)
EMAIL_BACKEND: str = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST: str = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT: int = env.int("EMAIL_PORT", default=1025)
EMAIL_HOST_USER: str = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD: str = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS: bool = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT: int = env.int("EMAIL_TIMEOUT", default=10)
# Customer webhooks may not target private, loopback or link-local addresses unless allowed
# (SSRF protection). Tests and local development allow them.
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES: bool = env.bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=False)
# Customer InfluxDB sources: the same guard (monitors/outbound.py). The deployment's own InfluxDB
# (INFLUXDB_URL) is never a customer source, even with private addresses allowed.
SOURCES_ALLOW_PRIVATE_ADDRESSES: bool = env.bool("SOURCES_ALLOW_PRIVATE_ADDRESSES", default=False)
# The shortest check interval a customer may set (monitors/plans.py): MONITOR_MIN_INTERVAL_SECONDS
# by default; MONITOR_MIN_INTERVAL_BY_PRICE gives a plan (a subscription's Stripe price id or
# lookup key) its own floor, e.g. "price_pro=1,price_basic=30". Every floor lies within the
# absolute bounds (1 s .. 1 day, monitors.models.MIN_INTERVAL/MAX_INTERVAL).
MONITOR_MIN_INTERVAL_SECONDS: float = max(
    1.0, min(env.float("MONITOR_MIN_INTERVAL_SECONDS", default=10.0), 86400.0)
)
MONITOR_MIN_INTERVAL_BY_PRICE: dict[str, float] = {
    price: max(1.0, min(float(seconds), 86400.0))
    for price, seconds in env.dict("MONITOR_MIN_INTERVAL_BY_PRICE", default={}).items()
}
# Fleet monitors (one monitor, one state per series): at most FLEET_MAX_SERIES series per
# monitor (more are left unwatched, said in its status and counted at /metrics); more than
# FLEET_STORM_THRESHOLD series changing in one evaluation make one message per channel (a
# monitor's storm_threshold overrides it); a steady series' last value is rewritten at most
# every FLEET_VALUE_REFRESH_SECONDS (a changed state is written at once).
FLEET_MAX_SERIES: int = max(1, min(env.int("FLEET_MAX_SERIES", default=10_000), 100_000))
FLEET_STORM_THRESHOLD: int = max(1, min(env.int("FLEET_STORM_THRESHOLD", default=10), 1000))
FLEET_VALUE_REFRESH_SECONDS: float = max(
    0.0, min(env.float("FLEET_VALUE_REFRESH_SECONDS", default=60.0), 3600.0)
)
# Delivery retries: exponential backoff with jitter from BASE up to MAX seconds, for
# RETRY_FOR_HOURS after a notification was written (Stripe retries webhooks for 3 days), at
# most MAX_ATTEMPTS tries (a guard; the attempts column is a small integer); a channel is
# disabled after DISABLE_AFTER permanent failures in a row, and its owner is told by another
# channel once it has been failing for TELL_OWNER_AFTER_MINUTES.
NOTIFY_RETRY_BASE_SECONDS: float = env.float("NOTIFY_RETRY_BASE_SECONDS", default=2.0)
NOTIFY_RETRY_MAX_SECONDS: float = min(
    env.float("NOTIFY_RETRY_MAX_SECONDS", default=3600.0), 24 * 3600.0
)
NOTIFY_RETRY_FOR_HOURS: float = min(env.float("NOTIFY_RETRY_FOR_HOURS", default=72.0), 24 * 30.0)
NOTIFY_MAX_ATTEMPTS: int = max(1, min(env.int("NOTIFY_MAX_ATTEMPTS", default=500), 30000))
NOTIFY_DISABLE_AFTER: int = env.int("NOTIFY_DISABLE_AFTER", default=3)
NOTIFY_TELL_OWNER_AFTER_MINUTES: float = env.float("NOTIFY_TELL_OWNER_AFTER_MINUTES", default=15.0)
# A claimed row is leased for LEASE_SECONDS, renewed every quarter of it while the send runs;
# the worker then has half of it to record the outcome, retrying on a fresh connection (a
# Postgres restart). A killed worker's row is sent again soon after its lease ends.
NOTIFY_LEASE_SECONDS: float = max(4.0, env.float("NOTIFY_LEASE_SECONDS", default=30.0))
# Per-receiver limits (monitors/notify/breaker.py; a receiver is a webhook's host:port or one
# Slack incoming webhook): at most RECEIVER_CONCURRENCY sends to it at once, across all
# delivery workers; after BREAKER_FAILURES transient failures in a row its circuit opens and
# its notifications wait BREAKER_COOLDOWN_SECONDS (not counted as attempts), then one trial.
NOTIFY_RECEIVER_CONCURRENCY: int = env.int("NOTIFY_RECEIVER_CONCURRENCY", default=4)
# A send that finds every slot of its receiver taken waits up to this long for one (a slot is
# handed back as a send ends, within milliseconds from a healthy receiver) before it is deferred
# (about a second, with its backoff): a burst to one receiver leaves as fast as the receiver
# answers instead of its excess trickling out seconds later. 0: deferred at once.
NOTIFY_RECEIVER_BUSY_WAIT_SECONDS: float = max(
    0.0, min(env.float("NOTIFY_RECEIVER_BUSY_WAIT_SECONDS", default=0.5), 5.0)
)
# Outbox rows written together (a round of alerts) are sent side by side by one delivery
# process, at most BURST_CONCURRENCY at once (monitors/notify/burst.py). The sends' threads
# hold no database connection, so the default lets a whole burst (queue.BURST_SIZE) leave at
# once; each receiver's own limit (RECEIVER_CONCURRENCY) still holds.
NOTIFY_BURST_CONCURRENCY: int = max(1, min(env.int("NOTIFY_BURST_CONCURRENCY", default=100), 256))
NOTIFY_BREAKER_FAILURES: int = env.int("NOTIFY_BREAKER_FAILURES", default=5)
NOTIFY_BREAKER_COOLDOWN_SECONDS: float = env.float("NOTIFY_BREAKER_COOLDOWN_SECONDS", default=30.0)
TWILIO_ACCOUNT_SID: str = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN: str = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER: str = env.str("TWILIO_FROM_NUMBER", default="")
TWILIO_API_BASE: str = env.str("TWILIO_API_BASE", default="https://api.twilio.com")

# --- Acknowledgement and escalation (monitors/notify/acknowledge.py, escalation.py) -----------
# How long the one-click acknowledgement link in a notification stays valid.
ACK_LINK_HOURS: int = env.int("ACK_LINK_HOURS", default=48)

# --- Retention (monitors/retention.py, docs/operations.md "Retention") -----------------------
# Rows older than these ages are deleted by the prune-old-rows beat task (every 5 minutes) and
# `manage.py prune`; 0 keeps them for ever. Notifications go with their delivery attempts, and
# only once delivered or dead (never pending or retrying, never while their incident is open).
RETENTION_NOTIFICATIONS_DAYS: float = max(
    0.0, env.float("RETENTION_NOTIFICATIONS_DAYS", default=30.0)
)
# Resolved incidents (an incident a kept notification points at, and each monitor's latest, stay).
RETENTION_INCIDENTS_DAYS: float = max(0.0, env.float("RETENTION_INCIDENTS_DAYS", default=90.0))
# Processed and ignored Stripe webhook events (failed ones stay); at least 7 days, so that the
# stored id still de-duplicates a delivery Stripe retries (for up to 3 days).
RETENTION_STRIPE_EVENTS_DAYS: float = env.float("RETENTION_STRIPE_EVENTS_DAYS", default=90.0)
if RETENTION_STRIPE_EVENTS_DAYS > 0:
    RETENTION_STRIPE_EVENTS_DAYS = max(7.0, RETENTION_STRIPE_EVENTS_DAYS)
RETENTION_ADMIN_LOG_DAYS: float = max(0.0, env.float("RETENTION_ADMIN_LOG_DAYS", default=365.0))
# A fleet monitor's series with no data for this long (not firing, no open incident) is
# forgotten; it joins again as a new series if it comes back.
RETENTION_GONE_SERIES_DAYS: float = max(0.0, env.float("RETENTION_GONE_SERIES_DAYS", default=7.0))
# Rows per DELETE statement (at most 1000), seconds one run may spend (the rest waits for the
# next run), and a pause between batches that leaves Postgres to the pipeline.
RETENTION_BATCH_SIZE: int = max(1, min(env.int("RETENTION_BATCH_SIZE", default=1000), 1000))
RETENTION_TIME_BUDGET_SECONDS: float = max(
    1.0, min(env.float("RETENTION_TIME_BUDGET_SECONDS", default=20.0), 240.0)
)
RETENTION_PAUSE_SECONDS: float = max(
    0.0, min(env.float("RETENTION_PAUSE_SECONDS", default=0.01), 1.0)
)

# --- Billing (Stripe) ---------------------------------------------------------------------
# Empty keys mean Stripe is not configured: /config says so and the pages explain it.
STRIPE_SECRET_KEY: str = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY: str = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET: str = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Where the SDK sends requests; tests point it at a fake Stripe API on loopback.
STRIPE_API_BASE: str = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
# Prices by lookup key or id (price_...): never hard-coded in the code.
STRIPE_SUBSCRIPTION_PRICES: list[str] = env.list(
    "STRIPE_SUBSCRIPTION_PRICES", default=["growalert_monthly"]
)
STRIPE_DEVICE_PRICE: str = env.str("STRIPE_DEVICE_PRICE", default="gro01_device")
BILLING_PAST_DUE_GRACE_DAYS: int = env.int("BILLING_PAST_DUE_GRACE_DAYS", default=7)
BILLING_MAX_DEVICES_PER_ORDER: int = env.int("BILLING_MAX_DEVICES_PER_ORDER", default=100)

# --- Operations: error reports and traces (docs/operations.md) --------------------------------
# Sentry: unhandled exceptions (web, workers, beat) and ERROR log lines, scrubbed of secrets
# (observability/errors.py). Unset: sentry_sdk is not even imported.
SENTRY_DSN: str = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT: str = env.str(
    "SENTRY_ENVIRONMENT", default="development" if DEBUG else "production"
)
SENTRY_RELEASE: str = env.str("SENTRY_RELEASE", default="")
SENTRY_SAMPLE_RATE: float = max(0.0, min(env.float("SENTRY_SAMPLE_RATE", default=1.0), 1.0))
if SENTRY_DSN:
    from observability import errors as observability_errors

    observability_errors.init(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        release=SENTRY_RELEASE,
        sample_rate=SENTRY_SAMPLE_RATE,
    )
# OpenTelemetry traces (observability/tracing.py) when OTEL_EXPORTER_OTLP_ENDPOINT is set (the
# collector's OTLP/HTTP base URL, e.g. http://otel-collector:4318). The share of requests and
# beat ticks traced: tasks follow the request or tick that sent them.
TRACING_SAMPLE_RATIO: float = max(0.0, min(env.float("OTEL_TRACES_SAMPLER_ARG", default=0.1), 1.0))
TRACING_SERVICE_NAME: str = env.str("OTEL_SERVICE_NAME", default="growalert")
