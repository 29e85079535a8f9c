"""Triad settings: everything from the environment, with an embedded default.

A bare start is production: SECRET_KEY is required and cookies, redirects and HSTS assume HTTPS;
TRIAD_DEV=true (set by `make demo` and `make test`) is development on plain HTTP with a generated key.
No storage variables give the embedded mode: SQLite under var/, a filesystem Celery broker that needs no
server, and the in-memory channel layer in a single ASGI process. Setting DATABASE_URL, CELERY_BROKER_URL
and REDIS_URL moves the same code onto PostgreSQL and Redis. See .env.example for every variable.
"""

import base64
from pathlib import Path

import dj_database_url

from controlplane.env import ConfigError, env_bool, env_float, env_int, env_list, env_str
from controlplane.logs import LOG_FORMATS, PLAIN_FORMAT

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TRIAD_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Development mode: explicitly opted into (`make demo`, `make test` and `manage.py demo` set it). A bare
# start is production: no default secret, secure cookies, HTTPS only (see "Security" below).
TRIAD_DEV = env_bool("TRIAD_DEV", False)
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not TRIAD_DEV:
        raise ConfigError(
            "SECRET_KEY: required (set SECRET_KEY or SECRET_KEY_FILE; TRIAD_DEV=true generates one for "
            "development only)"
        )
    # Development only: a key kept under var/ so sessions survive restarts of `make demo`.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",  # /admin/: every model, for site admins (docs/teams.md, "Administration")
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "channels",
    "ninja",  # the REST API's browsable docs, served from its own static files (no CDN)
    "controlplane",
    "controlplane.accounts",
    "datasets_app",
    "runs",
    "runs.review",
    "runs.spend",
    "runs.registry",
    "runs.evals",
    "runs.alerts",
    "runs.sweeps",
]

