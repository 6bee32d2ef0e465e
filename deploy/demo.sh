#!/usr/bin/env bash
# The run command: installs everything, starts Kafka and PostgreSQL (deploy/local/dev.sh), starts every
# service as its own process, uploads the demo bill, and reconciles allocation's totals with the file's.
#   bash deploy/demo.sh          start (or restart) and load the demo data
#   bash deploy/demo.sh stop     stop the services, Kafka and PostgreSQL
# Demo data: a simulated company (finops_simulate) with its truth; the demo fails on any difference from it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The demo's Kafka and PostgreSQL keep their state apart from the tests' (.local), and start empty on every run:
# its numbers are held against the simulated company's truth, which a previous run's data would change.
export FINOPS_LOCAL_DIR="${FINOPS_DEMO_STATE:-$ROOT/.local/demo-platform}"
RUN="$ROOT/.local/run"
LOGS="$ROOT/.local/logs"
SERVICES=(ingest:8001 allocation:8002 recommend:8003 notify:8004 decision:8005 purchase.sandbox:8066 purchase:8006 console:8007)

say() { printf '[demo] %s\n' "$*" >&2; }

stop_services() {
  for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}"
    pidfile="$RUN/$name.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      kill "$(cat "$pidfile")" && say "stopped $name"
      for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -f "$pidfile"
  done
}

if [ "${1:-start}" = "stop" ]; then
  stop_services
  bash deploy/local/dev.sh stop
  exit 0
fi

bash deploy/install.sh
stop_services
bash deploy/local/dev.sh reset >&2  # a fresh, empty Kafka and PostgreSQL for the demo (the jar cache is kept)
endpoints="$(bash deploy/local/dev.sh start)"  # exits here, with dev.sh's reason, when Kafka or PostgreSQL fail
eval "$endpoints"
export KAFKA_BOOTSTRAP_SERVERS DATABASE_URL
export FINOPS_ADMIN_TOKEN="${FINOPS_ADMIN_TOKEN:-demo-admin}"  # the first admin API token (stored hashed)
mkdir -p "$RUN" "$LOGS"
stop_services

for entry in "${SERVICES[@]}"; do
  port="${entry##*:}"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "port $port is taken by another program (another demo? run 'make down' where it runs); not starting"
    exit 1
  fi
done

for entry in "${SERVICES[@]}"; do
  name="${entry%%:*}"; port="${entry##*:}"
  FINOPS_HTTP_PORT="$port" FINOPS_INSTANCE_ID="$name-demo" nohup .venv/bin/python -m "finops_$name" \
    >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  say "started $name (pid $!, http://127.0.0.1:$port, log $LOGS/$name.log)"
done

exec .venv/bin/python deploy/demo_load.py "$@"
