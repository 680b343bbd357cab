# Superset configuration for the tweetlake dashboards (scripts/superset.sh points
# SUPERSET_CONFIG_PATH here).  Secrets come from the environment only; metadata lives in
# SQLite under SUPERSET_HOME unless SUPERSET_METADATA_URI names another database.
import os
import sys

SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY", "")
if len(SECRET_KEY) < 32:
    # Superset would otherwise start with a well-known default key, which signs session
    # cookies and encrypts the stored database password.
    sys.exit(
        "superset_config.py: SUPERSET_SECRET_KEY is not set (or shorter than 32 characters).\n"
        "Set it to a long random string, e.g. export SUPERSET_SECRET_KEY=$(openssl rand -base64 42),\n"
        "and keep it: the stored tweetlake_reader password is encrypted with it.\n"
        "scripts/superset.sh generates one in $SUPERSET_HOME/secrets.env when it is unset."
    )

# Metadata (users, dashboards, charts): SQLite in SUPERSET_HOME by default; a Postgres
# database for a shared or longer-lived setup, e.g.
#   SUPERSET_METADATA_URI=postgresql+psycopg2://superset:secret@127.0.0.1:5432/superset
DATA_DIR = os.environ.get("SUPERSET_HOME") or os.path.expanduser("~/.superset")
SQLALCHEMY_DATABASE_URI = os.environ.get("SUPERSET_METADATA_URI") or (
    "sqlite:///" + os.path.join(DATA_DIR, "superset.db") + "?check_same_thread=false"
)

# No Redis: nothing cached (gold answers fast), login rate limits counted in memory.
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
RATELIMIT_STORAGE_URI = "memory://"

# Served on loopback over plain HTTP (scripts/superset.sh); behind a TLS proxy set
# SUPERSET_HTTPS=1 to mark the session cookie secure.
SESSION_COOKIE_SECURE = os.environ.get("SUPERSET_HTTPS") == "1"
SESSION_COOKIE_SAMESITE = "Lax"

# Security headers (flask-talisman): a Content-Security-Policy and X-Frame-Options: SAMEORIGIN
# on every response.  The policy is Superset 4.1's own TALISMAN_CONFIG (superset/config.py),
# which its UI is built for (scripts carry a per-request nonce), without the third-party hosts
# these dashboards never use: Mapbox tiles, and Scarf's telemetry pixel, which the browser now
# blocks (one CSP report on its console per page, nothing else); and with frame-ancestors
# 'self' so browsers that follow CSP level 2 refuse framing by other sites too.
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "script-src": ["'self'", "'strict-dynamic'"],
        "frame-ancestors": ["'self'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "frame_options": "SAMEORIGIN",
    # TLS ends at a proxy, if anywhere (SUPERSET_HTTPS=1): no redirect to https here
    "force_https": False,
    "session_cookie_secure": SESSION_COOKIE_SECURE,
}