MIDDLEWARE = [
    "controlplane.logs.RunLogContextMiddleware",  # lines written for a run's URL carry its id
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
ASGI_APPLICATION = "controlplane.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["template_partials.templatetags.partials", "controlplane.templatetags.when"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "controlplane.accounts.context_processors.roles",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    try:
        # Checked before use (CONN_HEALTH_CHECKS): a database restart costs no request.
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_health_checks=True)}
    except Exception as exc:
        raise ConfigError(f"DATABASE_URL: cannot parse it: {exc}") from exc
    # Under ASGI each request's sync code runs in a thread of its own (controlplane/http_handler.py keeps
    # some for later requests, but there are as many as requests in flight), and Django's persistent
    # connections (CONN_MAX_AGE) belong to a thread: a pool of up to TRIAD_DB_POOL_SIZE connections per
    # process instead, each held by a thread only for its request.
    # Only PostgreSQL has the pool (psycopg's); any other backend refuses the option at connect.
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env_int("TRIAD_DB_POOL_SIZE", 20, minimum=1),
            "timeout": 30,
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "triad.sqlite3"),
            # Several processes (web, workers) share the file in embedded mode: wait for locks.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
            # Tests on the embedded default use a file too, not Django's shared in-memory database: as in
            # `make demo`, concurrent connections then wait for the lock instead of failing at once
            # ("database table is locked"), and processes a test starts can open the same database.
            "TEST": {"NAME": str(VAR_DIR / "test_triad.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "runs:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
# The web process serves /static/ itself (controlplane/asgi.py); behind a proxy that serves STATIC_ROOT,
# false. Production (TRIAD_DEV unset) serves what `manage.py collectstatic` wrote: hashed names that browsers
# cache for good, with gzip copies, from a manifest (ServeStatic's storage). Development reads the source
# folders as they are, so `make demo` and the tests need no collectstatic.
TRIAD_SERVE_STATIC = env_bool("TRIAD_SERVE_STATIC", True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if TRIAD_DEV
        else "servestatic.storage.CompressedManifestStaticFilesStorage"
    },
}

# Uploads: a dataset file is streamed to disk past this size, and refused past TRIAD_MAX_UPLOAD_MB.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
TRIAD_MAX_UPLOAD_BYTES = env_int("TRIAD_MAX_UPLOAD_MB", 64, minimum=1) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("TRIAD_MAX_REQUEST_MB", 4, minimum=1) * 1024 * 1024
TRIAD_INGEST_MAX_BYTES = DATA_UPLOAD_MAX_MEMORY_SIZE
TRIAD_INGEST_MAX_EVENTS = env_int("TRIAD_INGEST_MAX_EVENTS", 5000, minimum=1)
# Events per second per run through the ingest API (0: no limit); past it, 429 with Retry-After.
TRIAD_INGEST_EVENTS_PER_S = env_int("TRIAD_INGEST_EVENTS_PER_S", 50_000, minimum=0)
# New test-by-test matrices of the review compare page (sandbox work) per user per clock minute (0: no
# limit); a matrix already computed for the same code and tests is free.
TRIAD_COMPARE_PER_MIN = env_int("TRIAD_COMPARE_PER_MIN", 10, minimum=0)
# Calls per personal API token per clock minute through the REST API (0: no limit); past it, 429 with
# Retry-After.
TRIAD_API_CALLS_PER_MIN = env_int("TRIAD_API_CALLS_PER_MIN", 600, minimum=0)

# Where GPU nodes reach the control plane (the ingest API); put into every run's spec.
TRIAD_CONTROL_URL = env_str("TRIAD_CONTROL_URL", "http://127.0.0.1:8000").rstrip("/")
TRIAD_RUNS_DIR = Path(env_str("TRIAD_RUNS_DIR", str(VAR_DIR / "runs")))
# Checkpoints, on storage every node of a pool mounts (a shared filesystem; one machine: a local
# directory), so any node can resume a run: each run's go under <this>/run-<id>.
TRIAD_CHECKPOINT_DIR = Path(env_str("TRIAD_CHECKPOINT_DIR", str(VAR_DIR / "checkpoints")))
TRIAD_DEFAULT_POOL = env_str("TRIAD_DEFAULT_POOL", "cpu")
# On a node: the trainer processes of a CPU run that leaves its GPUs per node at 0 (workers/launcher.py).
TRIAD_PROCS_PER_NODE = env_int("TRIAD_PROCS_PER_NODE", 2, minimum=1)
# The Celery queue of code-execution batches (dataset verification and trainers' rewards).
TRIAD_SANDBOX_QUEUE = env_str("TRIAD_SANDBOX_QUEUE", "sandbox")
# The Celery queue of database work (reaper, node registry, cost accrual).
TRIAD_CONTROL_QUEUE = env_str("TRIAD_CONTROL_QUEUE", "control")
# Dataset verification: problems per Celery task, time limit per reference solution, sandbox mode.
TRIAD_VERIFY_CHUNK = env_int("TRIAD_VERIFY_CHUNK", 48, minimum=1)
TRIAD_VERIFY_TIMEOUT_S = env_float("TRIAD_VERIFY_TIMEOUT_S", 10.0, minimum=0.1)
TRIAD_VERIFY_SANDBOX_MODE = env_str("TRIAD_VERIFY_SANDBOX_MODE", "warm")
# Repository tasks (docs/datasets.md, "Repository tasks"): tasks per verification task (each runs its
# tests several times in a workspace) and the time limit of one run of a task's tests.
TRIAD_REPO_VERIFY_CHUNK = env_int("TRIAD_REPO_VERIFY_CHUNK", 4, minimum=1)
TRIAD_REPO_VERIFY_TIMEOUT_S = env_float("TRIAD_REPO_VERIFY_TIMEOUT_S", 60.0, minimum=1.0)
# Generation jobs (docs/datasets.md, "Generation jobs"): how long one step may hold a job before the
# reaper takes it as lost and resumes it (longer than a teacher request with its retries), and the most
# seconds a 429's Retry-After is waited in place.
TRIAD_GENJOB_LEASE_S = env_float("TRIAD_GENJOB_LEASE_S", 600.0, minimum=1.0)
TRIAD_GENJOB_MAX_WAIT_S = env_float("TRIAD_GENJOB_MAX_WAIT_S", 60.0, minimum=0.0)
if TRIAD_VERIFY_SANDBOX_MODE not in ("warm", "cold"):
    raise ConfigError(f"TRIAD_VERIFY_SANDBOX_MODE: expected warm or cold, got {TRIAD_VERIFY_SANDBOX_MODE!r}")
# The generation gate (docs/datasets.md, "The gate"): a candidate whose tests kill a smaller share of its
# reference's mutants than this is rejected as weak_tests.
TRIAD_GATE_MIN_MUTATION_SCORE = env_float("TRIAD_GATE_MIN_MUTATION_SCORE", 0.5, minimum=0.0)
if TRIAD_GATE_MIN_MUTATION_SCORE > 1.0:
    raise ConfigError(f"TRIAD_GATE_MIN_MUTATION_SCORE: must be <= 1, got {TRIAD_GATE_MIN_MUTATION_SCORE}")

# Diversity and collapse (docs/datasets.md): problems sampled per version; a version is flagged when a
# diversity measure falls by more than MAX_DROP (relative) or a near-duplicate rate exceeds MAX_NEAR_DUP.
TRIAD_DIVERSITY_SAMPLE = env_int("TRIAD_DIVERSITY_SAMPLE", 500, minimum=1)
TRIAD_DIVERSITY_MAX_DROP = env_float("TRIAD_DIVERSITY_MAX_DROP", 0.2, minimum=0.0)
TRIAD_DIVERSITY_MAX_NEAR_DUP = env_float("TRIAD_DIVERSITY_MAX_NEAR_DUP", 0.1, minimum=0.0)
# Runs: a run's per-step diversity points are computed at most once per this many seconds.
TRIAD_DIVERSITY_RUN_DELAY_S = env_float("TRIAD_DIVERSITY_RUN_DELAY_S", 10.0, minimum=0.0)
TRIAD_HEARTBEAT_S = env_float("TRIAD_HEARTBEAT_S", 2.0, minimum=0.1)
# GPU nodes describe themselves when their worker starts (detected where these are unset).
TRIAD_NODE_HEARTBEAT_S = env_float("TRIAD_NODE_HEARTBEAT_S", 15.0, minimum=0.5)
TRIAD_NODE_GPU_TYPE = env_str("TRIAD_NODE_GPU_TYPE")
TRIAD_NODE_GPU_COUNT = env_int("TRIAD_NODE_GPU_COUNT", -1, minimum=-1)
TRIAD_NODE_USD_PER_GPU_HOUR = env_float("TRIAD_NODE_USD_PER_GPU_HOUR", -1.0, minimum=-1.0)
# Memory per GPU in GB and compute capability ("9.0"), detected with nvidia-smi where unset (-1 / "").
TRIAD_NODE_GPU_MEMORY_GB = env_float("TRIAD_NODE_GPU_MEMORY_GB", -1.0, minimum=-1.0)
TRIAD_NODE_COMPUTE_CAPABILITY = env_str("TRIAD_NODE_COMPUTE_CAPABILITY")
_major, _, _minor = TRIAD_NODE_COMPUTE_CAPABILITY.partition(".")
if TRIAD_NODE_COMPUTE_CAPABILITY and not (_major.isdigit() and _minor.isdigit()):
    raise ConfigError(
        f"TRIAD_NODE_COMPUTE_CAPABILITY: expected N.N (e.g. 8.0), got {TRIAD_NODE_COMPUTE_CAPABILITY!r}"
    )
# Where the pool's other nodes reach this one (rank 0's address); unset: what its hostname resolves to.
TRIAD_NODE_ADDRESS = env_str("TRIAD_NODE_ADDRESS")
# Nodes' system metrics (CPU, memory, GPUs; runs/node_samples.py) are kept this many hours, then pruned.
TRIAD_NODE_SAMPLES_KEEP_H = env_float("TRIAD_NODE_SAMPLES_KEEP_H", 72.0, minimum=0.1)
# A started run silent for this long is marked lost by the reaper (Celery beat, every 15 s).
TRIAD_LOST_AFTER_S = env_float("TRIAD_LOST_AFTER_S", 60.0, minimum=1.0)
# A running evaluation job whose node sent no word for this long (it says so every
# TRIAD_NODE_HEARTBEAT_S) is failed by its reaper (Celery beat, every 30 s; docs/evals.md).
TRIAD_EVAL_LOST_AFTER_S = env_float("TRIAD_EVAL_LOST_AFTER_S", 120.0, minimum=1.0)
if TRIAD_EVAL_LOST_AFTER_S <= 2 * TRIAD_NODE_HEARTBEAT_S:  # one late word would fail a job that is fine
    raise ConfigError(
        f"TRIAD_EVAL_LOST_AFTER_S ({TRIAD_EVAL_LOST_AFTER_S:g}) must be more than twice "
        f"TRIAD_NODE_HEARTBEAT_S ({TRIAD_NODE_HEARTBEAT_S:g}), how often a node says it is still evaluating"
    )
# Gang claims (runs/gang.py): a claim of a run still gathering its nodes that has not been polled for
# TRIAD_GANG_CLAIM_TTL_S is dropped; a launcher waits at most TRIAD_GANG_WAIT_S for its gang to form.
TRIAD_GANG_CLAIM_TTL_S = env_float("TRIAD_GANG_CLAIM_TTL_S", 20.0, minimum=1.0)
TRIAD_GANG_WAIT_S = env_float("TRIAD_GANG_WAIT_S", 120.0, minimum=1.0)
# A queued run (or a version's verification) that never reached the broker is failed by a reaper after
# this long (docs/runs.md, "Broker down"); one that did reach it may wait in the queue for hours.
TRIAD_ENQUEUE_GRACE_S = env_float("TRIAD_ENQUEUE_GRACE_S", 120.0, minimum=1.0)
# Spend: accrual period (Celery beat), how long past a run's last heartbeat it is still billed (a lost
# node), the price of a pool with no price set, and the step time assumed when no similar run measured one.
TRIAD_SPEND_ACCRUE_S = env_float("TRIAD_SPEND_ACCRUE_S", 10.0, minimum=1.0)
TRIAD_SPEND_GRACE_S = env_float("TRIAD_SPEND_GRACE_S", 30.0, minimum=0.0)
TRIAD_SPEND_DEFAULT_USD_PER_GPU_HOUR = env_float("TRIAD_SPEND_DEFAULT_USD_PER_GPU_HOUR", 2.0, minimum=0.0)
TRIAD_SPEND_DEFAULT_STEP_S = env_float("TRIAD_SPEND_DEFAULT_STEP_S", 10.0, minimum=0.001)

# Alerts (docs/alerts.md). Metric rules are evaluated at most once per run per TRIAD_ALERTS_EVAL_DELAY_S,
# that long after a batch. Webhooks: tried TRIAD_WEBHOOK_ATTEMPTS times in all, waiting
# TRIAD_WEBHOOK_BACKOFF_S, then twice that, and so on; private and loopback targets are refused
# unless TRIAD_WEBHOOK_ALLOW_PRIVATE (on in development, so a local receiver can be tried).
TRIAD_ALERTS_EVAL_DELAY_S = env_float("TRIAD_ALERTS_EVAL_DELAY_S", 2.0, minimum=0.1)
TRIAD_WEBHOOK_ATTEMPTS = env_int("TRIAD_WEBHOOK_ATTEMPTS", 5, minimum=1)
TRIAD_WEBHOOK_BACKOFF_S = env_float("TRIAD_WEBHOOK_BACKOFF_S", 10.0, minimum=0.0)
TRIAD_WEBHOOK_ALLOW_PRIVATE = env_bool("TRIAD_WEBHOOK_ALLOW_PRIVATE", TRIAD_DEV)

# Secrets at rest (datasets_app/secrets.py): a teacher's API key is stored as a Fernet token under this
# key (comma-separated keys rotate: the first encrypts, any decrypts). Unset in development, a key derived
# from SECRET_KEY stands in; unset in production, storing or reading a secret is refused.
TRIAD_SECRETS_KEY = env_str("TRIAD_SECRETS_KEY")
for _secrets_key in filter(None, (k.strip() for k in TRIAD_SECRETS_KEY.split(","))):
    try:
        _secrets_key_ok = len(base64.urlsafe_b64decode(_secrets_key.encode())) == 32
    except ValueError:
        _secrets_key_ok = False
    if not _secrets_key_ok:
        raise ConfigError(
            "TRIAD_SECRETS_KEY: expected Fernet keys (32 url-safe base64 bytes, comma-separated); "
            "generate one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`"
        )
# Mail (alerts): Django's mail settings from the environment. Development writes each mail as a file
# under var/mail/ instead of sending it; production sends through EMAIL_HOST.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if TRIAD_DEV
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "triad@localhost")

