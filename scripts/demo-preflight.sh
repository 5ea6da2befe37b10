#!/usr/bin/env bash
# `make demo` runs this before anything else, so nothing slow happens (not even `make setup`) when
# the demo cannot run: it needs a container engine that answers (Docker, or Podman) for kind's
# nodes, and kind (on PATH, or Go so that `make setup` builds the pinned kind v0.32.0). Without them
# it stops at once, says what is missing and where to go instead. It runs shell builtins and the
# engines' own `info` only, so it answers in well under a second.
set -uo pipefail

engine="" engine_notes=()
for candidate in docker podman; do
  command -v "$candidate" >/dev/null 2>&1 || continue
  if out=$("$candidate" info 2>&1 >/dev/null); then
    engine=$candidate
    break
  fi
  last=${out##*$'\n'}
  engine_notes+=("$candidate is installed but does not answer (${last:-$candidate info failed})")
done

missing=()
if [ -z "$engine" ]; then
  if ((${#engine_notes[@]})); then
    notes=$(printf '%s; ' "${engine_notes[@]}")
    missing+=("No container engine answers: ${notes%; }.")
  else
    missing+=("No container engine: neither docker nor podman is installed.")
  fi
fi
if ! command -v kind >/dev/null 2>&1 && ! command -v go >/dev/null 2>&1; then
  missing+=("kind is missing, and Go is not there for make setup to build the pinned kind v0.32.0 (go install sigs.k8s.io/kind@v0.32.0, or https://kind.sigs.k8s.io/docs/user/quick-start/#installation).")
fi
((${#missing[@]})) || exit 0

{
  echo "make demo: cannot run here."
  for line in "${missing[@]}"; do echo "  - $line"; done
  echo "kind runs the cluster's nodes as Docker or Podman containers. Without them:"
  echo "  make render DIR=out            everything the site would apply, as files in out/ (no cluster)"
  echo "  molecule test -s apiserver     the site applied to a local Kubernetes control plane (part of make test)"
} >&2
exit 1
