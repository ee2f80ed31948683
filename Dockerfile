# tradectl service image. Runs as a non-root user; the health check needs no credentials.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

RUN groupadd --system tradectl && useradd --system --gid tradectl --home-dir /app --shell /usr/sbin/nologin tradectl
WORKDIR /app

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY core ./core
COPY exchanges ./exchanges
COPY strategies ./strategies
COPY persistence ./persistence
RUN pip install . && mkdir -p /app/data && chown tradectl:tradectl /app/data

USER tradectl
VOLUME ["/app/data"]

HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 CMD ["tradectl", "health"]

# Apply migrations, then run. Replicas racing on `db upgrade` are safe: upgrades serialise on a
# PostgreSQL advisory lock held by the migration transaction, and the second finds the schema at head.
CMD ["sh", "-c", "tradectl db upgrade && exec tradectl run"]
