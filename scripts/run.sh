#!/usr/bin/env bash
# `make run`: the whole pipeline on this machine.
#
#   Redis → a devnet with $ACCOUNTS accounts → the manager, which runs the collector, the health
#   checkers and the liquidators (child processes, or containers with BACKEND=docker) and scales
#   them block by block. After $PRICE_DROP_AFTER seconds the devnet's prices move ($PRICE_DROP,
#   a 30 % ATOM drop by default) and the manager prints each liquidation as it lands, with its
#   profit.
#
# Stopping: Ctrl-C (SIGINT to the foreground process group), SIGTERM or SIGHUP to this script
# (`make run` execs it, so `kill <make's child>` or `timeout make run` work too) stops
# everything it started, in order: the manager first (SIGTERM; it stops its own workers, then
# SIGKILL of its whole session after $MANAGER_STOP_GRACE seconds), then, with BACKEND=docker,
# the collector container and any container still labelled with this run's deployment
# (redline.deployment=run-$RPC_PORT), then the devnet, Redis and the helpers. A second signal
# cuts the graces short.
#
# Environment (the Makefile passes these through): ACCOUNTS CREDIT_ACCOUNTS SEED RPC_PORT REDIS_PORT RUN_DIR
# BIN BACKEND (process|docker) PRICE_DROP_AFTER (seconds; 0 = never) PRICE_DROP ("denom=price …")
# MAX_HEALTH_CHECKERS MAX_LIQUIDATORS WORKER_LOG_LEVEL MANAGER_STOP_GRACE (seconds, 30);
# DASHBOARD_ADDR and the manager's other flags' environment twins reach the manager as they
# are. Logs and the liquidation CSV go to $RUN_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

ACCOUNTS=${ACCOUNTS:-10000}
CREDIT_ACCOUNTS=${CREDIT_ACCOUNTS:-1000}
SEED=${SEED:-1}
RPC_PORT=${RPC_PORT:-26657}
REDIS_PORT=${REDIS_PORT:-6390}
RUN_DIR=${RUN_DIR:-.run}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/debug}
BACKEND=${BACKEND:-process}
PRICE_DROP_AFTER=${PRICE_DROP_AFTER:-30}
PRICE_DROP=${PRICE_DROP:-uatom=7}
MAX_HEALTH_CHECKERS=${MAX_HEALTH_CHECKERS:-4}
MAX_LIQUIDATORS=${MAX_LIQUIDATORS:-4}
WORKER_LOG_LEVEL=${WORKER_LOG_LEVEL:-warn}
MANAGER_STOP_GRACE=${MANAGER_STOP_GRACE:-30}

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
# Every container of this run carries this label (the manager's docker backend puts
# redline.deployment=<--docker-deployment> on its workers; the collector container gets it too).
DEPLOYMENT="run-$RPC_PORT"
DEPLOYMENT_LABEL="redline.deployment=$DEPLOYMENT"
COLLECTOR_CONTAINER="redline-run-collector-$RPC_PORT"

pids=()        # Redis, the devnet and the helpers, stopped last
manager_pid=""
log_tail_pid=""
stopping=0
hurry=0

# Alive and not a zombie.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # `pid (comm) state …`; comm may hold spaces and parentheses.
  stat=${stat##*) }
  case "${stat%% *}" in "" | Z | X) return 1 ;; esac
}

# waits up to $2 seconds (less after a second signal) for process $1 to end.
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while alive "$pid"; do
    if [ "$hurry" = 1 ] || [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
}

# Processes of the manager's session: the manager and the worker processes it started (each in a
# process group of its own, all in the manager's session).
session_members() {
  pgrep -s "$1" 2>/dev/null || true
}

stop() {
  [ "$stopping" = 1 ] && return 0
  stopping=1
  set +e
  # A second Ctrl-C / SIGTERM does not interrupt the cleanup; it cuts the graces short. One
  # that comes within a second or two is the same stop twice (`timeout make run` signals the
  # process group and make passes SIGTERM on to this script too): it changes nothing.
  stop_started=$SECONDS
  trap '[ $((SECONDS - stop_started)) -ge 2 ] && hurry=1' INT TERM HUP
  echo
  echo "run: stopping"
  # 1. The manager: SIGTERM, and it stops the workers it started (SIGTERM, SIGKILL after their
  #    grace; containers are stopped and removed). It runs in a session of its own, so a Ctrl-C
  #    in the terminal does not reach it half-way: this is its one, orderly stop.
  if [ -n "$manager_pid" ]; then
    kill -TERM "$manager_pid" 2>/dev/null
    if ! wait_gone "$manager_pid" "$MANAGER_STOP_GRACE"; then
      echo "run: the manager has not stopped; killing it and its workers" >&2
      kill -KILL "$manager_pid" 2>/dev/null
    fi
    wait "$manager_pid" 2>/dev/null
    # Backstop: worker processes the manager left in its session (a session id is not reused
    # while a member lives).
    left=$(session_members "$manager_pid")
    if [ -n "$left" ]; then
      echo "run: stopping $(echo "$left" | wc -w) process(es) the manager left" >&2
      # shellcheck disable=SC2086 # one pid per word
      kill -TERM $left 2>/dev/null
      for pid in $left; do wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null; done
    fi
  fi
  # 2. Containers: the collector, then anything left with this run's label.
  if [ "$BACKEND" = docker ]; then
    docker stop --time "$([ "$hurry" = 1 ] && echo 1 || echo 10)" "$COLLECTOR_CONTAINER" \
      >/dev/null 2>&1
    # It was started with --rm: the engine removes it; make sure it is gone before looking.
    docker rm -f "$COLLECTOR_CONTAINER" >/dev/null 2>&1
    for _ in $(seq 1 50); do
      docker container inspect "$COLLECTOR_CONTAINER" >/dev/null 2>&1 || break
      sleep 0.2
    done
    left=$(docker ps -aq --filter "label=$DEPLOYMENT_LABEL" 2>/dev/null)
    if [ -n "$left" ]; then
      echo "run: removing $(echo "$left" | wc -w) container(s) of $DEPLOYMENT the manager left" >&2
      # shellcheck disable=SC2086 # one id per word
      docker rm -f $left >/dev/null 2>&1
    fi
  fi
  # 3. The devnet, Redis and the helpers.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  # 4. The manager's log on the terminal, once its last lines are out.
  if [ -n "$log_tail_pid" ]; then
    sleep 0.3
    kill -TERM "$log_tail_pid" 2>/dev/null
    wait "$log_tail_pid" 2>/dev/null
  fi
  echo "run: stopped; logs in $RUN_DIR"
}

