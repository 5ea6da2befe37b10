"""`make schemas` (scripts/schemas.py): the pinned upstream schemas for a clone without the folder beside it.

GitHub is unreachable here, so the downloads run for real against a local HTTP server on
127.0.0.1 that serves the upstream schemas folder, through the script's mirror setting
(``--mirror`` / AGW_OBS_SCHEMAS_MIRROR, the same path an air-gapped user takes).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import pathlib
import re
import shutil
import subprocess
import sys
import threading

import pytest

from support.schemas import REPO, SCHEMAS_SCRIPT, SchemasError, locate_schemas

SCRIPT = REPO / "scripts" / "schemas.py"
MANIFEST = json.loads((REPO / "scripts" / "upstream-schemas.json").read_text(encoding="utf-8"))["files"]


class FileServer(object):
    """Serves ``root`` on 127.0.0.1 (port picked at run time) and records each requested path."""

    def __init__(self, root):
        self.requests = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(root):
        server = FileServer(root)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def run_script(*args, **env):
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(pathlib.Path.home())}
    environ.update(env)
    return subprocess.run([sys.executable, str(SCRIPT)] + list(args), capture_output=True, text=True, env=environ,
                          timeout=120, check=False)


def files_under(directory):
    return sorted(str(p.relative_to(directory)) for p in pathlib.Path(directory).rglob("*") if p.is_file())


# ---- the manifest ---------------------------------------------------------------------------

def test_the_manifest_pins_every_file_of_the_upstream_schemas_folder(schemas_dir):
    listed = {entry["path"] for entry in MANIFEST}
    on_disk = set(files_under(schemas_dir)) - {"SOURCES.md"}
    assert listed == on_disk
    for entry in MANIFEST:
        data = (pathlib.Path(schemas_dir) / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]


def test_every_url_is_pinned_to_a_commit():
    """A branch or tag name could move; a 40-hex commit cannot."""
    for entry in MANIFEST:
        assert re.match(r"^https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/\S+$", entry["url"]), entry


# ---- downloads ------------------------------------------------------------------------------

def test_download_lands_every_file_with_its_checksum_and_a_second_run_downloads_nothing(tmp_path, serve, schemas_dir):
    server = serve(schemas_dir)
    cache = tmp_path / "cache" / "schemas"
    proc = run_script("--cache", str(cache), "--mirror", server.url)
    assert proc.returncode == 0, proc.stderr
    assert files_under(cache) == sorted(e["path"] for e in MANIFEST)
    for entry in MANIFEST:
        assert hashlib.sha256((cache / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert sorted(server.requests) == sorted("/" + e["path"] for e in MANIFEST)
    assert "%d of %d files written" % (len(MANIFEST), len(MANIFEST)) in proc.stdout
    # nothing but the files: no scratch folder left next to the cache
    assert sorted(p.name for p in cache.parent.iterdir()) == ["schemas"]

    # the tests can read it from there
    assert locate_schemas(env={}, beside=str(tmp_path / "none"), cache=str(cache)) == cache

    again = run_script("--cache", str(cache), "--mirror", server.url, AGW_OBS_SCHEMAS_MIRROR="unused")
    assert again.returncode == 0, again.stderr
    assert len(server.requests) == len(MANIFEST), "a complete cache is not downloaded again"
    assert "up to date" in again.stdout


def test_the_mirror_can_come_from_the_environment(tmp_path, serve, schemas_dir):
    server = serve(schemas_dir)
    cache = tmp_path / "schemas"
    proc = run_script("--cache", str(cache), AGW_OBS_SCHEMAS_MIRROR=server.url + "/")
    assert proc.returncode == 0, proc.stderr
    assert len(server.requests) == len(MANIFEST)


def tampered_copy(schemas_dir, tmp_path, victim):
    root = tmp_path / "mirror"
    shutil.copytree(schemas_dir, root)
    path = root / victim
    path.write_bytes(path.read_bytes() + b"\n# tampered\n")
    return root


def test_a_bad_checksum_is_refused_and_leaves_nothing_behind(tmp_path, serve, schemas_dir):
    victim = MANIFEST[-1]["path"]  # the last file: every other one downloaded fine before it
    server = serve(tampered_copy(schemas_dir, tmp_path, victim))
    cache = tmp_path / "cache" / "schemas"
    proc = run_script("--cache", str(cache), "--mirror", server.url)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "checksum mismatch for %s" % victim in lines[0]
    assert len(server.requests) == len(MANIFEST)
    assert not cache.exists()
    assert list(cache.parent.iterdir()) == [], "no scratch folder is left behind"


def test_a_bad_download_leaves_an_existing_cache_as_it_was(tmp_path, serve, schemas_dir):
    good = serve(schemas_dir)
    cache = tmp_path / "schemas"
    assert run_script("--cache", str(cache), "--mirror", good.url).returncode == 0
    # two files out of date (a pin moved): both need a download, and the second one is bad
    first, second = MANIFEST[0]["path"], MANIFEST[1]["path"]
    for rel in (first, second):
        (cache / rel).write_text("old version\n", encoding="utf-8")
    before = {rel: (cache / rel).read_bytes() for rel in files_under(cache)}
    bad = serve(tampered_copy(schemas_dir, tmp_path, second))
    proc = run_script("--cache", str(cache), "--mirror", bad.url)
    assert proc.returncode == 1
    assert "checksum mismatch for %s" % second in proc.stderr
    assert sorted(bad.requests) == sorted(["/" + first, "/" + second])
    after = {rel: (cache / rel).read_bytes() for rel in files_under(cache)}
    assert after == before, "the good first file was not moved in alone"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mirror", "schemas"]


def test_a_missing_file_on_the_mirror_names_the_url(tmp_path, serve):
    empty = tmp_path / "empty"
    empty.mkdir()
    server = serve(empty)
    cache = tmp_path / "schemas"
    proc = run_script("--cache", str(cache), "--mirror", server.url)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "could not download %s/%s" % (server.url, MANIFEST[0]["path"]) in proc.stderr
    assert ": HTTP 404 " in proc.stderr
    assert not cache.exists()


def test_if_missing_does_nothing_when_a_source_is_there(tmp_path, schemas_dir):
    cache = tmp_path / "schemas"
    proc = run_script("--cache", str(cache), "--if-missing", "--mirror", "http://127.0.0.1:9/unreachable",
                      AGW_OBS_SCHEMAS_DIR=str(schemas_dir))
    assert proc.returncode == 0, proc.stderr
    assert not cache.exists()


# ---- where the tests read them from -----------------------------------------------------------

def test_no_source_fails_with_one_line_naming_the_command(tmp_path):
    with pytest.raises(SchemasError) as info:
        locate_schemas(env={}, beside=str(tmp_path / "no-folder-beside"), cache=str(tmp_path / "no-cache"))
    message = str(info.value)
    assert "\n" not in message
    assert "run `make schemas`" in message


def test_the_environment_wins_and_an_incomplete_folder_is_refused(tmp_path, schemas_dir):
    assert locate_schemas(env={"AGW_OBS_SCHEMAS_DIR": str(schemas_dir)}, beside=str(tmp_path),
                          cache=str(tmp_path)) == pathlib.Path(schemas_dir)
    proc = run_script("--print-dir", AGW_OBS_SCHEMAS_DIR=str(tmp_path))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "AGW_OBS_SCHEMAS_DIR=%s lacks" % tmp_path in proc.stderr and "make schemas" in proc.stderr


def test_the_folder_beside_the_checkout_comes_before_the_cache(tmp_path, schemas_dir):
    assert locate_schemas(env={}, beside=str(schemas_dir), cache=str(tmp_path / "no-cache")) == pathlib.Path(schemas_dir)


def test_a_stale_cache_is_refused(tmp_path, serve, schemas_dir):
    server = serve(schemas_dir)
    cache = tmp_path / "schemas"
    assert run_script("--cache", str(cache), "--mirror", server.url).returncode == 0
    (cache / MANIFEST[3]["path"]).write_text("another version\n", encoding="utf-8")
    with pytest.raises(SchemasError, match=r"another version than .* pins: run `make schemas`"):
        locate_schemas(env={}, beside=str(tmp_path / "none"), cache=str(cache))
    # and `make schemas` repairs it with one download
    assert run_script("--cache", str(cache), "--mirror", server.url).returncode == 0
    assert server.requests[len(MANIFEST):] == ["/" + MANIFEST[3]["path"]]
    assert SCHEMAS_SCRIPT.sha256(str(cache / MANIFEST[3]["path"])) == MANIFEST[3]["sha256"]
