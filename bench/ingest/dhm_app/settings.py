"""Minimal Django project around django-health-monitor 0.2.9: SQLite, the package's app and a
test app shaped like the package's own `test/` app (heart test in group doctor). Used only as
the anchor of bench/ingest/run.sh."""
import os

SECRET_KEY = "bench-only-not-secret"
# DEBUG off: with DEBUG on Django keeps every SQL query in memory, which would tax the anchor.
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "health_monitor",
    "bodyhealth",
]

# The middleware of the package's test project, less admin/messages (not installed here).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DHM_DB", os.path.join(os.path.dirname(__file__), "db.sqlite3")),
    }
}