# Ends this script the way the signal asks for (after the cleanup), so that make and shells
# see "killed by SIGINT/SIGTERM".
on_signal() {
  stop
  trap - "$1" EXIT
  kill -s "$1" $$
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP
trap stop EXIT

# Redis and the devnet run in sessions of their own: a Ctrl-C in the terminal does not reach
# them; they are stopped last, by the trap, once the workers that use them are gone.
REDIS_SERVER=$(bash scripts/ensure-redis.sh)
setsid "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" &
pids+=($!)
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break
  sleep 0.1
done

echo "run: devnet seeding $ACCOUNTS Red Bank borrowers and $CREDIT_ACCOUNTS credit accounts (seed $SEED), RPC on 127.0.0.1:$RPC_PORT"
setsid "$BIN/devnet" --accounts "$ACCOUNTS" --credit-accounts "$CREDIT_ACCOUNTS" --seed "$SEED" --port "$RPC_PORT" \
  --manifest "$MANIFEST" --log-format json >"$RUN_DIR/devnet.log" 2>&1 &
devnet_pid=$!
pids+=("$devnet_pid")
for _ in $(seq 1 1200); do
  [ -f "$MANIFEST" ] && break
  alive "$devnet_pid" || { echo "run: the devnet exited; see $RUN_DIR/devnet.log" >&2; tail -20 "$RUN_DIR/devnet.log" >&2; exit 1; }
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
  manager_args+=(--docker-manifest "$MANIFEST" --docker-deployment "$DEPLOYMENT")
  # No process supervisor under Docker: the collector is a container of its own.
  docker rm -f "$COLLECTOR_CONTAINER" >/dev/null 2>&1 || true
  docker run -d --rm --name "$COLLECTOR_CONTAINER" --label "$DEPLOYMENT_LABEL" \
    --network host --init \
    -v "$MANIFEST:/etc/redline/manifest.json:ro" \
    -e REDLINE_MANIFEST=/etc/redline/manifest.json -e REDIS_URL -e LOG_FORMAT=json \
    -e RUST_LOG="$WORKER_LOG_LEVEL" -e METRICS_ADDR=off \
    redline/collector:latest >/dev/null
  docker logs -f "$COLLECTOR_CONTAINER" >"$RUN_DIR/collector.log" 2>&1 &
  pids+=($!)
fi

echo "run: manager starting (backend $BACKEND); its log is also in $RUN_DIR/manager.log"
# The manager writes its log file itself (no pipe a Ctrl-C could break under it) and runs in a
# session of its own, with the worker processes it starts: only the trap stops it. The terminal
# shows the log through `tail`, also in a session of its own so that it still shows the
# manager's shutdown after a Ctrl-C; it ends with this script at the latest (--pid).
: >"$RUN_DIR/manager.log"
setsid "$BIN/manager" "${manager_args[@]}" >>"$RUN_DIR/manager.log" 2>&1 </dev/null &
manager_pid=$!
setsid tail -n +1 -s 0.2 --pid=$$ -F "$RUN_DIR/manager.log" 2>/dev/null &
log_tail_pid=$!

if [ "$PRICE_DROP_AFTER" -gt 0 ]; then
  (
    # The sleep is a child of its own: a SIGTERM from the trap ends it too.
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$PRICE_DROP_AFTER" &
    sleeper=$!
    wait "$sleeper"
    alive "$manager_pid" || exit 0
    echo "run: price drop now: $PRICE_DROP"
    # shellcheck disable=SC2086 # one argument per DENOM=PRICE
    "$BIN/devnet" prices $PRICE_DROP --manifest "$MANIFEST" 2>&1 | sed 's/^/run: /'
  ) &
  pids+=($!)
fi

echo "run: pipeline running; Ctrl-C stops everything"
wait "$manager_pid" || true
echo "run: the manager exited; stopping the rest"