# Celery. No broker URL: a filesystem broker under var/ that needs no server (embedded mode).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if not CELERY_BROKER_URL:
    broker_dir = VAR_DIR / "broker"
    broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(broker_dir),
        "data_folder_out": str(broker_dir),
        "processed_folder": str(broker_dir),
        # The exchange table; kombu's default is ./control in whatever directory the process started.
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
    }
# A broker that is down or hung must fail a publish in seconds, so that a launch or an upload says so
# instead of hanging the request (kombu's Redis socket has no read timeout of its own): socket timeouts
# and a short publish retry. Workers' blocking reads wait 1 s at a time, well within the timeout.
TRIAD_BROKER_TIMEOUT_S = env_float("TRIAD_BROKER_TIMEOUT_S", 5.0, minimum=0.1)
CELERY_BROKER_CONNECTION_TIMEOUT = TRIAD_BROKER_TIMEOUT_S
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": TRIAD_BROKER_TIMEOUT_S,
        "socket_timeout": TRIAD_BROKER_TIMEOUT_S,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_IGNORE_RESULT = True  # only tasks that say so store a result (sandbox.run_batch)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# /healthz (controlplane/health.py): how long each check (database, Redis, broker) may take.
TRIAD_HEALTH_TIMEOUT_S = env_float("TRIAD_HEALTH_TIMEOUT_S", 2.0, minimum=0.1)

