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


def render_runs(checkouts, runs, workdir):
    results = {c.name: {"full_s": [], "full_tasks": [], "again_s": [], "again_tasks": []} for c in checkouts}
    for run in range(runs):
        for checkout in checkouts:
            out = workdir / ("render-%d-%s" % (run, checkout.name.split()[0]))
            seconds, tasks, _output = checkout.playbook({"agw_obs_render_dir": str(out)})
            again_s, again_tasks, again_out = checkout.playbook({"agw_obs_render_dir": str(out)})
            if not re.search(r"changed=0\s", again_out):
                raise SystemExit("%s: the second render changed something" % checkout.name)
            row = results[checkout.name]
            row["full_s"].append(seconds)
            row["full_tasks"].append(tasks)
            row["again_s"].append(again_s)
            row["again_tasks"].append(again_tasks)
            print("  render run %d %-22s full %5.1f s %3d tasks   again %5.1f s %3d tasks"
                  % (run + 1, checkout.name, seconds, tasks, again_s, again_tasks), flush=True)
    return results


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
    results = {c.name: {"converge_s": [], "converge_tasks": [], "idempotence_s": [], "idempotence_tasks": []}
               for c in checkouts}
    try:
        for run in range(runs):
            for checkout in checkouts:
                converge_s, converge_tasks, _output = checkout.playbook(settings)
                idem_s, idem_tasks, idem_out = checkout.playbook(settings)
                if not re.search(r"changed=0\s", idem_out):
                    raise SystemExit("%s: the idempotence run changed something" % checkout.name)
                checkout.playbook(dict(settings, agw_obs_state="absent"))
                row = results[checkout.name]
                row["converge_s"].append(converge_s)
                row["converge_tasks"].append(converge_tasks)
                row["idempotence_s"].append(idem_s)
                row["idempotence_tasks"].append(idem_tasks)
                print("  apply  run %d %-22s converge %5.1f s %3d tasks   idempotence %5.1f s %3d tasks"
                      % (run + 1, checkout.name, converge_s, converge_tasks, idem_s, idem_tasks), flush=True)
    finally:
        chartrepo.down(workdir / "charts")
        plane.stop()
    return results


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
