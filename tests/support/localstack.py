"""The verification's local stack (support/stack.py) as a process of its own, for molecule's default scenario.

The same ``LocalStack`` the pytest fixture ``local_stack`` starts, on 127.0.0.1 with ports picked at
run time: the real WireMock with the mock_backend role's rendered mappings, the real Prometheus 3.14
with the prometheus role's rendered rules scraping the gateway stand-in (as job ``--job``, default
``agentgateway``: render the site with the same prometheus_gateway_job_name) and a kube-state-metrics
stand-in, and CONTRACT servers for the gateway (routing by the render's HTTPRoutes and policies, with the
metrics of a proxy fed by the controller), kube-state-metrics, Tempo, Loki and Grafana
(tests/support/contract.py: they implement the documented endpoints the collection calls; they are not
those programs).

``up`` starts ``serve`` in a new session and returns once every service answers; the state file
(``localstack.json``) holds the base URLs (``service_urls``, what ``agw_obs_access=url`` needs) and
the PIDs. ``down`` stops the process by PID (it stops WireMock and Prometheus, by PID, on SIGTERM),
then any of those that is still running. By hand::

    .venv/bin/python tests/support/localstack.py up --dir /tmp/stack --render <site render dir>
    .venv/bin/python tests/support/localstack.py down --dir /tmp/stack
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

if __package__ in (None, ""):  # run as a script: make `support` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from support.controlplane import _alive, stop_pid  # noqa: E402  pylint: disable=wrong-import-position
from support.fixtures import load_rendered  # noqa: E402  pylint: disable=wrong-import-position
from support.stack import GRAFANA_PASSWORD, LocalStack  # noqa: E402  pylint: disable=wrong-import-position
from support.tools import tool  # noqa: E402  pylint: disable=wrong-import-position

STATE_FILE = "localstack.json"
LOG_FILE = "localstack.log"


def _stop(signum, frame):  # pylint: disable=unused-argument
    raise SystemExit(0)


def serve(directory, render, loki=True, grafana_password_file=None, job="agentgateway"):
    """Start the stack from a site render, write the state file, run until SIGTERM, stop the stack."""
    directory = pathlib.Path(directory).resolve()
    password = GRAFANA_PASSWORD
    if grafana_password_file:
        password = pathlib.Path(grafana_password_file).expanduser().read_text(encoding="utf-8").strip()
    signal.signal(signal.SIGTERM, _stop)
    stack = LocalStack(tool("prometheus"), directory, render,
                       load_rendered(render, "helm/monitoring/prometheus.yaml")["values"], loki=loki,
                       grafana_password=password, job=job)
    try:
        state = {
            "pid": os.getpid(), "binary": sys.executable,
            "service_urls": stack.service_urls(),
            "children": [{"name": "wiremock", "pid": stack.wiremock.service.pid, "binary": "java"},
                         {"name": "prometheus", "pid": stack.prometheus.service.pid, "binary": tool("prometheus")}],
            "contract_servers": (["gateway", "gateway_metrics", "kube_state_metrics", "tempo", "grafana"]
                                 + (["loki"] if loki else [])),
            "prometheus_jobs": [job, "kubernetes-service-endpoints"],
        }
        tmp = directory / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        tmp.rename(directory / STATE_FILE)
        while True:
            signal.pause()
    finally:
        stack.stop()


def up(directory, render, loki=True, grafana_password_file=None, timeout=240.0, job="agentgateway"):
    """Start ``serve`` detached; return its state once every service answers."""
    directory = pathlib.Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    state_path = directory / STATE_FILE
    if state_path.exists():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if _alive(state["pid"], state["binary"]):
            return state
        state_path.unlink()
    argv = [sys.executable, str(pathlib.Path(__file__).resolve()), "serve", "--dir", str(directory),
            "--render", str(pathlib.Path(render).resolve())]
    if not loki:
        argv.append("--no-loki")
    if grafana_password_file:
        argv += ["--grafana-password-file", str(grafana_password_file)]
    if job != "agentgateway":
        argv += ["--job", job]
    with open(directory / LOG_FILE, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state_path.exists():
            return json.loads(state_path.read_text(encoding="utf-8"))
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    if proc.poll() is None:
        stop_pid(proc.pid, sys.executable)
    raise RuntimeError("the local stack did not start within %ss:\n%s"
                       % (timeout, (directory / LOG_FILE).read_text(encoding="utf-8")[-4000:]))


def down(directory):
    """Stop the stack by PID (the process, then any child still running); remove the state file."""
    path = pathlib.Path(directory) / STATE_FILE
    if not path.exists():
        return
    state = json.loads(path.read_text(encoding="utf-8"))
    stop_pid(state["pid"], state["binary"])
    for child in state.get("children", []):
        stop_pid(child["pid"], child["binary"])
    path.unlink()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("action", choices=["up", "down", "serve"])
    parser.add_argument("--dir", required=True, help="working folder: state file, logs, WireMock and Prometheus data")
    parser.add_argument("--render", help="a site render (agw_obs_render_dir): mock mappings and Prometheus rules")
    parser.add_argument("--no-loki", action="store_true", help="no contract Loki")
    parser.add_argument("--grafana-password-file", help="the contract Grafana's admin password (default: a fixed one)")
    parser.add_argument("--job", default="agentgateway",
                        help="the scrape job of the gateway target (the render's prometheus_gateway_job_name)")
    args = parser.parse_args(argv)
    if args.action in ("up", "serve") and not args.render:
        parser.error("%s needs --render" % args.action)
    if args.action == "up":
        print(json.dumps(up(args.dir, args.render, not args.no_loki, args.grafana_password_file, job=args.job),
                         indent=2))
    elif args.action == "serve":
        serve(args.dir, args.render, not args.no_loki, args.grafana_password_file, job=args.job)
    else:
        down(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
