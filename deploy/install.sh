#!/usr/bin/env bash
# Installs everything the platform, its tests and its benchmarks need on a fresh machine:
# system packages (JDK, Maven, PostgreSQL server) when missing, then a virtualenv in .venv with every
# service and library installed editable, all versions pinned by constraints.txt. Idempotent and quick
# when nothing changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '[install] %s\n' "$*" >&2; }

have_initdb() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
have_initdb || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
# dev.sh secure (and tests/security) make the local Kafka CA and certificates with openssl.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The console's browser test drives Debian's Chromium headless (Playwright with no browser download).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing system packages: ${missing[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    say "missing system packages: ${missing[*]}. Install them (a JDK 17+, Maven, PostgreSQL 15+ server, Chromium) and rerun."
    exit 1
  fi
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  say "$PYTHON is $("$PYTHON" --version 2>&1); the platform needs Python 3.11 or newer (set PYTHON=...)."
  exit 1
fi

VENV="$ROOT/.venv"
[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }

# Reinstall only when a pin or a package definition changed.
stamp="$VENV/.finops-install-stamp"
digest="$(cat constraints.txt requirements-dev.txt libs/*/pyproject.toml services/*/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  say "installing Python packages (pinned by constraints.txt)"
  export PIP_CONSTRAINT="$ROOT/constraints.txt"  # pins build backends too
  log="$VENV/install.log"
  editable=()
  for pkg in libs/contracts libs/runtime libs/simulate services/*/; do editable+=(-e "${pkg%/}"); done
  if ! { "$VENV/bin/python" -m pip install --upgrade pip &&
         "$VENV/bin/python" -m pip install -c constraints.txt -r requirements-dev.txt "${editable[@]}"; } >"$log" 2>&1
  then
    tail -40 "$log" >&2
    say "pip install failed; the whole log is $log"
    exit 1
  fi
  echo "$digest" >"$stamp"
fi
say "ready: $VENV"
