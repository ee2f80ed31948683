# tradectl service image (docs/deployment.md#docker). Runs as uid/gid 10001; the health check needs no
# credentials. One stage: every dependency is a binary wheel (TA-Lib included, for amd64 and arm64), so
# there is no compiler or build output to leave behind in a builder stage.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid/gid, so that a bind-mounted data directory can be given to it: chown 10001:10001 DIR.
ARG TRADECTL_UID=10001
ARG TRADECTL_GID=10001
RUN groupadd --gid "${TRADECTL_GID}" tradectl \
    && useradd --uid "${TRADECTL_UID}" --gid tradectl --home-dir /app --no-create-home --no-log-init \
        --shell /usr/sbin/nologin tradectl
WORKDIR /app

# Dependencies first, pinned with hashes: this layer survives every change to the source.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY core ./core
COPY exchanges ./exchanges
COPY strategies ./strategies
COPY persistence ./persistence
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info \
    && install -m 0755 core/app/docker-entrypoint.sh /usr/local/bin/docker-entrypoint \
    && install -d -o tradectl -g tradectl -m 0750 /app/data

# /app/data holds the embedded SQLite database, backups and the instance lock files. No VOLUME here
# (it would leave an anonymous volume behind every container, even on PostgreSQL): mount a named
# volume or a directory owned by 10001 there to keep the embedded database (docs/deployment.md).
USER tradectl:tradectl

# Through the entrypoint so that POSTGRES_PASSWORD_FILE / DATABASE_URL_FILE apply to the probe too.
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 CMD ["docker-entrypoint", "health"]

# With no arguments: `tradectl db upgrade`, then `tradectl run`, each a child of the entrypoint, which
# forwards SIGTERM/SIGINT (docker stop works during migrations too). Arguments run `tradectl ARGS`.
ENTRYPOINT ["docker-entrypoint"]
CMD []
