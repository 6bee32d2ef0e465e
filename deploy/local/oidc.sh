#!/usr/bin/env bash
# deploy/local/oidc.sh - run a real local OpenID Connect provider (NAV's mock-oauth2-server, from Maven
# Central) on loopback, without Docker, for development and the OIDC tests (tests/security/test_oidc.py).
#
#   oidc.sh start    start it (idempotent); prints the export lines on stdout:
#                      eval "$(deploy/local/oidc.sh start)"
#   oidc.sh stop     stop what this script started
#   oidc.sh status   exit 0 if it answers, 3 otherwise
#   oidc.sh env      print the export lines again
#   oidc.sh fetch    only fetch the jars into the cache (what CI or an install step can run ahead)
#
# The provider serves one issuer, http://127.0.0.1:<port>/finops, with discovery, JWKS, the authorization
# code flow (no login page: it signs in the fixed persona of oidc/config.json) and client_credentials, whose
# `scope` parameter picks a persona of oidc/config.json. Each start generates a new signing key (config.json
# sets a keyProvider without initialKeys), so a restart is a key rotation; the key id stays the issuer id.
#
# Environment knobs:
#   FINOPS_LOCAL_DIR          state dir (default <repo>/.local); this script uses its oidc/ subdirectory
#   FINOPS_OIDC_MOCK_CACHE    jar cache (default ~/.cache/finops-dev/mock-oauth2-server-<version>/libs)
#   FINOPS_OIDC_MOCK_VERSION  override the version pinned in oidc/pom.xml
#   FINOPS_OIDC_MOCK_CONFIG   the JSON configuration (default oidc/config.json beside this script)
#   FINOPS_OIDC_MOCK_PORT     the port (default: the previous one if free, else 18080 if free, else random)
#
# Progress goes to stderr; `start` and `env` print only export lines on stdout.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/oidc/pom.xml"
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"

