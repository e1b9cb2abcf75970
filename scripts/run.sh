#!/usr/bin/env bash
# `make run`: the whole pipeline on this machine.
#
#   Redis → a devnet with $ACCOUNTS accounts → the manager, which runs the collector, the health
#   checkers and the liquidators (child processes, or containers with BACKEND=docker) and scales
#   them block by block. After $PRICE_DROP_AFTER seconds the devnet's prices move ($PRICE_DROP,
#   a 30 % ATOM drop by default) and the manager prints each liquidation as it lands, with its
#   profit.
#
#   CHAINS=osmosis,neutron runs one devnet per chain (its --flavor; RPC on $RPC_PORT, then
#   +10 per chain) and one redline deployment per chain (a manager and its workers), sharing the
#   one Redis (their keys carry the chain id). Each manager's lines are shown prefixed with its
#   chain, and each chain's logs, manifest and CSV go to $RUN_DIR/<chain>.
#
# Stopping: Ctrl-C (SIGINT to the foreground process group), SIGTERM or SIGHUP to this script
# (`make run` execs it, so `kill <make's child>` or `timeout make run` work too) stops
# everything it started, in order: the manager first (SIGTERM; it stops its own workers, then
# SIGKILL of its whole session after $MANAGER_STOP_GRACE seconds), then, with BACKEND=docker,
# the collector container and any container still labelled with this run's deployment
# (redline.deployment=run-$RPC_PORT), then the devnet, Redis and the helpers. A second signal
# cuts the graces short.
#
# Environment (the Makefile passes these through): CHAINS ACCOUNTS CREDIT_ACCOUNTS SEED RPC_PORT REDIS_PORT RUN_DIR
# BIN BACKEND (process|docker) PRICE_DROP_AFTER (seconds; 0 = never) PRICE_DROP ("denom=price …")
# MAX_HEALTH_CHECKERS MAX_LIQUIDATORS WORKER_LOG_LEVEL MANAGER_STOP_GRACE (seconds, 30);
# DASHBOARD_ADDR and the manager's other flags' environment twins reach the manager as they
# are. Logs and the liquidation CSV go to $RUN_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

CHAINS=${CHAINS:-osmosis}
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
IFS=',' read -r -a chains <<<"$CHAINS"
[ "${#chains[@]}" -gt 0 ] || { echo "run: CHAINS is empty: name osmosis, neutron or both" >&2; exit 2; }
for chain in "${chains[@]}"; do
  case "$chain" in
    osmosis | neutron) ;;
    *) echo "run: CHAINS=$CHAINS: \`$chain\` is not a devnet flavor (osmosis, neutron)" >&2; exit 2 ;;
  esac
  [ "$(printf '%s\n' "${chains[@]}" | grep -cx "$chain")" = 1 ] ||
    { echo "run: CHAINS=$CHAINS names $chain twice" >&2; exit 2; }
done
multi=0
[ "${#chains[@]}" -gt 1 ] && multi=1
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

# Chain number $1: its RPC port, directory, and the names its containers carry. Every container
# of a chain carries its deployment label (the manager's docker backend puts
# redline.deployment=<--docker-deployment> on its workers; the collector container gets it too).
chain_port() { echo $((RPC_PORT + 10 * $1)); }
chain_dir() {
  if [ "$multi" = 1 ]; then echo "$RUN_DIR/${chains[$1]}"; else echo "$RUN_DIR"; fi
}
chain_deployment() { echo "run-$(chain_port "$1")"; }
chain_collector() { echo "redline-run-collector-$(chain_port "$1")"; }

