"""The whole site, rendered and applied, now and at the commit before "plan once, check once, apply once".

A plain script (no hyperfine: the apply part needs a removal between runs). In one run it times,
for this checkout and for ``--before`` (a git worktree of that commit, made for the run and removed
after), alternating the two so that a busy machine weighs on both alike:

* render: ``site.yml`` in render mode into an empty folder (a full render), then again into the
  same folder (a second, unchanged render); wall time and the tasks executed (the ``TASK [``
  banners of the default callback: every task started, included ones too);
* apply (``--apply``): the ``apiserver`` molecule scenario's converge and idempotence runs, i.e.
  ``site.yml`` in apply mode twice against a real control plane with no nodes and the local
  repository of test charts (tests/support/controlplane.py, tests/support/chartrepo.py), with the
  scenario's settings (waiting off, no traffic, no verification); the removal between runs is not
  timed.

Prints the medians, the ratios, and a JSON line.

    .venv/bin/python benchmarks/site_render.py [--runs 3] [--apply] [--before da8d676]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

# The last commit before the change (main at "Review fixes: the no-job-left test ...").
BEFORE = "da8d676"
VENV_BIN = REPO / ".venv" / "bin"


class Checkout(object):
    """A checkout of the collection and the collections path that makes it importable by its FQCN."""

    def __init__(self, name, root, collections):
        self.name, self.root, self.collections = name, pathlib.Path(root), pathlib.Path(collections)

    def env(self):
        env = dict(os.environ)
        env.update({"ANSIBLE_CONFIG": str(self.root / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
                    "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_STDOUT_CALLBACK": "default",
                    "PATH": "%s:%s" % (VENV_BIN, env.get("PATH", ""))})
        return env

    def playbook(self, variables, args=()):
        """(seconds, tasks, output) of ``site.yml`` with ``variables``."""
        cmd = [str(VENV_BIN / "ansible-playbook"), str(self.root / "site.yml")]
        for key, value in variables.items():
            cmd += ["-e", json.dumps({key: value})]
        started = time.monotonic()
        proc = subprocess.run(cmd + list(args), cwd=self.root, env=self.env(), capture_output=True, text=True,
                              check=False)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit("%s: site.yml failed:\n%s" % (self.name, (proc.stdout + proc.stderr)[-4000:]))
        return seconds, len(re.findall(r"^TASK \[", proc.stdout, re.M)), proc.stdout


def before_checkout(rev, workdir):
    root = workdir / "before"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(root), rev], check=True,
                   capture_output=True)
    collections = workdir / "before-collections"
    (collections / "ansible_collections" / "agentgateway").mkdir(parents=True)
    (collections / "ansible_collections" / "agentgateway" / "observability").symlink_to(root)
    return Checkout("before (%s)" % rev, root, collections)


def timed_pairs(checkouts, runs, part, names, run_pair):
    """``runs`` times, for each checkout: ``run_pair(run, checkout)`` -> two (seconds, tasks) and the
    second run's output, which must report no change. Returns {checkout: {name_s: [...], name_tasks: [...]}}."""
    results = {c.name: {"%s_%s" % (n, k): [] for n in names for k in ("s", "tasks")} for c in checkouts}
    for run in range(runs):
        for checkout in checkouts:
            first, second, output = run_pair(run, checkout)
            if not re.search(r"changed=0\s", output):
                raise SystemExit("%s: the %s run changed something" % (checkout.name, names[1]))
            line = []
            for name, (seconds, tasks) in zip(names, (first, second)):
                results[checkout.name][name + "_s"].append(seconds)
                results[checkout.name][name + "_tasks"].append(tasks)
                line.append("%s %5.1f s %3d tasks" % (name, seconds, tasks))
            print("  %-6s run %d %-22s %s" % (part, run + 1, checkout.name, "   ".join(line)), flush=True)
    return results


def render_runs(checkouts, runs, workdir):
    def run_pair(run, checkout):
        variables = {"agw_obs_render_dir": str(workdir / ("render-%d-%s" % (run, checkout.name.split()[0])))}
        full_s, full_tasks, _output = checkout.playbook(variables)
        again_s, again_tasks, again_out = checkout.playbook(variables)
        return (full_s, full_tasks), (again_s, again_tasks), again_out
    return timed_pairs(checkouts, runs, "render", ("full", "again"), run_pair)


def apply_runs(checkouts, runs, workdir):
    from support import chartrepo  # pylint: disable=import-outside-toplevel
    from support.controlplane import CONTEXT, ControlPlane  # pylint: disable=import-outside-toplevel
    from support.tools import tool  # pylint: disable=import-outside-toplevel

    plane = ControlPlane(workdir / "controlplane").start()
    charts = chartrepo.up(workdir / "charts")
    settings = {"agw_obs_kubeconfig": str(plane.kubeconfig_path), "agw_obs_kube_context": CONTEXT,
                "agw_obs_helm_binary": tool("helm"), "agw_obs_chart_repository_mirror": charts["url"],
                "agw_obs_wait": False, "agentgateway_gateway_api_base_url": charts["gateway_api_base_url"],
                "agentgateway_gateway_api_crds_keep_on_absent": False,
                "grafana_admin_password_file": str(workdir / "grafana-admin-password"),
                "traffic_enabled": False, "verification_enabled": False}

    def run_pair(_run, checkout):
        converge_s, converge_tasks, _output = checkout.playbook(settings)
        idem_s, idem_tasks, idem_out = checkout.playbook(settings)
        checkout.playbook(dict(settings, agw_obs_state="absent"))  # not timed
        return (converge_s, converge_tasks), (idem_s, idem_tasks), idem_out

    try:
        return timed_pairs(checkouts, runs, "apply", ("converge", "idempotence"), run_pair)
    finally:
        chartrepo.down(workdir / "charts")
        plane.stop()


def medians(results):
    return {name: {key: statistics.median(values) for key, values in row.items()} for name, row in results.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", default=BEFORE, help="the commit to compare with (default %(default)s)")
    parser.add_argument("--apply", action="store_true", help="also time the apiserver converge and idempotence")
    args = parser.parse_args()

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="agw-obs-bench-"))
    now = Checkout("now", REPO, REPO / ".venv" / "collections")
    before = before_checkout(args.before, workdir)
    checkouts = [before, now]
    try:
        report = {"runs": args.runs, "before": args.before,
                  "render": medians(render_runs(checkouts, args.runs, workdir))}
        if args.apply:
            report["apply"] = medians(apply_runs(checkouts, args.runs, workdir))
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before.root)], check=False,
                       capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)

    print("\nmedians of %d runs" % args.runs)
    for part, keys in (("render", ("full", "again")), ("apply", ("converge", "idempotence"))):
        if part not in report:
            continue
        old, new = report[part][before.name], report[part]["now"]
        for key in keys:
            print("  %-6s %-12s before %6.1f s %4d tasks   now %6.1f s %4d tasks   %.1fx faster, %.1fx fewer tasks"
                  % (part, key, old[key + "_s"], old[key + "_tasks"], new[key + "_s"], new[key + "_tasks"],
                     old[key + "_s"] / new[key + "_s"], old[key + "_tasks"] / max(new[key + "_tasks"], 1)))
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()
