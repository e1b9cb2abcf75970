#!/usr/bin/env bash
# Runs the pipeline locally: a Redis server, a devnet with $ACCOUNTS accounts, then the services.
# Everything started here is stopped on Ctrl-C (or when any of it dies).
set -euo pipefail

ACCOUNTS=${ACCOUNTS:-10000}
SEED=${SEED:-1}
RPC_PORT=${RPC_PORT:-26657}
REDIS_PORT=${REDIS_PORT:-6390}
RUN_DIR=${RUN_DIR:-.run}
BIN=${BIN:-target/debug}

mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
MANIFEST="$RUN_DIR/manifest.json"
rm -f "$MANIFEST"

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping: ${pids[*]:-nothing}"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped; logs in $RUN_DIR"
}
trap stop INT TERM EXIT

REDIS_SERVER=$(bash scripts/ensure-redis.sh)
"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" &
pids+=($!)
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

echo "devnet: seeding $ACCOUNTS accounts (seed $SEED), RPC on 127.0.0.1:$RPC_PORT"
"$BIN/devnet" --accounts "$ACCOUNTS" --seed "$SEED" --port "$RPC_PORT" \
  --manifest "$MANIFEST" --log-format pretty >"$RUN_DIR/devnet.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do
  [ -f "$MANIFEST" ] && break
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "devnet exited; see $RUN_DIR/devnet.log"; tail -20 "$RUN_DIR/devnet.log"; exit 1; }
  sleep 0.2
done
[ -f "$MANIFEST" ] || { echo "devnet wrote no manifest in 120 s; see $RUN_DIR/devnet.log"; exit 1; }
echo "devnet ready: manifest $MANIFEST"

export REDLINE_MANIFEST="$MANIFEST"
export LOG_FORMAT=pretty
for service in collector health-checker liquidator manager; do
  "$BIN/$service" 2>&1 | sed -u "s/^/[$service] /" &
  pids+=($!)
done

echo "pipeline running; Ctrl-C stops everything"
wait -n "${pids[@]}" || true
echo "a process exited; stopping the rest"
