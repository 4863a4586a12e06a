"""Settings, read from the environment and nowhere else."""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "lockstep-dev-only-secret-change-me")
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "telemetry.admin_site.OperatorsAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "telemetry",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "telemetry.scope.RequestScopeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: DATABASE_URL, or the embedded PostgreSQL under var/ ---------------------
# That URL is the schema owner's ("owner"): migrations, the roles and grants they set up, and
# the cutover's DDL use it. The app itself ("default") connects to the same database as
# LOCKSTEP_DB_ROLE, which is neither superuser nor BYPASSRLS, so PostgreSQL's row-level
# security keeps each organisation's rows its own (telemetry/scope.py).
if os.environ.get("DATABASE_URL"):
    _owner = dj_database_url.parse(os.environ["DATABASE_URL"])
else:
    from config.embedded_db import embedded_database

    _owner = embedded_database(BASE_DIR / "var" / "pgdata")
LOCKSTEP_DB_ROLE = os.environ.get("LOCKSTEP_DB_ROLE", "lockstep_app")
LOCKSTEP_DB_PASSWORD = os.environ.get("LOCKSTEP_DB_PASSWORD", "")
# The role `scope.all_orgs()` assumes for work that spans organisations (BYPASSRLS, no login).
LOCKSTEP_DB_OPS_ROLE = f"{LOCKSTEP_DB_ROLE}_ops"
_owner["CONN_MAX_AGE"] = 0
_app = {**_owner, "USER": LOCKSTEP_DB_ROLE, "PASSWORD": LOCKSTEP_DB_PASSWORD}
_app["OPTIONS"] = {
    **_owner.get("OPTIONS", {}),
    # Compiling plans just in time costs more than it saves for this app's queries (the
    # checks and dashboard queries spent more time in JIT than in execution when it kicked in).
    "options": "-c jit=off",
    # The pool keeps connections instead of CONN_MAX_AGE; each goes back to it as the app's
    # own role, whatever role `scope.all_orgs()` gave its session.
    "pool": {
        "min_size": 1,
        "max_size": int(os.environ.get("DATABASE_POOL_SIZE", "10")),
        "timeout": 10,
        "reset": lambda conn: conn.execute("RESET ROLE"),
    },
}
DATABASES = {"default": _app, "owner": _owner}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Celery: Redis when CELERY_BROKER_URL is set, otherwise tasks run in-process --------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # A safety net for the on-commit trigger, and what makes retries happen when due.
    "drain-legacy-outbox": {"task": "telemetry.tasks.drain_legacy_outbox", "schedule": 10.0},
    "refresh-rollups": {"task": "telemetry.tasks.refresh_rollups", "schedule": 15.0},
    "deliver-webhooks": {"task": "telemetry.tasks.deliver_webhooks", "schedule": 10.0},
    "check-recent-consistency": {
        "task": "telemetry.tasks.check_recent_consistency",
        "schedule": 300.0,
        "kwargs": {"minutes": 15},
    },
    "check-all-consistency": {
        "task": "telemetry.tasks.check_all_consistency",
        "schedule": crontab(hour=3, minute=0),
    },
}

# --- API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "telemetry.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["telemetry.api.auth.HasOrganization"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "telemetry.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lockstep API",
    "DESCRIPTION": (
        "Ingest the telemetry of LLM workflow runs, dual-written to the consolidated and "
        "legacy tables, and read it back."
    ),
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",  # pydantic models describe nullable fields the 3.1 way
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No online validator badge: the docs page fetches nothing from the internet.
    "SWAGGER_UI_SETTINGS": {"validatorUrl": None, "deepLinking": True},
}

# --- Lockstep ----------------------------------------------------------------------------
# sync: consolidated rows and their legacy projection commit in one transaction.
# async: consolidated rows and an outbox record commit together; Celery drains the outbox.
LOCKSTEP_WRITE_MODE = os.environ.get("LOCKSTEP_WRITE_MODE", "sync")
if LOCKSTEP_WRITE_MODE not in ("sync", "async"):
    raise RuntimeError(f"LOCKSTEP_WRITE_MODE={LOCKSTEP_WRITE_MODE!r}: use 'sync' or 'async'.")
# Dashboard rollups: recomputed inside each write ("inline"), or queued and recomputed by
# Celery right after commit ("deferred", coalescing writes to the same hour; the default when
# a broker is configured).
LOCKSTEP_ROLLUP_REFRESH = os.environ.get(
    "LOCKSTEP_ROLLUP_REFRESH", "deferred" if os.environ.get("CELERY_BROKER_URL") else "inline"
)
if LOCKSTEP_ROLLUP_REFRESH not in ("inline", "deferred"):
    raise RuntimeError("LOCKSTEP_ROLLUP_REFRESH: use 'inline' or 'deferred'.")
LOCKSTEP_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("LOCKSTEP_WEBHOOK_MAX_ATTEMPTS", "8"))
LOCKSTEP_OUTBOX_MAX_ATTEMPTS = int(os.environ.get("LOCKSTEP_OUTBOX_MAX_ATTEMPTS", "8"))
LOCKSTEP_MAX_BODY_BYTES = int(os.environ.get("LOCKSTEP_MAX_BODY_BYTES", str(10 * 1024 * 1024)))
LOCKSTEP_MAX_RUNS_PER_BATCH = int(os.environ.get("LOCKSTEP_MAX_RUNS_PER_BATCH", "1000"))
LOCKSTEP_INGEST_RATE = os.environ.get("LOCKSTEP_INGEST_RATE", "1200/min")
LOCKSTEP_DEMO_API_KEY = os.environ.get(
    "LOCKSTEP_DEMO_API_KEY", "lsk_demo0000_localdevelopmentkeyfordemodataonly"
)
DATA_UPLOAD_MAX_MEMORY_SIZE = LOCKSTEP_MAX_BODY_BYTES
# "rollup" or "base" forces where the dashboard's figures come from (the benchmark compares
# them); unset, each page uses the rollups whenever they can answer.
LOCKSTEP_DASHBOARD_SOURCE = os.environ.get("LOCKSTEP_DASHBOARD_SOURCE") or None

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if os.environ.get("REDIS_URL"):
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["REDIS_URL"],
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"pgserver": {"level": "WARNING"}},
}
