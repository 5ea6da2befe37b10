"""`make demo` on a machine without a container engine (or kind): it stops at once, before `make setup`
does anything (no "setup:" line, no tools folder), says what is missing and points to `make render` and
the apiserver scenario."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from support.fixtures import REPO
from support.programs import programs_dir


def engine_answers():
    for engine in ("docker", "podman"):
        path = shutil.which(engine)
        if path and subprocess.run([path, "info"], capture_output=True, timeout=30, check=False).returncode == 0:
            return True
    return False


def make_demo(path, tmp_path):
    """`make demo` with this PATH."""
    env = dict(os.environ, PATH=path, AGW_OBS_TOOLS_DIR=str(tmp_path / "no-tools"), MAKEFLAGS="")
    return subprocess.run(["make", "--no-print-directory", "demo"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def assert_stopped_at_once(proc, tmp_path):
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "make demo: cannot run here." in out
    assert "make render DIR=" in out and "molecule test -s apiserver" in out
    # setup never started: it prints "setup: ..." and would create the tools folder
    assert "setup:" not in out
    assert not (tmp_path / "no-tools").exists()
    return " ".join(out.split())


def test_without_docker_podman_or_kind(tmp_path):
    path = programs_dir(tmp_path / "bin", without=("docker", "podman", "nerdctl", "kind", "go"))
    proc = make_demo(path, tmp_path)
    out = assert_stopped_at_once(proc, tmp_path)
    assert "No container engine: neither docker nor podman is installed." in out
    assert "kind is missing" in out and "go install sigs.k8s.io/kind@v0.32.0" in out


def test_with_a_docker_whose_daemon_does_not_answer(tmp_path):
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("no docker CLI on this machine")
    if engine_answers():
        pytest.skip("a container engine answers on this machine: make demo would run")
    # docker CLI present, no daemon; kind absent but Go present (make setup would build kind)
    go = shutil.which("go")
    path = programs_dir(tmp_path / "bin", extra=[docker] + ([go] if go else []))
    proc = make_demo(path, tmp_path)
    out = assert_stopped_at_once(proc, tmp_path)
    assert "docker is installed but does not answer (Cannot connect to the Docker daemon" in out
    if shutil.which("go"):
        assert "kind is missing" not in out
