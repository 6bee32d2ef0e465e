#!/usr/bin/env bash
# deploy/local/dev.sh - run a real Apache Kafka 4.x broker (single-node KRaft) and a
# real PostgreSQL cluster on this machine, without Docker, for development and CI.
#
#   dev.sh start    start both (idempotent); prints the export lines on stdout:
#                     eval "$(deploy/local/dev.sh start)"
#   dev.sh secure   the same with a secured Kafka (= start with FINOPS_KAFKA_SECURE=1): a SASL_SSL listener
#                   (SCRAM-SHA-512), an SSL listener that requires a client certificate (mTLS), the
#                   StandardAuthorizer with one principal per service and least-privilege ACLs
#                   (python -m finops_runtime.kafka_acl plan), every topic created by the admin. Also prints
#                   where each service's credentials are. Use its own FINOPS_LOCAL_DIR: a state dir runs one mode.
#   dev.sh stop     stop what this script started
#   dev.sh status   show both; exit 0 if both are up, 3 otherwise
#   dev.sh env      print the env file (export KAFKA_BOOTSTRAP_SERVERS=..., DATABASE_URL=...)
#   dev.sh reset    stop, then delete the state directory (the jar cache is kept)
#
# Environment knobs:
#   FINOPS_LOCAL_DIR            state dir (default <repo>/.local)
#   FINOPS_CACHE_DIR            Kafka jar cache (default ~/.cache/finops-dev/kafka-<version>/libs)
#   FINOPS_KAFKA_VERSION        override the version pinned in kafka/pom.xml
#   FINOPS_KAFKA_HEAP_OPTS      default "-Xms512m -Xmx512m"
#   FINOPS_KAFKA_START_TIMEOUT  seconds to wait for "Kafka Server started" (default 120)
#   FINOPS_PG_USER_OS           OS user that runs postgres when invoked as root (default finops-pg)
#   FINOPS_KAFKA_SECURE         1: `start` starts the secured Kafka (as `secure` does)
#   FINOPS_LOCAL_PG             0: start Kafka only (no PostgreSQL, no DATABASE_URL line)
#   FINOPS_PYTHON               the Python with the platform installed, for `secure` (default <repo>/.venv/bin/python)
#
# All progress output goes to stderr; `start` and `env` print only export lines on stdout (`secure` adds
# comment lines naming the credentials files).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
KAFKA_POM="$SCRIPT_DIR/kafka/pom.xml"
KAFKA_LOG4J="$SCRIPT_DIR/kafka/log4j2.properties"

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"