pids=()         # Redis, the devnets and the helpers, stopped last
manager_pids=() # one per chain
log_tail_pids=()
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
  # 1. The managers: SIGTERM, and each stops the workers it started (SIGTERM, SIGKILL after
  #    their grace; containers are stopped and removed). Each runs in a session of its own, so a
  #    Ctrl-C in the terminal does not reach it half-way: this is its one, orderly stop.
  for manager_pid in "${manager_pids[@]}"; do kill -TERM "$manager_pid" 2>/dev/null; done
  for manager_pid in "${manager_pids[@]}"; do
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
  done
  # 2. Containers: each chain's collector, then anything left with its deployment's label.
  if [ "$BACKEND" = docker ]; then
    for index in "${!chains[@]}"; do
      collector=$(chain_collector "$index")
      deployment=$(chain_deployment "$index")
      docker stop --time "$([ "$hurry" = 1 ] && echo 1 || echo 10)" "$collector" >/dev/null 2>&1
      # It was started with --rm: the engine removes it; make sure it is gone before looking.
      docker rm -f "$collector" >/dev/null 2>&1
      for _ in $(seq 1 50); do
        docker container inspect "$collector" >/dev/null 2>&1 || break
        sleep 0.2
      done
      left=$(docker ps -aq --filter "label=redline.deployment=$deployment" 2>/dev/null)
      if [ -n "$left" ]; then
        echo "run: removing $(echo "$left" | wc -w) container(s) of $deployment the manager left" >&2
        # shellcheck disable=SC2086 # one id per word
        docker rm -f $left >/dev/null 2>&1
      fi
    done
  fi
  # 3. The devnet, Redis and the helpers.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  # 4. The managers' logs on the terminal, once their last lines are out.
  if [ "${#log_tail_pids[@]}" -gt 0 ]; then
    sleep 0.3
    for pid in "${log_tail_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${log_tail_pids[@]}"; do wait "$pid" 2>/dev/null; done
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