STATE_DIR="${FINOPS_LOCAL_DIR:-$REPO_ROOT/.local}"
case "$STATE_DIR" in /*) ;; *) STATE_DIR="$PWD/$STATE_DIR" ;; esac
DIR="${STATE_DIR%/}/oidc"
VERSION="${FINOPS_OIDC_MOCK_VERSION:-$(sed -n 's:.*<mock.oauth2.version>\(.*\)</mock.oauth2.version>.*:\1:p' "$POM" | head -n1)}"
CACHE="${FINOPS_OIDC_MOCK_CACHE:-$HOME/.cache/finops-dev/mock-oauth2-server-$VERSION/libs}"
CONFIG="${FINOPS_OIDC_MOCK_CONFIG:-$SCRIPT_DIR/oidc/config.json}"
PID_FILE="$DIR/pid"
PORT_FILE="$DIR/port"
LOG="$DIR/provider.log"
ISSUER_ID="finops"
MAIN=no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt

log() { printf '[oidc.sh] %s\n' "$*" >&2; }
die() { printf '[oidc.sh] ERROR: %s\n' "$*" >&2; exit 1; }

port_free() {
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}
random_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

provider_pid() {
  local pid args
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  pid_alive "$pid" || return 1
  args="$(ps -ww -o args= -p "$pid" 2>/dev/null || true)"
  [[ "$args" == *"$MAIN"* ]] || return 1
  echo "$pid"
}

issuer() { echo "http://127.0.0.1:$(cat "$PORT_FILE")/$ISSUER_ID"; }

answers() {
  [ -f "$PORT_FILE" ] || return 1
  python3 - "$(issuer)/.well-known/openid-configuration" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

fetch_jars() {
  [ -n "$VERSION" ] || die "could not read <mock.oauth2.version> from $POM"
  [ -f "$CACHE/.complete" ] && [ -f "$CACHE/mock-oauth2-server-$VERSION.jar" ] && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven (apt-get install maven), or put the mock-oauth2-server $VERSION jars in $CACHE (plus an empty .complete file)"
  local parent tmp
  parent="$(dirname "$CACHE")"
  mkdir -p "$parent"
  tmp="$(mktemp -d "$parent/.download.XXXXXX")"
  log "fetching mock-oauth2-server $VERSION with Maven into $CACHE (first run only)..."
  if ! mvn -q -B -f "$POM" -Dmock.oauth2.version="$VERSION" -Dfinops.build.dir="$tmp/build" \
        -Dfinops.libs.dir="$tmp/libs" -Dmaven.wagon.http.retryHandler.count=3 package >"$tmp/mvn.log" 2>&1; then
    tail -n 40 "$tmp/mvn.log" >&2 || true
    die "Maven could not fetch mock-oauth2-server $VERSION (log: $tmp/mvn.log); check that Maven reaches its central repository"
  fi
  [ -f "$tmp/libs/mock-oauth2-server-$VERSION.jar" ] || die "Maven finished but mock-oauth2-server-$VERSION.jar is missing (log: $tmp/mvn.log)"
  touch "$tmp/libs/.complete"
  rm -rf "$CACHE"
  mv "$tmp/libs" "$CACHE"
  rm -rf "$tmp"
}

print_env() {
  echo "export FINOPS_OIDC_ISSUER=$(issuer)"
  echo "export FINOPS_OIDC_TOKEN_URL=$(issuer)/token"
}

cmd_start() {
  exec 3>&1 1>&2
  mkdir -p "$DIR"
  if provider_pid >/dev/null && answers; then
    log "already running (pid $(provider_pid)) at $(issuer)"
    print_env >&3
    return 0
  fi
  command -v java >/dev/null 2>&1 || die "java not found: install a JDK 17+ (apt-get install openjdk-17-jre-headless)"
  [ -f "$CONFIG" ] || die "no provider configuration at $CONFIG"
  fetch_jars
  local port="${FINOPS_OIDC_MOCK_PORT:-}" prev
  if [ -z "$port" ]; then
    prev="$(cat "$PORT_FILE" 2>/dev/null || true)"
    for p in $prev 18080; do if port_free "$p"; then port="$p"; break; fi; done
    [ -n "$port" ] || port="$(random_port)"
  fi
  echo "$port" >"$PORT_FILE"
  log "starting mock-oauth2-server $VERSION at http://127.0.0.1:$port/$ISSUER_ID ..."
  # setsid: own session, so the provider survives the calling shell; fd 3 must not leak into it.
  # shellcheck disable=SC2016
  JSON_CONFIG="$(cat "$CONFIG")" SERVER_HOSTNAME=127.0.0.1 SERVER_PORT="$port" \
    nohup setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
      java -Xms64m -Xmx256m -cp "$CACHE/*" "$MAIN" </dev/null >>"$LOG" 2>&1 3>&- &
  local i
  for ((i = 0; i < 240; i++)); do
    answers && break
    if ! provider_pid >/dev/null && [ "$i" -gt 10 ]; then
      tail -n 40 "$LOG" >&2 || true
      die "mock-oauth2-server exited during startup (log: $LOG)"
    fi
    sleep 0.25
  done
  answers || { tail -n 40 "$LOG" >&2; die "mock-oauth2-server did not answer within 60s (log: $LOG)"; }
  log "up (pid $(provider_pid)) at $(issuer)"
  print_env >&3
}

cmd_stop() {
  local pid i
  if pid="$(provider_pid)"; then
    log "stopping mock-oauth2-server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 80; i++)); do pid_alive "$pid" || break; sleep 0.25; done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) if provider_pid >/dev/null && answers; then echo "oidc: up $(issuer)"; else echo "oidc: down"; exit 3; fi ;;
  env) [ -f "$PORT_FILE" ] || die "not started: run '$0 start'"; print_env ;;
  fetch) fetch_jars ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2; exit 2 ;;
esac