STATE_DIR="${FINOPS_LOCAL_DIR:-$REPO_ROOT/.local}"
case "$STATE_DIR" in /*) ;; *) STATE_DIR="$PWD/$STATE_DIR" ;; esac
STATE_DIR="${STATE_DIR%/}"

KAFKA_VERSION="${FINOPS_KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM" | head -n1)}"
CACHE_DIR="${FINOPS_CACHE_DIR:-$HOME/.cache/finops-dev/kafka-$KAFKA_VERSION/libs}"
KAFKA_HEAP_OPTS="${FINOPS_KAFKA_HEAP_OPTS:--Xms512m -Xmx512m}"
KAFKA_START_TIMEOUT="${FINOPS_KAFKA_START_TIMEOUT:-120}"
PG_OS_USER="${FINOPS_PG_USER_OS:-finops-pg}"

KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PORTS_FILE="$KAFKA_DIR/ports"
KAFKA_PID_FILE="$STATE_DIR/kafka.pid"

PG_DIR="$STATE_DIR/pg"
PG_DATA="$PG_DIR/data"
PG_LOGFILE="$PG_DIR/log/postgres.log"
PG_PORT_FILE="$PG_DIR/port"
PG_PID_FILE="$STATE_DIR/postgres.pid"

ENV_FILE="$STATE_DIR/env"

KAFKA_SECURE="${FINOPS_KAFKA_SECURE:-0}"
WITH_PG="${FINOPS_LOCAL_PG:-1}"
SECURE_DIR="$KAFKA_DIR/secure"
TLS_DIR="$SECURE_DIR/tls"
CRED_DIR="$SECURE_DIR/credentials"
FINOPS_PY="${FINOPS_PYTHON:-$REPO_ROOT/.venv/bin/python}"

DEFAULT_KAFKA_PORT=19092
DEFAULT_KAFKA_CONTROLLER_PORT=19093
DEFAULT_PG_PORT=15432
# The secured broker's own defaults, so it runs beside a plain one.
DEFAULT_SECURE_KAFKA_PORT=19192
DEFAULT_SECURE_CONTROLLER_PORT=19193
DEFAULT_SECURE_MTLS_PORT=19194

# ----------------------------------------------------------------------------- helpers

log() { printf '[dev.sh] %s\n' "$*" >&2; }
die() { printf '[dev.sh] ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

need_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 not found: it is used to pick free TCP ports (apt-get install python3)"
}

# port_free PORT -> 0 if nothing listens on 127.0.0.1:PORT (same SO_REUSEADDR semantics as the servers).
port_free() {
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# random_port -> a port the kernel considers free right now.
random_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# pick_port PREVIOUS DEFAULT EXCLUDED... -> previous if free, else default if free, else random.
pick_port() {
  local prev="$1" def="$2" p
  shift 2
  for p in "$prev" "$def"; do
    [ -n "$p" ] || continue
    [[ " $* " == *" $p "* ]] && continue
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    p="$(random_port)"
    [[ " $* " == *" $p "* ]] && continue
    echo "$p"; return 0
  done
  die "could not find a free TCP port on 127.0.0.1"
}

# port_open PORT -> 0 if something accepts connections on 127.0.0.1:PORT.
port_open() {
  [ -n "${1:-}" ] || return 1
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Reads KEY=VALUE lines from a file into the current shell, only for the given keys.
read_kv() {
  local file="$1" key
  shift
  [ -f "$file" ] || return 0
  for key in "$@"; do
    local v
    v="$(sed -n "s/^$key=\([0-9A-Za-z._:/-]*\)\$/\1/p" "$file" | tail -n1)"
    printf -v "$key" '%s' "$v"
  done
}

lock_state() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  flock -w 600 9 || die "another dev.sh is holding $STATE_DIR/.lock for more than 10 minutes"
}

# ----------------------------------------------------------------------------- Kafka

need_java() {
  command -v java >/dev/null 2>&1 || die "java not found: install a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless)"
  local ver major
  ver="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  major="${ver%%.*}"
  [ "$major" = "1" ] && major="$(echo "$ver" | cut -d. -f2)"
  [[ "$major" =~ ^[0-9]+$ ]] || die "could not parse the java version ('$ver'): install a JDK 17+"
  [ "$major" -ge 17 ] || die "java $ver is too old: Kafka $KAFKA_VERSION needs a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless)"
}

kafka_jars_cached() {
  [ -f "$CACHE_DIR/.complete" ] && [ -f "$CACHE_DIR/kafka_2.13-$KAFKA_VERSION.jar" ]
}

ensure_kafka_jars() {
  [ -n "$KAFKA_VERSION" ] || die "could not read <kafka.version> from $KAFKA_POM"
  if kafka_jars_cached; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven 3.6+ (apt-get install maven), or put the Kafka $KAFKA_VERSION jars in $CACHE_DIR (plus an empty .complete file)"
  local parent tmp
  parent="$(dirname "$CACHE_DIR")"
  mkdir -p "$parent" || die "cannot create the jar cache directory $parent (set FINOPS_CACHE_DIR)"
  tmp="$(mktemp -d "$parent/.download.XXXXXX")"
  log "fetching Apache Kafka $KAFKA_VERSION jars with Maven into $CACHE_DIR (first run only; can take a few minutes)..."
  local t0=$SECONDS
  if ! mvn -q -B -f "$KAFKA_POM" \
        -Dkafka.version="$KAFKA_VERSION" \
        -Dfinops.build.dir="$tmp/build" \
        -Dfinops.libs.dir="$tmp/libs" \
        -Dmaven.wagon.http.retryHandler.count=3 \
        package >"$tmp/mvn.log" 2>&1; then
    tail -n 50 "$tmp/mvn.log" >&2 || true
    die "Maven could not fetch the Kafka $KAFKA_VERSION jars (full log: $tmp/mvn.log). Check that Maven reaches its central repository (proxy settings in ~/.m2/settings.xml) and retry."
  fi
  [ -f "$tmp/libs/kafka_2.13-$KAFKA_VERSION.jar" ] || die "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing in $tmp/libs (log: $tmp/mvn.log)"
  touch "$tmp/libs/.complete"
  rm -rf "$CACHE_DIR"
  mv "$tmp/libs" "$CACHE_DIR"
  rm -rf "$tmp"
  log "fetched $(find "$CACHE_DIR" -name '*.jar' | wc -l) jars in $((SECONDS - t0))s"
}

kafka_java() {
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of flags
  java $KAFKA_HEAP_OPTS -cp "$CACHE_DIR/*" \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
    -Dkafka.logs.dir="$KAFKA_LOGS" \
    "$@"
}

# kafka_pid -> pid of our broker if alive (and really our broker), else fails.
kafka_pid() {
  local pid args
  [ -f "$KAFKA_PID_FILE" ] || return 1
  pid="$(cat "$KAFKA_PID_FILE" 2>/dev/null || true)"
  pid_alive "$pid" || return 1
  args="$(ps -ww -o args= -p "$pid" 2>/dev/null || true)"
  [[ "$args" == *kafka.Kafka*"$KAFKA_PROPS"* ]] || return 1
  echo "$pid"
}

kafka_up() {
  local KAFKA_PORT=""
  read_kv "$KAFKA_PORTS_FILE" KAFKA_PORT
  kafka_pid >/dev/null && port_open "$KAFKA_PORT"
}

write_kafka_props() {
  local port="$1" cport="$2"
  cat >"$KAFKA_PROPS" <<EOF
# Generated by deploy/local/dev.sh - rewritten at every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=6
auto.create.topics.enable=true
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=3
num.io.threads=8
log.retention.hours=168
log.segment.bytes=1073741824
EOF
}

# ----------------------------------------------------------------------------- secured Kafka

need_finops_python() {
  [ -x "$FINOPS_PY" ] && "$FINOPS_PY" -c 'import finops_runtime.kafka_acl' 2>/dev/null \
    || die "the secured broker derives its principals and ACLs from the services: run deploy/install.sh first (or set FINOPS_PYTHON to a Python with the platform installed)"
  command -v openssl >/dev/null 2>&1 || die "openssl not found: it makes the broker's and clients' certificates (apt-get install openssl)"
}

# sign_cert NAME SUBJECT EXT -> $TLS_DIR/NAME.key and NAME.crt signed by the local CA.
sign_cert() {
  local name="$1" subject="$2" ext="$3"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subject" \
    -keyout "$TLS_DIR/$name.key" -out "$TLS_DIR/$name.csr" 2>/dev/null \
    || die "openssl could not make the key of $name"
  printf '%s\n' "$ext" >"$TLS_DIR/$name.ext"
  openssl x509 -req -in "$TLS_DIR/$name.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$TLS_DIR/$name.ext" -out "$TLS_DIR/$name.crt" 2>/dev/null \
    || die "openssl could not sign the certificate of $name"
  rm -f "$TLS_DIR/$name.csr" "$TLS_DIR/$name.ext"
  chmod 600 "$TLS_DIR/$name.key"
}

# secure_material: a local CA, the broker's certificate, and per principal a SCRAM password and an mTLS
# certificate (CN=<service>). Made once, kept across restarts. Sets SECURE_USERS.
secure_material() {
  SECURE_USERS="$("$FINOPS_PY" -m finops_runtime.kafka_acl principals | xargs)"
  [ -n "$SECURE_USERS" ] || die "python -m finops_runtime.kafka_acl principals listed no service"
  mkdir -p "$TLS_DIR" "$CRED_DIR"
  chmod 700 "$SECURE_DIR" "$TLS_DIR" "$CRED_DIR"
  if [ ! -s "$TLS_DIR/ca.crt" ]; then
    log "making a local CA and the broker's certificate in $TLS_DIR"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -sha256 \
      -subj "/CN=finops local Kafka CA" -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" 2>/dev/null \
      || die "openssl could not make the CA in $TLS_DIR"
    chmod 600 "$TLS_DIR/ca.key"
    rm -f "$TLS_DIR/broker.p12"
  fi
  if [ ! -s "$TLS_DIR/broker.p12" ]; then
    sign_cert broker "/CN=localhost" "$(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth')"
    (umask 077; openssl rand -hex 24 >"$TLS_DIR/keystore.password")
    openssl pkcs12 -export -name broker -in "$TLS_DIR/broker.crt" -inkey "$TLS_DIR/broker.key" \
      -certfile "$TLS_DIR/ca.crt" -out "$TLS_DIR/broker.p12" -passout "file:$TLS_DIR/keystore.password" \
      || die "openssl could not make the broker keystore"
    chmod 600 "$TLS_DIR/broker.p12"
  fi
  local user
  for user in admin $SECURE_USERS; do
    [ -s "$CRED_DIR/$user.password" ] || (umask 077; openssl rand -hex 24 >"$CRED_DIR/$user.password")
    [ "$user" = admin ] || [ -s "$TLS_DIR/$user.crt" ] || sign_cert "$user" "/CN=$user" "extendedKeyUsage=clientAuth"
  done
}

# write_credentials PORT MTLS_PORT: <principal>.env (SASL_SSL) and <service>.mtls.env (SSL with a client
# certificate), in the runtime's own variables; `set -a; . FILE; set +a`, or an env file of a process manager.
write_credentials() {
  local port="$1" mport="$2" user
  for user in admin $SECURE_USERS; do
    cat >"$CRED_DIR/$user.env" <<EOF
KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port
FINOPS_KAFKA_SECURITY_PROTOCOL=SASL_SSL
FINOPS_KAFKA_SASL_USERNAME=$user
FINOPS_KAFKA_SASL_PASSWORD_FILE=$CRED_DIR/$user.password
FINOPS_KAFKA_SSL_CAFILE=$TLS_DIR/ca.crt
EOF
    [ "$user" = admin ] && continue
    cat >"$CRED_DIR/$user.mtls.env" <<EOF
KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$mport
FINOPS_KAFKA_SECURITY_PROTOCOL=SSL
FINOPS_KAFKA_SSL_CAFILE=$TLS_DIR/ca.crt
FINOPS_KAFKA_SSL_CERTFILE=$TLS_DIR/$user.crt
FINOPS_KAFKA_SSL_KEYFILE=$TLS_DIR/$user.key
EOF
  done
  chmod 600 "$CRED_DIR"/*.env
}

write_secure_kafka_props() {
  local port="$1" cport="$2" mport="$3" admin kspass
  admin="$(cat "$CRED_DIR/admin.password")"
  kspass="$(cat "$TLS_DIR/keystore.password")"
  (umask 077; cat >"$KAFKA_PROPS" <<EOF
# Generated by deploy/local/dev.sh secure - rewritten at every start. Holds the admin password (mode 0600).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=SASL_SSL://127.0.0.1:$port,SSL://127.0.0.1:$mport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=SASL_SSL://127.0.0.1:$port,SSL://127.0.0.1:$mport
inter.broker.listener.name=SASL_SSL
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
# Clients: SCRAM-SHA-512 over TLS. The controller listener (loopback) takes PLAIN with the admin's static
# credential, as KRaft controllers cannot use SCRAM: no listener is unauthenticated.
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.mechanism.controller.protocol=PLAIN
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin" user_admin="$admin";
# mTLS: a client certificate signed by the local CA is required; its CN is the principal (User:<service>).
listener.name.ssl.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([a-z][a-z0-9-]*)\$/\$1/,DEFAULT
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$kspass
ssl.key.password=$kspass
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.crt
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
log.dirs=$KAFKA_DATA
num.partitions=6
auto.create.topics.enable=false
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=3
num.io.threads=8
log.retention.hours=168
log.segment.bytes=1073741824
EOF
  )
}

# provision_acls PORT: as admin, create every topic and every service's ACLs (both idempotent).
provision_acls() {
  local port="$1" t0=$SECONDS
  log "creating topics and ACLs for: $SECURE_USERS${FINOPS_KAFKA_NAMESPACE:+ (namespace $FINOPS_KAFKA_NAMESPACE)}"
  if ! (
    for v in $(compgen -e); do
      case "$v" in FINOPS_KAFKA_NAMESPACE) ;; FINOPS_KAFKA_*) unset "$v" ;; esac
    done
    set -a
    # shellcheck disable=SC1091
    . "$CRED_DIR/admin.env"
    set +a
    "$FINOPS_PY" -m finops_runtime.kafka_acl apply --bootstrap "127.0.0.1:$port" --namespace "${FINOPS_KAFKA_NAMESPACE:-}"
  ) >"$KAFKA_LOGS/acl.log" 2>&1 3>&- 9>&-; then
    tail -n 30 "$KAFKA_LOGS/acl.log" >&2 || true
    die "could not create the topics and ACLs (log: $KAFKA_LOGS/acl.log)"
  fi
  log "$(tail -n1 "$KAFKA_LOGS/acl.log") in $((SECONDS - t0))s"
}

stop_kafka() {
  local pid
  if pid="$(kafka_pid)"; then
    log "stopping Kafka (pid $pid)..."
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 60; i++)); do
      pid_alive "$pid" || break
      sleep 0.5
    done
    if pid_alive "$pid"; then
      log "Kafka did not stop within 30s: sending SIGKILL to pid $pid"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 20; i++)); do pid_alive "$pid" || break; sleep 0.25; done
    fi
    log "Kafka stopped"
  fi
  rm -f "$KAFKA_PID_FILE"
}

kafka_log_tail() {
  log "---- last 50 lines of $KAFKA_LOGS/server.log ----"
  tail -n 50 "$KAFKA_LOGS/server.log" >&2 2>/dev/null || true
  if [ -s "$KAFKA_LOGS/kafka.out" ] && ! [ -s "$KAFKA_LOGS/server.log" ]; then
    log "---- last 50 lines of $KAFKA_LOGS/kafka.out ----"
    tail -n 50 "$KAFKA_LOGS/kafka.out" >&2 || true
  fi
}

new_cluster_id() {
  python3 - <<'PY'
import base64, uuid
while True:
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not cid.startswith("-"):
        print(cid)
        break
PY
}

start_kafka() {
  local KAFKA_PORT="" KAFKA_CONTROLLER_PORT="" KAFKA_MTLS_PORT="" KAFKA_MODE="" KAFKA_FORMAT=""
  read_kv "$KAFKA_PORTS_FILE" KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_MTLS_PORT KAFKA_MODE KAFKA_FORMAT
  local mode=plain
  [ "$KAFKA_SECURE" = 1 ] && mode=secure

  local pid
  if pid="$(kafka_pid)"; then
    if [ "${KAFKA_MODE:-plain}" != "$mode" ]; then
      die "the Kafka of $STATE_DIR runs ${KAFKA_MODE:-plain}: stop it first ($0 stop), or give the $mode broker its own FINOPS_LOCAL_DIR"
    fi
    if port_open "$KAFKA_PORT"; then
      log "Kafka already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
      return 0
    fi
    log "Kafka pid $pid is alive but 127.0.0.1:${KAFKA_PORT:-?} does not answer: restarting it"
    stop_kafka
  elif [ -f "$KAFKA_PID_FILE" ]; then
    log "removing stale Kafka pid file"
    rm -f "$KAFKA_PID_FILE"
  fi

  need_java
  ensure_kafka_jars
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"

  # SCRAM users are written when the storage is formatted: a change of mode or of principals reformats.
  local format=plain dport="$DEFAULT_KAFKA_PORT" dcport="$DEFAULT_KAFKA_CONTROLLER_PORT"
  if [ "$mode" = secure ]; then
    need_finops_python
    secure_material
    format="secure-$(printf '%s' "$SECURE_USERS" | cksum | cut -d' ' -f1)"
    dport="$DEFAULT_SECURE_KAFKA_PORT"
    dcport="$DEFAULT_SECURE_CONTROLLER_PORT"
  fi
  if [ -f "$KAFKA_DATA/meta.properties" ] && [ "${KAFKA_FORMAT:-plain}" != "$format" ]; then
    log "the Kafka storage was formatted for ${KAFKA_FORMAT:-plain}, not $format: wiping and reformatting it"
    rm -rf "$KAFKA_DATA"
    mkdir -p "$KAFKA_DATA"
  fi

  local port cport mport=""
  if [ -n "$KAFKA_PORT" ] && [ -n "$KAFKA_CONTROLLER_PORT" ] \
      && port_free "$KAFKA_PORT" && port_free "$KAFKA_CONTROLLER_PORT" \
      && { [ "$mode" = plain ] || { [ -n "$KAFKA_MTLS_PORT" ] && port_free "$KAFKA_MTLS_PORT"; }; }; then
    port="$KAFKA_PORT"
    cport="$KAFKA_CONTROLLER_PORT"
    [ "$mode" = plain ] || mport="$KAFKA_MTLS_PORT"
  else
    port="$(pick_port "" "$dport")"
    cport="$(pick_port "" "$dcport" "$port")"
    [ "$mode" = plain ] || mport="$(pick_port "" "$DEFAULT_SECURE_MTLS_PORT" "$port" "$cport")"
    if [ -f "$KAFKA_DATA/meta.properties" ]; then
      log "previous Kafka ports ${KAFKA_PORT:-?}/${KAFKA_CONTROLLER_PORT:-?} are taken: wiping the Kafka data and reformatting on $port/$cport"
      rm -rf "$KAFKA_DATA"
      mkdir -p "$KAFKA_DATA"
    fi
  fi
  printf 'KAFKA_PORT=%s\nKAFKA_CONTROLLER_PORT=%s\n' "$port" "$cport" >"$KAFKA_PORTS_FILE"
  local scram=()
  if [ "$mode" = secure ]; then
    printf 'KAFKA_MTLS_PORT=%s\nKAFKA_MODE=secure\nKAFKA_FORMAT=%s\n' "$mport" "$format" >>"$KAFKA_PORTS_FILE"
    write_secure_kafka_props "$port" "$cport" "$mport"
    write_credentials "$port" "$mport"
    local user
    for user in admin $SECURE_USERS; do
      scram+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$(cat "$CRED_DIR/$user.password")]")
    done
  else
    write_kafka_props "$port" "$cport"
  fi

  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    local cid
    cid="$(new_cluster_id)"
    log "formatting Kafka storage (cluster id $cid)..."
    if ! kafka_java kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_PROPS" "${scram[@]}" \
          >"$KAFKA_LOGS/format.log" 2>&1; then
      tail -n 50 "$KAFKA_LOGS/format.log" >&2 || true
      die "kafka.tools.StorageTool format failed (log: $KAFKA_LOGS/format.log)"
    fi
  fi

  local offset=0
  [ -f "$KAFKA_LOGS/server.log" ] && offset="$(stat -c %s "$KAFKA_LOGS/server.log")"

  log "starting Kafka $KAFKA_VERSION ($mode) on 127.0.0.1:$port${mport:+ (mTLS 127.0.0.1:$mport)} (controller 127.0.0.1:$cport)..."
  rm -f "$KAFKA_PID_FILE"
  # setsid: own session, so the broker survives the calling shell; the inner bash
  # writes its own pid and execs java, so the pid file holds the JVM's pid.
  # fds 3 (caller's stdout, see cmd_start) and 9 (the state lock) must not leak into
  # the daemon, or `$(dev.sh start)` would never see EOF and the lock would stay held.
  # shellcheck disable=SC2016
  nohup setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID_FILE" \
    java $KAFKA_HEAP_OPTS -cp "$CACHE_DIR/*" \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent \
      -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
      -Dkafka.logs.dir="$KAFKA_LOGS" \
      kafka.Kafka "$KAFKA_PROPS" \
    </dev/null >>"$KAFKA_LOGS/kafka.out" 2>&1 3>&- 9>&- &

  local i
  for ((i = 0; i < 50; i++)); do [ -s "$KAFKA_PID_FILE" ] && break; sleep 0.1; done
  pid="$(cat "$KAFKA_PID_FILE" 2>/dev/null || true)"
  [ -n "$pid" ] || die "could not launch Kafka (no pid written; see $KAFKA_LOGS/kafka.out)"

  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while :; do
    if [ -f "$KAFKA_LOGS/server.log" ] \
        && tail -c +"$((offset + 1))" "$KAFKA_LOGS/server.log" | grep -q "Kafka Server started" \
        && port_open "$port"; then
      break
    fi
    if ! pid_alive "$pid"; then
      rm -f "$KAFKA_PID_FILE"
      kafka_log_tail
      die "Kafka exited during startup (logs in $KAFKA_LOGS). If the storage is broken, run: $0 reset"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      kafka_log_tail
      stop_kafka
      die "Kafka did not log 'Kafka Server started' within ${KAFKA_START_TIMEOUT}s (logs in $KAFKA_LOGS; raise FINOPS_KAFKA_START_TIMEOUT or run: $0 reset)"
    fi
    sleep 0.5
  done
  log "Kafka is up (pid $pid) on 127.0.0.1:$port"
  [ "$mode" = plain ] || provision_acls "$port"
}

# ----------------------------------------------------------------------------- PostgreSQL

PG_BIN=""
PSQL=""

find_pg_bin() {
  [ -n "$PG_BIN" ] && return 0
  local want="" d
  # An existing cluster must be run by the binaries of its own major version.
  [ -f "$PG_DATA/PG_VERSION" ] && want="$(cat "$PG_DATA/PG_VERSION")"
  if [ -n "$want" ] && [ -x "/usr/lib/postgresql/$want/bin/pg_ctl" ]; then
    PG_BIN="/usr/lib/postgresql/$want/bin"
  elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    PG_BIN="$(dirname "$(command -v pg_ctl)")"
  else
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && PG_BIN="$d"
  fi
  [ -n "$PG_BIN" ] || die "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH nor in /usr/lib/postgresql/*/bin: install them (apt-get install postgresql)"
  if command -v psql >/dev/null 2>&1; then
    PSQL="$(command -v psql)"
  elif [ -x "$PG_BIN/psql" ]; then
    PSQL="$PG_BIN/psql"
  else
    die "psql not found on PATH nor in $PG_BIN: install postgresql-client"
  fi
}

