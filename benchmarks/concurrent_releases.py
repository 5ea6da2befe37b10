"""Prometheus, Tempo and Loki installed at the same time against one after the other (agw_obs_concurrent_releases).

A plain script (no hyperfine: every measured install needs a removal before the next). It starts
the real control plane (etcd, kube-apiserver, kube-controller-manager; tests/support/controlplane.py)
and the local repository of TEST charts (tests/support/chartrepo.py), then, ``--runs`` times for
each mode, runs ``site.yml --tags prometheus,tempo,loki`` in apply mode (Loki on, waiting on) and
removes the releases again (not timed).

Two scenarios:

* ``helm``: the real helm 3.17.2 as it is. No node runs pods here, so this is helm's and
  kubernetes.core's own time per release, nothing else;
* ``hold``: every ``helm upgrade`` is held ``--hold`` seconds before the real helm runs, standing
  in for what a real cluster adds per release (image pulls, pods becoming ready). This is a model,
  not a measurement of a cluster.

Timings come from the ``ansible.posix.json`` callback: the install phase runs from the start of the
first hand-off task to the end of the last (one task together, three one after the other); the
playbook's wall time is reported too. Prints medians, the ratios, and a JSON line.

    AGW_OBS_TOOLS_DIR=... .venv/bin/python benchmarks/concurrent_releases.py [--runs 3] [--hold 5]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".venv" / "collections"), str(REPO / "tests")]

from support import chartrepo  # noqa: E402
from support.controlplane import ControlPlane  # noqa: E402
from support.fixtures import ansible_env  # noqa: E402
from support.tools import tool  # noqa: E402

INSTALL_TASKS = ("Install concurrently the releases of ", "Render or apply the desired state of role ")


def held_helm(directory, hold):
    """A helm program that waits ``hold`` seconds before every upgrade, then runs the real helm."""
    program = directory / "helm-held"
    program.write_text('#!/bin/bash\n[[ " $* " == *" upgrade "* ]] && sleep %d\nexec %s "$@"\n' % (hold, tool("helm")),
                       encoding="utf-8")
    program.chmod(0o755)
    return program


def _ts(value):
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def site(variables, json_out=True):
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), str(REPO / "site.yml"),
           "--tags", "prometheus,tempo,loki"]
    for key, value in variables.items():
        cmd += ["-e", json.dumps({key: value})]
    env = ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json" if json_out else "default")
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit("site.yml failed:\n%s\n%s" % (proc.stdout[-4000:], proc.stderr[-2000:]))
    return proc.stdout, wall


def install_once(variables):
    stdout, wall = site(variables)
    tasks = [t for play in json.loads(stdout)["plays"] for t in play["tasks"]
             if t["task"]["name"].split(" : ", 1)[-1].startswith(INSTALL_TASKS) and not t["hosts"]["localhost"].get("skipped")]
    if not tasks:
        names = [t["task"]["name"] for play in json.loads(stdout)["plays"] for t in play["tasks"]]
        raise SystemExit("no install task ran; tasks: %s" % [n for n in names if "nstall" in n or "apply" in n])
    phase = _ts(tasks[-1]["task"]["duration"]["end"]) - _ts(tasks[0]["task"]["duration"]["start"])
    site(dict(variables, agw_obs_state="absent"), json_out=False)
    return {"install_s": phase, "wall_s": wall}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hold", type=int, default=5, help="seconds each upgrade is held in the hold scenario")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="agw-obs-bench-"))
    plane = ControlPlane(work / "controlplane")
    results = {}
    try:
        plane.start()
        repo = chartrepo.up(work / "charts")
        base = {"agw_obs_kubeconfig": str(plane.kubeconfig_path), "agw_obs_chart_repository_mirror": repo["url"],
                "agw_obs_loki_enabled": True, "agw_obs_wait": True, "agw_obs_wait_timeout": "60s",
                "traffic_enabled": False, "verification_enabled": False}
        for scenario, helm in (("helm", tool("helm")), ("hold", str(held_helm(work, args.hold)))):
            for mode, together in (("together", True), ("one_by_one", False)):
                variables = dict(base, agw_obs_helm_binary=helm, agw_obs_concurrent_releases=together)
                results[(scenario, mode)] = [install_once(variables) for _run in range(args.runs)]
    finally:
        chartrepo.down(work / "charts")
        plane.stop()

    summary = {}
    print("%-8s %-11s %s" % ("scenario", "mode", "install phase s (runs) -> median; playbook wall s median"))
    for (scenario, mode), runs in results.items():
        install = statistics.median(r["install_s"] for r in runs)
        wall = statistics.median(r["wall_s"] for r in runs)
        summary.setdefault(scenario, {})[mode] = {"install_s": round(install, 3), "wall_s": round(wall, 3)}
        each = " ".join("%.3f" % r["install_s"] for r in runs)
        print("%-8s %-11s %s -> %.3f; %.3f" % (scenario, mode, each, install, wall))
    for scenario, modes in summary.items():
        modes["ratio"] = round(modes["one_by_one"]["install_s"] / modes["together"]["install_s"], 2)
        print("%s: install phase %.3f s together, %.3f s one after the other: %.2fx"
              % (scenario, modes["together"]["install_s"], modes["one_by_one"]["install_s"], modes["ratio"]))
    print("load average while measuring: %.2f %.2f %.2f (%d cores)" % (os.getloadavg() + (os.cpu_count(),)))
    print(json.dumps({"runs": args.runs, "hold_s": args.hold, "medians": summary,
                      "load_average": [round(x, 2) for x in os.getloadavg()]}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("ANSIBLE_NOCOLOR", "1")
    sys.exit(main())
