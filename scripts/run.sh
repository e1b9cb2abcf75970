#!/usr/bin/env bash
# `make run`: the whole pipeline on this machine.
#
#   Redis → a devnet with $ACCOUNTS accounts → the manager, which runs the collector, the health
#   checkers and the liquidators (child processes, or containers with BACKEND=docker) and scales
#   them block by block. After $PRICE_DROP_AFTER seconds the devnet's prices move ($PRICE_DROP,
#   a 30 % ATOM drop by default) and the manager prints each liquidation as it lands, with its
#   profit. Ctrl-C stops everything (the manager stops its own workers first).
#
# Environment (the Makefile passes these through): ACCOUNTS SEED RPC_PORT REDIS_PORT RUN_DIR
# BIN BACKEND (process|docker) PRICE_DROP_AFTER (seconds; 0 = never) PRICE_DROP ("denom=price …")
# MAX_HEALTH_CHECKERS MAX_LIQUIDATORS WORKER_LOG_LEVEL. Logs and the liquidation CSV go to
# $RUN_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

ACCOUNTS=${ACCOUNTS:-10000}
SEED=${SEED:-1}
RPC_PORT=${RPC_PORT:-26657}
REDIS_PORT=${REDIS_PORT:-6390}
RUN_DIR=${RUN_DIR:-.run}
BIN=${BIN:-target/debug}
BACKEND=${BACKEND:-process}
PRICE_DROP_AFTER=${PRICE_DROP_AFTER:-30}
PRICE_DROP=${PRICE_DROP:-uatom=7}
MAX_HEALTH_CHECKERS=${MAX_HEALTH_CHECKERS:-4}
MAX_LIQUIDATORS=${MAX_LIQUIDATORS:-4}
WORKER_LOG_LEVEL=${WORKER_LOG_LEVEL:-warn}

case "$BACKEND" in
  process | docker) ;;
  *) echo "run: BACKEND=$BACKEND: use process or docker" >&2; exit 2 ;;
esac
for binary in devnet manager collector health-checker liquidator; do
  [ -x "$BIN/$binary" ] || { echo "run: $BIN/$binary is missing: run make build" >&2; exit 1; }
done
if [ "$BACKEND" = docker ]; then
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    { echo "run: BACKEND=docker but the Docker daemon does not answer" >&2; exit 1; }
  for service in collector health-checker liquidator; do
    docker image inspect "redline/$service:latest" >/dev/null 2>&1 ||
      { echo "run: image redline/$service:latest is missing: run make docker_build" >&2; exit 1; }
  done
fi

mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
MANIFEST="$RUN_DIR/manifest.json"
rm -f "$MANIFEST"
COLLECTOR_CONTAINER="redline-run-collector-$RPC_PORT"

pids=()
stopping=0
stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM EXIT
  echo
  echo "run: stopping"
  # The manager first: it stops the workers it started (SIGTERM, then SIGKILL after a grace).
  if [ -n "${manager_pid:-}" ]; then
    kill -TERM "$manager_pid" 2>/dev/null || true
    wait "$manager_pid" 2>/dev/null || true
  fi
  if [ "$BACKEND" = docker ]; then
    docker stop --time 10 "$COLLECTOR_CONTAINER" >/dev/null 2>&1 || true
  fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "run: stopped; logs in $RUN_DIR"
}
trap stop INT TERM EXIT

# Redis and the devnet run in sessions of their own: a Ctrl-C in the terminal reaches the
# manager (which then stops its workers, who may still be waiting for a transaction) but not
# them; they are stopped last, by the trap.
REDIS_SERVER=$(bash scripts/ensure-redis.sh)
setsid "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" &
pids+=($!)
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break
  sleep 0.1
done

echo "run: devnet seeding $ACCOUNTS accounts (seed $SEED), RPC on 127.0.0.1:$RPC_PORT"
setsid "$BIN/devnet" --accounts "$ACCOUNTS" --seed "$SEED" --port "$RPC_PORT" \
  --manifest "$MANIFEST" --log-format json >"$RUN_DIR/devnet.log" 2>&1 &
devnet_pid=$!
pids+=("$devnet_pid")
for _ in $(seq 1 1200); do
  [ -f "$MANIFEST" ] && break
  kill -0 "$devnet_pid" 2>/dev/null || { echo "run: the devnet exited; see $RUN_DIR/devnet.log" >&2; tail -20 "$RUN_DIR/devnet.log" >&2; exit 1; }
  sleep 0.2
done
[ -f "$MANIFEST" ] || { echo "run: the devnet wrote no manifest in 4 minutes; see $RUN_DIR/devnet.log" >&2; exit 1; }
echo "run: devnet ready ($MANIFEST)"

export REDLINE_MANIFEST="$MANIFEST"
export LOG_FORMAT=pretty
# Every liquidator appends its attempts here (one line per attempt).
export LIQUIDATIONS_CSV="$RUN_DIR/liquidations.csv"

manager_args=(
  --backend "$BACKEND"
  --max-health-checkers "$MAX_HEALTH_CHECKERS"
  --max-liquidators "$MAX_LIQUIDATORS"
  --worker-log-level "$WORKER_LOG_LEVEL"
  --metrics-addr 127.0.0.1:0
)
if [ "$BACKEND" = process ]; then
  manager_args+=(--bin-dir "$BIN")
else
  manager_args+=(--docker-manifest "$MANIFEST" --docker-deployment "run-$RPC_PORT")
  # No process supervisor under Docker: the collector is a container of its own.
  docker rm -f "$COLLECTOR_CONTAINER" >/dev/null 2>&1 || true
  docker run -d --rm --name "$COLLECTOR_CONTAINER" --network host --init \
    -v "$MANIFEST:/etc/redline/manifest.json:ro" \
    -e REDLINE_MANIFEST=/etc/redline/manifest.json -e REDIS_URL -e LOG_FORMAT=json \
    -e RUST_LOG="$WORKER_LOG_LEVEL" -e METRICS_ADDR=off \
    redline/collector:latest >/dev/null
  docker logs -f "$COLLECTOR_CONTAINER" >"$RUN_DIR/collector.log" 2>&1 &
  pids+=($!)
fi

echo "run: manager starting (backend $BACKEND); its log is also in $RUN_DIR/manager.log"
"$BIN/manager" "${manager_args[@]}" > >(tee "$RUN_DIR/manager.log") 2>&1 &
manager_pid=$!

if [ "$PRICE_DROP_AFTER" -gt 0 ]; then
  (
    sleep "$PRICE_DROP_AFTER"
    kill -0 "$manager_pid" 2>/dev/null || exit 0
    echo "run: price drop now: $PRICE_DROP"
    # shellcheck disable=SC2086 # one argument per DENOM=PRICE
    "$BIN/devnet" prices $PRICE_DROP --manifest "$MANIFEST" 2>&1 | sed 's/^/run: /'
  ) &
  pids+=($!)
fi

echo "run: pipeline running; Ctrl-C stops everything"
wait "$manager_pid" || true
echo "run: the manager exited; stopping the rest"
