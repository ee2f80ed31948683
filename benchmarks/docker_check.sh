#!/bin/sh
# Build the tradectl image and check it the way a deployment uses it; prints what it measured.
#
#   benchmarks/docker_check.sh [--no-compose]
#
# Needs a running Docker engine (exits 77 without one). Environment:
#   IMAGE               tag to build (default tradectl:check)
#   DOCKER_BUILD_FLAGS  extra `docker build` flags (e.g. --network host where builds have no bridge)
#   COMPOSE             compose command (default: `docker compose`, else `docker-compose`)
#   GRACE               docker stop grace period in seconds (default 20)
#   SKIP_BUILD=1        check the existing IMAGE instead of building it
#
# Checks, in order:
#   1. build: context size, build time, image size; a rebuild after a source change reuses the
#      dependency layer (requirements.lock is installed before the source is copied);
#   2. the embedded default (SQLite, paper venue): runs as 10001:10001, no anonymous volume, the
#      HEALTHCHECK goes healthy, `docker stop` exits 0 within GRACE;
#   3. SIGTERM while migrations wait on a database that never answers stops the container at once;
#   4. compose: PostgreSQL and two replicas on an empty database (both run `db upgrade` at once), a
#      password with `@`, `:` and `/` from a Docker secret, absent from `docker inspect`; both replicas
#      healthy, exactly one leader; `compose stop` exits 0.
set -eu