# Runs a command as the OS user that owns the cluster (postgres refuses to run as root).
as_pg() {
  if is_root; then
    (cd "$PG_DIR" && runuser -u "$PG_OS_USER" -- "$@")
  else
    (cd "$PG_DIR" && "$@")
  fi
}

ensure_pg_user() {
  is_root || return 0
  if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
    log "running as root: creating system user $PG_OS_USER to own and run PostgreSQL"
    useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$PG_OS_USER" \
      || die "useradd $PG_OS_USER failed: postgres cannot run as root; create that user or run dev.sh as a normal user"
  fi
  if [ "$(stat -c %U "$PG_DIR")" != "$PG_OS_USER" ] \
      || { [ -d "$PG_DATA" ] && [ "$(stat -c %U "$PG_DATA")" != "$PG_OS_USER" ]; }; then
    chown -R "$PG_OS_USER:" "$PG_DIR"
  fi
  runuser -u "$PG_OS_USER" -- test -w "$PG_DIR" \
    || die "user $PG_OS_USER cannot write $PG_DIR: every parent directory must be traversable (chmod o+x), or set FINOPS_LOCAL_DIR to e.g. /tmp/finops-local"
}

pg_socket_dir() {
  local d="$PG_DIR/sock"
  # Unix socket paths are limited to ~107 bytes.
  if [ "${#d}" -gt 80 ]; then
    d="/tmp/finops-pg-$(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1)"
  fi
  echo "$d"
}

