#!/bin/sh
# Container entrypoint of the tradectl image (installed as /usr/local/bin/docker-entrypoint).
#
#   docker-entrypoint              apply migrations (`tradectl db upgrade`), then `tradectl run`
#   docker-entrypoint ARGS...      `tradectl ARGS...` with the same database password (the health check
#                                  and `docker exec ... docker-entrypoint db current` use this form)
#
# Secrets from files, so that neither the password nor a URL holding it is in the container's
# configuration (`docker inspect`) or has to be percent-encoded:
#   POSTGRES_PASSWORD_FILE  a file holding the PostgreSQL password (the same Docker secret the postgres
#                           image reads); exported as PGPASSWORD, which asyncpg uses when DATABASE_URL
#                           has no password. Any character works, `@` and `:` included.
#   DATABASE_URL_FILE       a file holding the whole DATABASE_URL.
# As with the postgres image, trailing newlines of a file are dropped.
#
# Signals: this shell stays PID 1 and runs each tradectl step as its child, forwarding SIGTERM and
# SIGINT to it. A PID 1 without a handler ignores SIGTERM, so a step that has not installed one yet
# (migrations, imports) would otherwise hold `docker stop` for the whole grace period. The exit code is
# the step's: 0 after a clean stop of the service.
set -eu

read_secret() {  # read_secret VAR FILE_VAR: VAR=<contents of the file FILE_VAR names>, or exit 2
    eval "file=\${$2}"
    if [ ! -r "$file" ]; then
        echo "docker-entrypoint: cannot read $file (named by $2) as uid $(id -u)" >&2
        exit 2
    fi
    value=$(cat "$file")
    export "$1=$value"
}

if [ -n "${DATABASE_URL_FILE:-}" ]; then
    read_secret DATABASE_URL DATABASE_URL_FILE
    unset DATABASE_URL_FILE
fi
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ] && [ -z "${PGPASSWORD:-}" ]; then
    read_secret PGPASSWORD POSTGRES_PASSWORD_FILE
fi
unset value file

child=
stopped=
forward() {
    stopped=$1
    if [ -n "$child" ]; then
        kill -s "$1" "$child" 2>/dev/null || true
    fi
}
trap 'forward TERM' TERM
trap 'forward INT' INT

# A background child's stdin would be /dev/null: keep the container's (console chat with `docker run -it`).
exec 3<&0
step() {  # step ARGS...: run tradectl ARGS as a child, return its exit code
    tradectl "$@" <&3 3<&- &
    child=$!
    status=0
    wait "$child" || status=$?
    # `wait` also returns when a forwarded signal interrupts it: wait again until the child is gone
    while kill -0 "$child" 2>/dev/null; do
        status=0
        wait "$child" || status=$?
    done
    child=
    return "$status"
}

if [ "$#" -eq 0 ]; then
    # Replicas starting at once are safe: upgrades serialise on a PostgreSQL advisory lock.
    step db upgrade || exit $?
    if [ -n "$stopped" ]; then  # stopped between the two steps: do not start the service
        exit 143
    fi
    step run || exit $?
    exit 0
fi
step "$@" || exit $?
