# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pinned upstream schema files the tests validate against: where they are, and `make schemas`.

The tests check what the collection emits against upstream contracts: CRD schemas (agentgateway,
Gateway API, prometheus-operator), the agentgateway proxy config schema and chart value schemas.
scripts/upstream-schemas.json lists each file with its URL at a pinned commit and its sha256.

Where the tests read them from, first match wins:

1. ``AGW_OBS_SCHEMAS_DIR``, when set;
2. the upstream schemas folder beside the checkout (``../shared/schemas``), when it exists;
3. ``.cache/schemas``, filled by ``make schemas`` (this script).

``make schemas`` downloads every file into a scratch folder, checks every sha256, and only then
moves the set into ``.cache/schemas``: a bad download leaves the cache as it was. Files already
there with the right checksum are not downloaded again. ``AGW_OBS_SCHEMAS_MIRROR=<base URL>``
(or ``--mirror``) fetches ``<base>/<path>`` instead of the upstream URL, for air-gapped machines
(a web server holding a copy of the folder; ``file://`` works too).

Standard library only: it runs before ``make setup`` has built the virtualenv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(REPO, "scripts", "upstream-schemas.json")
BESIDE = os.path.join(os.path.dirname(REPO), "shared", "schemas")
CACHE = os.path.join(REPO, ".cache", "schemas")
FIX = "run `make schemas` (downloads the pinned upstream schemas into .cache/schemas)"


class SchemasError(RuntimeError):
    """One line that says what is wrong and which command fixes it."""


def manifest(path=MANIFEST):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["files"]


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _missing(directory, files):
    return [entry["path"] for entry in files if not os.path.isfile(os.path.join(directory, entry["path"]))]


def locate(env=None, files=None, beside=BESIDE, cache=CACHE):
    """The folder to read the schemas from, or SchemasError with one line naming the fix."""
    env = os.environ if env is None else env
    files = manifest() if files is None else files
    explicit = env.get("AGW_OBS_SCHEMAS_DIR")
    if explicit:
        missing = _missing(explicit, files)
        if missing:
            raise SchemasError("AGW_OBS_SCHEMAS_DIR=%s lacks %s (%d of %d files): point it at a complete copy, "
                               "or unset it and %s" % (explicit, missing[0], len(missing), len(files), FIX))
        return explicit
    if os.path.isdir(beside):
        missing = _missing(beside, files)
        if missing:
            raise SchemasError("the upstream schemas folder %s lacks %s (%d of %d files): set AGW_OBS_SCHEMAS_DIR "
                               "to a complete copy, or %s" % (beside, missing[0], len(missing), len(files), FIX))
        return beside
    missing = _missing(cache, files)
    if missing:
        raise SchemasError("upstream schemas not found (AGW_OBS_SCHEMAS_DIR unset, no %s, %s incomplete): %s"
                           % (beside, cache, FIX))
    stale = [e["path"] for e in files if sha256(os.path.join(cache, e["path"])) != e["sha256"]]
    if stale:
        raise SchemasError("%s holds %s at another version than scripts/upstream-schemas.json pins: %s"
                           % (cache, stale[0], FIX))
    return cache


def _url(entry, mirror):
    return "%s/%s" % (mirror.rstrip("/"), entry["path"]) if mirror else entry["url"]


def _download(url, dest, timeout):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:  # nosec B310 (pinned, checksummed)
            shutil.copyfileobj(resp, out)
    except urllib.error.HTTPError as exc:
        raise SchemasError("could not download %s: HTTP %s %s" % (url, exc.code, exc.reason)) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SchemasError("could not download %s: %s (offline? set AGW_OBS_SCHEMAS_MIRROR to a mirror of the "
                           "files, or AGW_OBS_SCHEMAS_DIR to a copy)" % (url, reason)) from exc


def fetch(cache=CACHE, mirror=None, files=None, timeout=60, log=print):
    """Bring ``cache`` to the pinned set; return the paths downloaded. All or nothing."""
    files = manifest() if files is None else files
    wanted = [e for e in files
              if not (os.path.isfile(os.path.join(cache, e["path"])) and sha256(os.path.join(cache, e["path"])) == e["sha256"])]
    if not wanted:
        log("schemas: %s is up to date (%d files)" % (cache, len(files)))
        return []
    parent = os.path.dirname(os.path.abspath(cache))
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".schemas-", dir=parent)
    try:
        for entry in wanted:
            dest = os.path.join(scratch, entry["path"])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            url = _url(entry, mirror)
            log("schemas: %s" % url)
            _download(url, dest, timeout)
            got = sha256(dest)
            if got != entry["sha256"]:
                raise SchemasError("checksum mismatch for %s from %s: sha256 %s, expected %s (nothing was written to %s)"
                                   % (entry["path"], url, got, entry["sha256"], cache))
        for entry in wanted:
            final = os.path.join(cache, entry["path"])
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(os.path.join(scratch, entry["path"]), final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log("schemas: %d of %d files written to %s" % (len(wanted), len(files), cache))
    return [e["path"] for e in wanted]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--mirror", default=os.environ.get("AGW_OBS_SCHEMAS_MIRROR", ""),
                        help="base URL serving <base>/<path> for every file (default: $AGW_OBS_SCHEMAS_MIRROR)")
    parser.add_argument("--cache", default=CACHE, help="where to put the files (default: .cache/schemas)")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing when the tests already find the schemas (AGW_OBS_SCHEMAS_DIR, the folder beside)")
    parser.add_argument("--print-dir", action="store_true", help="print the folder the tests read, or fail naming the fix")
    args = parser.parse_args(argv)
    try:
        if args.print_dir:
            print(locate(cache=args.cache))
            return 0
        if args.if_missing:
            try:
                locate(cache=args.cache)
                return 0
            except SchemasError:
                pass
        fetch(cache=args.cache, mirror=args.mirror)
    except SchemasError as exc:
        sys.stderr.write("schemas: %s\n" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