pg_running() { [ -f "$PG_DATA/postmaster.pid" ] && find_pg_bin && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

pg_up() {
  local PG_PORT=""
  read_kv "$PG_PORT_FILE" PG_PORT
  [ -f "$PG_DATA/postmaster.pid" ] || return 1
  pg_running && port_open "$PG_PORT"
}

stop_pg() {
  if [ -f "$PG_DATA/postmaster.pid" ]; then
    find_pg_bin
    if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
      log "stopping PostgreSQL..."
      as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >&2 \
        || die "pg_ctl stop failed for $PG_DATA (log: $PG_LOGFILE)"
      log "PostgreSQL stopped"
    fi
  fi
  rm -f "$PG_PID_FILE"
}

start_pg() {
  local PG_PORT=""
  read_kv "$PG_PORT_FILE" PG_PORT
  mkdir -p "$PG_DIR/log"

  if [ -f "$PG_DATA/postmaster.pid" ]; then
    find_pg_bin
    ensure_pg_user
    if pg_running; then
      if port_open "$PG_PORT"; then
        log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
        ensure_pg_database "$PG_PORT"
        head -n1 "$PG_DATA/postmaster.pid" >"$PG_PID_FILE"
        return 0
      fi
      log "PostgreSQL is running but 127.0.0.1:${PG_PORT:-?} does not answer: restarting it"
      stop_pg
    fi
  fi

  find_pg_bin
  ensure_pg_user
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    rm -rf "$PG_DATA"
    log "initialising a PostgreSQL cluster in $PG_DATA ($("$PG_BIN/postgres" --version))..."
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U finops --auth=trust -E UTF8 --locale=C \
          >"$PG_DIR/log/initdb.log" 2>&1; then
      tail -n 50 "$PG_DIR/log/initdb.log" >&2 || true
      die "initdb failed (log: $PG_DIR/log/initdb.log)"
    fi
  fi

  local sock port
  sock="$(pg_socket_dir)"
  mkdir -p "$sock"
  is_root && chown "$PG_OS_USER:" "$sock"
  port="$(pick_port "$PG_PORT" "$DEFAULT_PG_PORT" "$(sed -n 's/^KAFKA_PORT=//p;s/^KAFKA_CONTROLLER_PORT=//p' "$KAFKA_PORTS_FILE" 2>/dev/null | xargs)")"
  log "starting PostgreSQL on 127.0.0.1:$port..."
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOGFILE" -w -t 60 \
        -o "-p $port -k $sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB" \
        start >&2 3>&- 9>&-; then
    log "---- last 50 lines of $PG_LOGFILE ----"
    tail -n 50 "$PG_LOGFILE" >&2 || true
    die "PostgreSQL failed to start (log: $PG_LOGFILE). If the data dir is broken, run: $0 reset"
  fi
  echo "PG_PORT=$port" >"$PG_PORT_FILE"
  head -n1 "$PG_DATA/postmaster.pid" >"$PG_PID_FILE"
  ensure_pg_database "$port"
  log "PostgreSQL is up on 127.0.0.1:$port"
}

ensure_pg_database() {
  local port="$1" exists
  exists="$("$PSQL" -X -h 127.0.0.1 -p "$port" -U finops -d postgres -tAc \
            "SELECT 1 FROM pg_database WHERE datname = 'finops'")" \
    || die "psql could not connect to PostgreSQL on 127.0.0.1:$port (log: $PG_LOGFILE)"
  if [ "$exists" != "1" ]; then
    log "creating database finops"
    "$PSQL" -X -q -h 127.0.0.1 -p "$port" -U finops -d postgres -c 'CREATE DATABASE finops' >&2 \
      || die "could not create database finops on 127.0.0.1:$port"
  fi
}

# ----------------------------------------------------------------------------- env file

write_env() {
  local KAFKA_PORT="" PG_PORT="" KAFKA_MTLS_PORT="" KAFKA_MODE=""
  read_kv "$KAFKA_PORTS_FILE" KAFKA_PORT KAFKA_MTLS_PORT KAFKA_MODE
  read_kv "$PG_PORT_FILE" PG_PORT
  local tmp="$ENV_FILE.tmp.$$"
  {
    echo "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT"
    [ "$WITH_PG" = 0 ] || echo "export DATABASE_URL=postgresql://finops@127.0.0.1:$PG_PORT/finops"
    if [ "$KAFKA_MODE" = secure ]; then
      # No default identity: each process takes its own principal's file (fail closed, least privilege).
      echo "export FINOPS_KAFKA_SECURITY_PROTOCOL=SASL_SSL"
      echo "export FINOPS_KAFKA_SSL_CAFILE=$TLS_DIR/ca.crt"
      echo "export FINOPS_KAFKA_CREDENTIALS_DIR=$CRED_DIR"
      echo "# Kafka principals, one per service (ACLs: python -m finops_runtime.kafka_acl plan). Give each its own:"
      echo "#   set -a; . \$FINOPS_KAFKA_CREDENTIALS_DIR/<service>.env; set +a       SASL_SSL SCRAM-SHA-512, 127.0.0.1:$KAFKA_PORT"
      echo "#   set -a; . \$FINOPS_KAFKA_CREDENTIALS_DIR/<service>.mtls.env; set +a  SSL client certificate, 127.0.0.1:$KAFKA_MTLS_PORT"
      local f
      for f in "$CRED_DIR"/*.env; do echo "#   $f"; done
      echo "# admin.env is the super user: provisioning only."
    fi
  } >"$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

# ----------------------------------------------------------------------------- commands

cmd_start() {
  # Everything goes to stderr; only the export lines go to the real stdout (fd 3).
  exec 3>&1 1>&2
  need_python
  lock_state
  local t0=$SECONDS
  if [ "$WITH_PG" != 0 ]; then
    # Fail on PostgreSQL prerequisites before spending time on Kafka.
    mkdir -p "$PG_DIR/log"
    find_pg_bin
    ensure_pg_user
  fi
  start_kafka
  [ "$WITH_PG" = 0 ] || start_pg
  write_env
  log "ready in $((SECONDS - t0))s (state: $STATE_DIR; env file: $ENV_FILE)"
  cat "$ENV_FILE" >&3
}

cmd_stop() {
  lock_state
  stop_kafka
  stop_pg
}

cmd_status() {
  local rc=0 KAFKA_PORT="" PG_PORT="" KAFKA_MODE="" KAFKA_MTLS_PORT="" pid
  read_kv "$KAFKA_PORTS_FILE" KAFKA_PORT KAFKA_MODE KAFKA_MTLS_PORT
  read_kv "$PG_PORT_FILE" PG_PORT
  if kafka_up; then
    pid="$(kafka_pid)"
    local secured=""
    [ "$KAFKA_MODE" = secure ] && secured="SASL_SSL, mTLS on 127.0.0.1:$KAFKA_MTLS_PORT, "
    echo "kafka:    up    127.0.0.1:$KAFKA_PORT (${secured}pid $pid, Kafka $KAFKA_VERSION, logs $KAFKA_LOGS/server.log)"
  else
    echo "kafka:    down"
    rc=3
  fi
  if pg_up; then
    echo "postgres: up    postgresql://finops@127.0.0.1:$PG_PORT/finops (pid $(head -n1 "$PG_DATA/postmaster.pid"), log $PG_LOGFILE)"
  else
    echo "postgres: down"
    rc=3
  fi
  return "$rc"
}

cmd_env() {
  [ -f "$ENV_FILE" ] || die "no env file at $ENV_FILE: run '$0 start' first"
  cat "$ENV_FILE"
}

cmd_reset() {
  case "$STATE_DIR" in
    "" | "/" | "$HOME" | "$REPO_ROOT") die "refusing to delete state dir '$STATE_DIR'" ;;
  esac
  if [ -d "$STATE_DIR" ]; then
    cmd_stop
    log "deleting $STATE_DIR"
    rm -rf "$STATE_DIR"
  fi
  local sock
  sock="$(pg_socket_dir)"
  case "$sock" in /tmp/finops-pg-*) rm -rf "$sock" ;; esac
  log "reset done (jar cache kept in $CACHE_DIR)"
}

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    start) cmd_start ;;
    secure) KAFKA_SECURE=1; cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    reset) cmd_reset ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
