#!/usr/bin/env bash
# The test command: installs everything, then runs the whole suite against real Kafka and PostgreSQL.
# Endpoints: KAFKA_BOOTSTRAP_SERVERS + DATABASE_URL when set; else testcontainers when a Docker engine
# answers; else deploy/local/dev.sh starts Kafka 4.x and PostgreSQL on this machine (and stops them after).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash deploy/install.sh
exec .venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