# Starts chain number $1: its devnet (waiting for its manifest), its manager and, after
# $PRICE_DROP_AFTER seconds, its price drop.
start_chain() {
  local index=$1
  local chain=${chains[$index]}
  local port dir manifest credit_accounts devnet_pid manager_pid label
  port=$(chain_port "$index")
  dir=$(chain_dir "$index")
  mkdir -p "$dir"
  manifest="$dir/manifest.json"
  rm -f "$manifest"
  label=""
  [ "$multi" = 1 ] && label="$chain "
  # Each chain's keys under a prefix of its own when there are several: a prefix belongs to
  # one chain (the services refuse one another chain holds).
  local prefix=${QUEUE_PREFIX:-redline}
  [ "$multi" = 1 ] && prefix="$prefix-$chain"
  credit_accounts=$CREDIT_ACCOUNTS
  echo "run: ${label}devnet (--flavor $chain) seeding $ACCOUNTS Red Bank borrowers and $credit_accounts credit accounts (seed $SEED), RPC on 127.0.0.1:$port"
  setsid "$BIN/devnet" --flavor "$chain" --accounts "$ACCOUNTS" --credit-accounts "$credit_accounts" \
    --seed "$SEED" --port "$port" --manifest "$manifest" --log-format json >"$dir/devnet.log" 2>&1 &
  devnet_pid=$!
  pids+=("$devnet_pid")
  for _ in $(seq 1 1200); do
    [ -f "$manifest" ] && break
    alive "$devnet_pid" || { echo "run: the $chain devnet exited; see $dir/devnet.log" >&2; tail -20 "$dir/devnet.log" >&2; exit 1; }
    sleep 0.2
  done
  [ -f "$manifest" ] || { echo "run: the $chain devnet wrote no manifest in 4 minutes; see $dir/devnet.log" >&2; exit 1; }
  echo "run: ${label}devnet ready ($manifest)"

  local args=("${manager_args[@]}")
  if [ "$BACKEND" = docker ]; then
    local collector deployment
    collector=$(chain_collector "$index")
    deployment=$(chain_deployment "$index")
    args+=(--docker-manifest "$manifest" --docker-deployment "$deployment")
    # No process supervisor under Docker: the collector is a container of its own.
    docker rm -f "$collector" >/dev/null 2>&1 || true
    docker run -d --rm --name "$collector" --label "redline.deployment=$deployment" \
      --network host --init \
      -v "$manifest:/etc/redline/manifest.json:ro" \
      -e REDLINE_MANIFEST=/etc/redline/manifest.json -e REDIS_URL -e QUEUE_PREFIX="$prefix" \
      -e LOG_FORMAT=json \
      -e RUST_LOG="$WORKER_LOG_LEVEL" -e METRICS_ADDR=off \
      redline/collector:latest >/dev/null
    docker logs -f "$collector" >"$dir/collector.log" 2>&1 &
    pids+=($!)
  fi
  # The first chain's manager serves the dashboard at $DASHBOARD_ADDR; the others at the ports
  # after it.
  local dashboard=${DASHBOARD_ADDR:-127.0.0.1:0}
  if [ "$dashboard" != off ] && [ "${dashboard##*:}" != 0 ] && [ "$index" -gt 0 ]; then
    dashboard="${dashboard%:*}:$((${dashboard##*:} + index))"
  fi

  echo "run: ${label}manager starting (backend $BACKEND); its log is also in $dir/manager.log"
  # The manager writes its log file itself (no pipe a Ctrl-C could break under it) and runs in
  # a session of its own, with the worker processes it starts: only the trap stops it. The
  # terminal shows the log through `tail` (prefixed with the chain when there are several),
  # also in a session of its own so that it still shows the manager's shutdown after a Ctrl-C;
  # it ends with this script at the latest (--pid).
  : >"$dir/manager.log"
  REDLINE_MANIFEST="$manifest" LIQUIDATIONS_CSV="$dir/liquidations.csv" DASHBOARD_ADDR="$dashboard" \
    QUEUE_PREFIX="$prefix" setsid "$BIN/manager" "${args[@]}" >>"$dir/manager.log" 2>&1 </dev/null &
  manager_pid=$!
  manager_pids+=("$manager_pid")
  if [ "$multi" = 1 ]; then
    setsid bash -c 'tail -n +1 -s 0.2 --pid="$1" -F "$2" 2>/dev/null | sed -u "s/^/[$3] /"' \
      tail "$$" "$dir/manager.log" "$chain" &
  else
    setsid tail -n +1 -s 0.2 --pid=$$ -F "$dir/manager.log" 2>/dev/null &
  fi
  log_tail_pids+=($!)

  if [ "$PRICE_DROP_AFTER" -gt 0 ]; then
    (
      # The sleep is a child of its own: a SIGTERM from the trap ends it too.
      trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
      sleep "$PRICE_DROP_AFTER" &
      sleeper=$!
      wait "$sleeper"
      alive "$manager_pid" || exit 0
      echo "run: ${label}price drop now: $PRICE_DROP"
      # shellcheck disable=SC2086 # one argument per DENOM=PRICE
      "$BIN/devnet" prices $PRICE_DROP --manifest "$manifest" 2>&1 | sed "s/^/run: ${label}/"
    ) &
    pids+=($!)
  fi
}

export LOG_FORMAT=pretty
manager_args=(
  --backend "$BACKEND"
  --max-health-checkers "$MAX_HEALTH_CHECKERS"
  --max-liquidators "$MAX_LIQUIDATORS"
  --worker-log-level "$WORKER_LOG_LEVEL"
  --metrics-addr 127.0.0.1:0
)
[ "$BACKEND" = process ] && manager_args+=(--bin-dir "$BIN")
for index in "${!chains[@]}"; do
  start_chain "$index"
done

echo "run: pipeline running; Ctrl-C stops everything"
# Until a manager exits (or a signal comes): then everything stops.
while :; do
  for manager_pid in "${manager_pids[@]}"; do
    alive "$manager_pid" || break 2
  done
  sleep 0.5
done
echo "run: a manager exited; stopping the rest"