# Live updates go through runs/live/broadcast.py's own Redis pub/sub (in-process without REDIS_URL), not a
# Channels channel layer: the consumers take no channel-layer channel, so none is configured.
REDIS_URL = env_str("REDIS_URL")
# Where the sandbox fleet's results come back (docs/sandbox.md, "The sandbox fleet"): CELERY_RESULT_BACKEND,
# else REDIS_URL; none on the embedded default, which so refuses runs with sandbox_mode fleet.
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or REDIS_URL or None
CELERY_RESULT_EXPIRES = 3600  # a result its trainer never collected (it died) leaves Redis within the hour

# Security. Production defaults (TRIAD_DEV unset or false): cookies only over HTTPS, plain HTTP
# redirected to HTTPS, HSTS for a year including subdomains; `manage.py check --deploy` is clean.
# Development (plain HTTP on localhost) turns them off. Each can be overridden on its own.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not TRIAD_DEV)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not TRIAD_DEV)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not TRIAD_DEV)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if TRIAD_DEV else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading is a commitment to the browsers' lists that is slow to undo: opt-in, and its deploy check
# (security.W021) silenced while it is off.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Behind a proxy that terminates TLS, the request reaches us as plain HTTP: name the header the proxy
# sets, e.g. SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https (only where the proxy always sets or
# strips it; otherwise a client could claim HTTPS). Without it SECURE_SSL_REDIRECT would loop.
_proxy_header = env_list("SECURE_PROXY_SSL_HEADER", [])
if _proxy_header:
    if len(_proxy_header) != 2 or not _proxy_header[0].startswith("HTTP_"):
        raise ConfigError(
            "SECURE_PROXY_SSL_HEADER: expected HEADER,VALUE with the header as Django names it, "
            f"e.g. HTTP_X_FORWARDED_PROTO,https; got {','.join(_proxy_header)!r}"
        )
    SECURE_PROXY_SSL_HEADER = (_proxy_header[0], _proxy_header[1])
# Load balancers probe the health endpoint over plain HTTP, inside the network: it is not redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Logs (docs/deploy.md, "Logs"): every line carries the run it was written for (controlplane/logs.py);
# TRIAD_LOG_FORMAT=json writes each as one JSON object, for a log pipeline.
TRIAD_LOG_FORMAT = env_str("TRIAD_LOG_FORMAT", "plain")
if TRIAD_LOG_FORMAT not in LOG_FORMATS:
    raise ConfigError(f"TRIAD_LOG_FORMAT: expected plain or json, got {TRIAD_LOG_FORMAT!r}")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ConfigError(f"LOG_LEVEL: expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"run": {"()": "controlplane.logs.RunIdFilter"}},
    "formatters": {
        "plain": {"format": PLAIN_FORMAT},
        "json": {"()": "controlplane.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": TRIAD_LOG_FORMAT, "filters": ["run"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
