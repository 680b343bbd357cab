# Apache Superset with the tweetlake dashboards: the `superset` service of docker-compose.yml.
# Build from the repository root:  docker build -f docker/superset.Dockerfile -t tweetlake/superset .
# The same steps as `make run SUPERSET=1` and the test suite: scripts/install-deps.sh, then
# scripts/superset.sh install (the pinned packages of superset/requirements.txt from PyPI).
# At start, `scripts/superset.sh serve` upgrades the metadata, creates the admin user, gives
# tweetlake_reader its password, imports superset/bundle and serves in the foreground: it
# becomes gunicorn (PID 1) without the setup's credentials (PGUSER, PGPASSWORD, the admin's and
# the reader's passwords) in its environment.  No secret is baked into the image: they all come
# from the environment at run time (docker/.env, which .dockerignore keeps out of the context).
FROM debian:bookworm-slim

ENV LANG=C.UTF-8 \
    SUPERSET_VENV=/opt/superset-venv \
    SUPERSET_HOME=/var/lib/superset \
    SUPERSET_BIND=0.0.0.0 \
    SUPERSET_PORT=8088

COPY scripts/install-deps.sh /usr/src/tweetlake/scripts/install-deps.sh
RUN bash /usr/src/tweetlake/scripts/install-deps.sh --superset-only \
 && rm -rf /var/lib/apt/lists/*

# The virtualenv first, from the pinned requirements only: a change to the dashboards or the
# scripts does not install Superset again.
COPY scripts/superset.sh /usr/src/tweetlake/scripts/superset.sh
COPY superset/requirements.txt /usr/src/tweetlake/superset/requirements.txt
RUN bash /usr/src/tweetlake/scripts/superset.sh install \
 && useradd --system --home-dir /var/lib/superset --shell /usr/sbin/nologin superset \
 && install -d -o superset -g superset -m 700 /var/lib/superset
COPY scripts /usr/src/tweetlake/scripts
COPY superset /usr/src/tweetlake/superset

USER superset
VOLUME /var/lib/superset
EXPOSE 8088
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=12 \
  CMD curl -fsS "http://127.0.0.1:$SUPERSET_PORT/health" || exit 1
CMD ["bash", "/usr/src/tweetlake/scripts/superset.sh", "serve"]
