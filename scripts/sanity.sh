#!/usr/bin/env bash
# ansible-test sanity on the collection. ansible-test wants to run from a path that ends in
# ansible_collections/<namespace>/<name>, so the project's files (tracked, plus untracked ones
# git does not ignore) are copied to a scratch folder first; ansible-test's tests/output is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
# AGW_OBS_SANITY_DIR lets parallel runs use their own copy; it must end in the collection path.
# Outside the checkout: inside it, git would report the copy as ignored and ansible-test would skip it all.
dest=${AGW_OBS_SANITY_DIR:-${TMPDIR:-/tmp}/agw-obs-sanity/ansible_collections/agentgateway/observability}
case "$dest" in */ansible_collections/agentgateway/observability) ;; *)
  echo "sanity: AGW_OBS_SANITY_DIR must end in ansible_collections/agentgateway/observability" >&2; exit 2;; esac
mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
[ -d "$dest/tests" ] && find "$dest/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar -cf - --null -T - | (cd "$dest" && tar -xf -)
cd "$dest"
ansible-test sanity --python 3.11 --local --color no "$@"