IMAGE=${IMAGE:-tradectl:check}
GRACE=${GRACE:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=tradectl-check-$$
WORK=$(mktemp -d)
FAILED=0
RUN_COMPOSE=1
SKIP_BUILD=${SKIP_BUILD:-0}
[ "${1:-}" = "--no-compose" ] && RUN_COMPOSE=0

say() { printf '%s\n' "$*"; }
ok() { say "  ok    $*"; }
bad() { say "  FAIL  $*"; FAILED=1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if ! docker info >/dev/null 2>&1; then
    say "no Docker engine answers (docker info failed): nothing checked"
    exit 77
fi
if [ -z "${COMPOSE:-}" ]; then
    if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then COMPOSE=docker-compose
    else COMPOSE=; fi
fi

cleanup() {
    docker rm -f "$PREFIX-run" "$PREFIX-silent" "$PREFIX-hung" >/dev/null 2>&1 || true
    if [ -n "${COMPOSE:-}" ] && [ -f "$WORK/compose/docker-compose.yml" ]; then
        (cd "$WORK/compose" && $COMPOSE -p "$PREFIX" down -v >/dev/null 2>&1) || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

wait_health() {  # wait_health CONTAINER SECONDS: prints the seconds it took, fails on unhealthy/timeout
    start=$(now)
    while :; do
        state=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1" 2>/dev/null || echo gone)
        case $state in
            healthy) since "$start"; return 0 ;;
            unhealthy|gone|"") return 1 ;;
        esac
        if [ "$(since "$start" | cut -d. -f1)" -ge "$2" ]; then return 1; fi
        sleep 1
    done
}

# 1. build ------------------------------------------------------------------------------------------
say "1. build $IMAGE"
start=$(now)
if [ "$SKIP_BUILD" = 1 ]; then
    docker image inspect "$IMAGE" >/dev/null || { bad "no image $IMAGE to check"; exit 1; }
    ok "build skipped (SKIP_BUILD=1): checking the existing $IMAGE" && : >"$WORK/build.log"
# shellcheck disable=SC2086  # DOCKER_BUILD_FLAGS is a list of flags
elif docker build ${DOCKER_BUILD_FLAGS:-} -t "$IMAGE" "$ROOT" >"$WORK/build.log" 2>&1; then
    ok "built in $(since "$start") s"
else
    tail -20 "$WORK/build.log"
    bad "docker build failed"
    exit 1
fi
context=$(grep -Eo '(Sending build context to Docker daemon|transferring context:) +[0-9.]+ ?[kMG]?B' "$WORK/build.log" \
          | tail -1 | grep -Eo '[0-9.]+ ?[kMG]?B$' || echo "?")
say "  build context $context; image $(docker image inspect --format '{{.Size}}' "$IMAGE" \
     | awk '{ printf "%.0f MB", $1 / 1e6 }')"
docker history --no-trunc --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" | grep -E 'pip install' | cut -c1-110 | sed 's/^/  layer /'

if [ "$SKIP_BUILD" != 1 ]; then
    mkdir -p "$WORK/ctx"
    (cd "$ROOT" && tar cf - .dockerignore Dockerfile requirements.lock pyproject.toml README.md \
        bot core exchanges strategies persistence) | tar xf - -C "$WORK/ctx"
    printf '\n# a one-line change\n' >> "$WORK/ctx/core/app/cli.py"
    start=$(now)
    # shellcheck disable=SC2086
    docker build ${DOCKER_BUILD_FLAGS:-} -t "$IMAGE-edit" "$WORK/ctx" >"$WORK/rebuild.log" 2>&1
    if grep -B1 -A1 -- '-r requirements.lock' "$WORK/rebuild.log" | grep -Eq 'Using cache|CACHED'; then
        ok "rebuild after a one-line source change: $(since "$start") s, dependency layer from cache"
    else
        bad "rebuild after a one-line source change re-installed the dependencies ($(since "$start") s)"
    fi
    docker rmi "$IMAGE-edit" >/dev/null 2>&1 || true
fi

# 2. the embedded default ---------------------------------------------------------------------------
say "2. embedded default (SQLite, paper)"
start=$(now)
docker run -d --name "$PREFIX-run" -e TRADECTL_CHAT__CONSOLE=off "$IMAGE" >/dev/null
user=$(docker exec "$PREFIX-run" id -u):$(docker exec "$PREFIX-run" id -g)
[ "$user" = "10001:10001" ] && ok "runs as $user" || bad "runs as $user, not 10001:10001"
mounts=$(docker inspect --format '{{len .Mounts}}' "$PREFIX-run")
[ "$mounts" = 0 ] && ok "no anonymous volume" || bad "$mounts mount(s) without being asked for any"
if took=$(wait_health "$PREFIX-run" 120); then
    ok "healthy after $took s"
else
    bad "not healthy: $(docker inspect --format '{{json .State.Health}}' "$PREFIX-run" | cut -c1-300)"
    docker logs "$PREFIX-run" 2>&1 | tail -5
fi
start=$(now)
docker stop -t "$GRACE" "$PREFIX-run" >/dev/null
took=$(since "$start")
code=$(docker inspect --format '{{.State.ExitCode}}' "$PREFIX-run")
if [ "$code" = 0 ] && [ "$(printf '%s' "$took" | cut -d. -f1)" -lt "$GRACE" ]; then
    ok "docker stop: exit 0 in $took s"
else
    bad "docker stop: exit $code in $took s (grace $GRACE s)"
fi
docker rm "$PREFIX-run" >/dev/null

# 3. SIGTERM during migrations ----------------------------------------------------------------------
say "3. docker stop while db upgrade waits on a database that never answers"
docker run -d --name "$PREFIX-silent" --entrypoint python "$IMAGE" -c \
    "import socket, time; s = socket.create_server(('127.0.0.1', 54329)); time.sleep(3600)" >/dev/null
docker run -d --name "$PREFIX-hung" --network "container:$PREFIX-silent" \
    -e DATABASE_URL=postgresql://tradectl@127.0.0.1:54329/tradectl "$IMAGE" >/dev/null
sleep 4  # well inside the 10 s connect timeout
start=$(now)
docker stop -t "$GRACE" "$PREFIX-hung" >/dev/null
took=$(since "$start")
if [ "$(printf '%s' "$took" | cut -d. -f1)" -lt 3 ]; then
    ok "stopped in $took s (exit $(docker inspect --format '{{.State.ExitCode}}' "$PREFIX-hung"))"
else
    bad "stop took $took s: SIGTERM did not reach the migration"
fi
docker rm -f "$PREFIX-hung" "$PREFIX-silent" >/dev/null

# 4. compose: PostgreSQL and two replicas -----------------------------------------------------------
if [ "$RUN_COMPOSE" = 0 ]; then
    say "4. compose: skipped (--no-compose)"
elif [ -z "$COMPOSE" ]; then
    say "4. compose: skipped (neither \`docker compose\` nor docker-compose is installed)"
else
    say "4. compose: PostgreSQL + 2 replicas on an empty database ($COMPOSE)"
    mkdir -p "$WORK/compose/secrets"
    cp "$ROOT/docker-compose.yml" "$WORK/compose/"
    password="ch@ck:pass/$$"
    printf '%s\n' "$password" > "$WORK/compose/secrets/postgres_password"
    chmod 644 "$WORK/compose/secrets/postgres_password"
    printf 'TRADECTL_CHAT__CONSOLE=off\n' > "$WORK/compose/.env"
    cd "$WORK/compose"
    start=$(now)
    TRADECTL_IMAGE=$IMAGE $COMPOSE -p "$PREFIX" up -d --no-build --scale tradectl=2 >"$WORK/up.log" 2>&1 \
        || { cat "$WORK/up.log"; bad "compose up failed"; exit 1; }
    replicas=$(TRADECTL_IMAGE=$IMAGE $COMPOSE -p "$PREFIX" ps -q tradectl)
    for c in $replicas; do
        if took=$(wait_health "$c" 180); then ok "replica ${c%"${c#????????????}"} healthy after $took s"
        else bad "replica ${c%"${c#????????????}"} not healthy"; docker logs "$c" 2>&1 | tail -5; fi
        if docker inspect "$c" | grep -qF "$password"; then bad "docker inspect shows the password"; fi
    done
    say "  up to both healthy: $(since "$start") s"
    sleep 3
    leaders=$(TRADECTL_IMAGE=$IMAGE $COMPOSE -p "$PREFIX" exec -T postgres psql -U tradectl -d tradectl -Atc \
        "SELECT count(*) FROM heartbeats WHERE role = 'leader' AND last_seen > now() - interval '30 seconds'")
    [ "$leaders" = 1 ] && ok "one leader" || bad "$leaders leaders"
    start=$(now)
    TRADECTL_IMAGE=$IMAGE $COMPOSE -p "$PREFIX" stop -t "$GRACE" tradectl >/dev/null 2>&1
    took=$(since "$start")
    codes=$(for c in $replicas; do docker inspect --format '{{.State.ExitCode}}' "$c"; done | sort -u | tr '\n' ' ')
    [ "$codes" = "0 " ] && ok "compose stop: exit 0 in $took s" || bad "compose stop: exit codes $codes in $took s"
    cd "$ROOT"
fi

if [ "$FAILED" = 0 ]; then say "all checks passed"; else say "some checks FAILED"; fi
exit "$FAILED"
