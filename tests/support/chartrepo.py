"""A local Helm chart repository of TEST charts, and the Gateway API CRDs as a manifest, over HTTP.

The upstream charts and the Gateway API release manifest cannot be downloaded here. For apply mode
against the real control plane, this serves what an air-gapped user's mirror would serve:

- ``/index.yaml`` and one package per chart the site installs, each a TEST chart (testchart/)
  under the upstream name and pinned version, read from a render of the site (the tests pass the
  session's shared render, support.session; by hand the site is rendered for it);
- ``/gateway-api/<version>/standard-install.yaml``: the Gateway API CRDs from the upstream
  schemas folder, at the path layout of the upstream release downloads, so only the base URL
  (agentgateway_gateway_api_base_url) changes.

The server runs on 127.0.0.1 on a port picked at run time and is stopped by PID. By hand::

    .venv/bin/python tests/support/chartrepo.py up --dir /tmp/charts     # prints url and pid
    .venv/bin/python tests/support/chartrepo.py down --dir /tmp/charts
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import yaml

if __package__ in (None, ""):  # run as a script: make `support` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from support.controlplane import stop_pid  # noqa: E402  pylint: disable=wrong-import-position
from support.schemas import locate_schemas  # noqa: E402  pylint: disable=wrong-import-position
from support.services import free_port, wait_http  # noqa: E402  pylint: disable=wrong-import-position
from support.tools import tool  # noqa: E402  pylint: disable=wrong-import-position

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEMPLATE = HERE / "testchart"
STATE_FILE = "chartrepo.json"


def charts_of_render(render_dir):
    """[(name, version)] of every Helm release in the index.yaml of a site render."""
    index = yaml.safe_load(pathlib.Path(render_dir, "index.yaml").read_text(encoding="utf-8"))
    charts = {(e["chart"]["name"], str(e["chart"]["version"])) for e in index["entries"] if e["type"] == "helm_release"}
    return sorted(charts)


def site_charts(extra_vars=None):
    """[(name, version)] of every chart site.yml installs (Loki included), read from a render."""
    with tempfile.TemporaryDirectory(prefix="agw-obs-charts-") as out:
        cmd = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), str(REPO / "site.yml"),
               "-e", "agw_obs_render_dir=%s" % out, "-e", "agw_obs_loki_enabled=true"]
        for key, value in (extra_vars or {}).items():
            cmd += ["-e", json.dumps({key: value})]
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                   ANSIBLE_COLLECTIONS_PATH=str(REPO / ".venv" / "collections"))
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError("rendering the site to list its charts failed:\n%s"
                               % (proc.stdout + proc.stderr)[-3000:])
        return charts_of_render(out)


def gateway_api_version():
    defaults = yaml.safe_load((REPO / "roles/agentgateway/defaults/main.yml").read_text(encoding="utf-8"))
    return defaults["agentgateway_gateway_api_version"]


def build(directory, charts, helm=None):
    """Package a TEST chart per (name, version) into ``directory`` and index it; add the CRD manifest."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    helm = helm or tool("helm")
    schemas = locate_schemas()
    with tempfile.TemporaryDirectory(prefix="agw-obs-testchart-") as work:
        for name, version in charts:
            chart_dir = pathlib.Path(work, name)
            shutil.copytree(TEMPLATE, chart_dir, ignore=shutil.ignore_patterns("workloads", "README.md"))
            # the chart's workloads for the Pod Security tests (testchart/workloads/README.md), off by default
            workloads = TEMPLATE / "workloads"
            if (workloads / ("%s.yaml.gotmpl" % name)).exists():
                shutil.copy(workloads / ("%s.yaml.gotmpl" % name), chart_dir / "templates" / "workloads.yaml.gotmpl")
                shutil.copy(workloads / ("%s.values.yaml" % name), chart_dir / "values.yaml")
            for template in (chart_dir / "templates").glob("*.gotmpl"):  # kept out of the YAML linters
                template.rename(template.with_suffix(""))
            (chart_dir / "Chart.yaml").write_text(yaml.safe_dump({
                "apiVersion": "v2",
                "name": name,
                "version": version.lstrip("v"),
                "description": "TEST CHART for agentgateway.observability's apply-mode tests, named like the "
                               "upstream chart; not the upstream chart.",
                "type": "application",
            }, sort_keys=False), encoding="utf-8")
            if name == "agentgateway-crds":
                for crd in sorted((schemas / "agentgateway").glob("*.yaml")):
                    shutil.copy(crd, chart_dir / "templates" / crd.name)
            subprocess.run([helm, "package", str(chart_dir), "--version", version, "-d", str(directory)],
                           check=True, capture_output=True, text=True)
    subprocess.run([helm, "repo", "index", str(directory)], check=True, capture_output=True, text=True)
    crds = directory / "gateway-api" / gateway_api_version() / "standard-install.yaml"
    crds.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for path in sorted((schemas / "gateway-api").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        parts.append(text if text.startswith("---") else "---\n" + text)
    crds.write_text("".join(parts), encoding="utf-8")
    return directory


def up(directory, charts=None):
    """Build the repository in ``directory``/repo and serve it; return the state (url, pid)."""
    directory = pathlib.Path(directory).resolve()
    repo = build(directory / "repo", charts if charts is not None else site_charts())
    port = free_port()
    with open(directory / "http.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(repo)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = "http://127.0.0.1:%d" % port
    state = {"url": url, "pid": proc.pid, "binary": sys.executable,
             "gateway_api_base_url": url + "/gateway-api"}
    (directory / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")
    wait_http(url + "/index.yaml", timeout=30, proc=proc, log_path=str(directory / "http.log"))
    return state


def down(directory):
    path = pathlib.Path(directory) / STATE_FILE
    if path.exists():
        state = json.loads(path.read_text(encoding="utf-8"))
        stop_pid(state["pid"], state["binary"])
        path.unlink()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    if args.action == "up":
        print(json.dumps(up(args.dir), indent=2))
    else:
        down(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
