"""Fifteen checks of a healthy stack: one service_probe task against fifteen ansible.builtin.uri tasks.

A plain script (no hyperfine). It starts a healthy local stack on 127.0.0.1 (tests/support/stack.py:
the real Prometheus 3.14 and WireMock, the gateway stand-in, contract Grafana/Tempo/Loki), then
runs ONE ansible-playbook with two plays, ``--runs`` times:

* play 1: one ``agentgateway.observability.service_probe`` task with the 15 checks;
* play 2: the same 15 checks as 15 sequential ``ansible.builtin.uri`` tasks (same URLs, statuses,
  and the same body conditions through ``failed_when``).

Timings come from the ``ansible.posix.json`` callback (each task's start and end): the probe task's
duration, and for uri from the start of the first uri task to the end of the last (the time a
playbook spends on them). Prints medians, the ratio, and a JSON line.

    AGW_OBS_TOOLS_DIR=... .venv/bin/python benchmarks/probe_vs_uri.py [--runs 5]
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

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".venv" / "collections"), str(REPO / "tests")]

from support.fixtures import ansible_env  # noqa: E402
from support.stack import GRAFANA_PASSWORD, LocalStack  # noqa: E402
from support.tools import tool  # noqa: E402
from support.wiremock import render_mock_backend  # noqa: E402

NO_RULES = {"serverFiles": {"alerting_rules.yml": {"groups": []}, "recording_rules.yml": {"groups": []}}}


def checks(urls):
    """The 15 checks: (id, base url, path, method, body, json expectations, auth)."""
    grafana_auth = {"username": "admin", "password": GRAFANA_PASSWORD}
    mock_auth = {"headers": {"Authorization": "Bearer mock-key"}}
    return [
        ("prometheus.ready", urls["prometheus"], "/-/ready", {}, []),
        ("prometheus.healthy", urls["prometheus"], "/-/healthy", {}, []),
        ("prometheus.buildinfo", urls["prometheus"], "/api/v1/status/buildinfo", {},
         [("data.version", "3.14.0")]),
        ("prometheus.up", urls["prometheus"], "/api/v1/query?query=up", {}, [("status", "success")]),
        ("prometheus.targets", urls["prometheus"], "/api/v1/targets?state=active", {},
         [("data.activeTargets[0].health", "up")]),
        ("gateway.metrics", urls["gateway_metrics"], "/metrics", {}, []),
        ("mock_backend.health", urls["mock_backend"], "/__admin/health", {}, [("status", "healthy")]),
        ("mock_backend.models", urls["mock_backend"], "/v1/models", mock_auth, [("object", "list")]),
        ("tempo.ready", urls["tempo"], "/ready", {}, []),
        ("tempo.search", urls["tempo"], "/api/search?q=%7B%7D", {}, [("metrics.inspectedTraces", None)]),
        ("loki.ready", urls["loki"], "/ready", {}, []),
        ("loki.query", urls["loki"], "/loki/api/v1/query_range?query=%7Bservice_name%3D~%22.%2B%22%7D", {},
         [("status", "success")]),
        ("grafana.health", urls["grafana"], "/api/health", {}, [("database", "ok")]),
        ("grafana.datasources", urls["grafana"], "/api/datasources", grafana_auth, [("[0].uid", "prometheus")]),
        ("grafana.dashboard", urls["grafana"], "/api/dashboards/uid/agentgateway-genai-overview", grafana_auth,
         [("dashboard.uid", "agentgateway-genai-overview")]),
    ]


def _jinja_path(path):
    """A JSON path of the checks above as a Jinja expression on the uri result."""
    expr = "_r.json"
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        expr += part if part.startswith("[") else "[%r]" % part
    return expr


def playbook(urls):
    probe_checks, uri_tasks = [], []
    for check_id, base, path, auth, expectations in checks(urls):
        probe = {"id": check_id, "service": {"url": base}, "path": path}
        probe.update(auth)
        if expectations:
            probe["json"] = [dict({"path": p}, **({"equals": v} if v is not None else {})) for p, v in expectations]
        probe_checks.append(probe)
        uri = {"url": base + path, "status_code": 200, "return_content": bool(expectations)}
        if auth.get("username"):
            uri.update(url_username=auth["username"], url_password=auth["password"], force_basic_auth=True)
        if auth.get("headers"):
            uri["headers"] = auth["headers"]
        task = {"name": "uri %s" % check_id, "ansible.builtin.uri": uri, "register": "_r"}
        if expectations:
            conditions = [("%s is not defined" % _jinja_path(p)) if v is None else
                          ("%s != %r" % (_jinja_path(p), v)) for p, v in expectations]
            task["failed_when"] = ["_r.status != 200"] + [" or ".join(conditions)]
        uri_tasks.append(task)
    return [
        {"name": "service_probe", "hosts": "localhost", "gather_facts": False,
         "tasks": [{"name": "service_probe 15 checks",
                    "agentgateway.observability.service_probe": {"checks": probe_checks, "deadline": 10}}]},
        {"name": "uri", "hosts": "localhost", "gather_facts": False, "tasks": uri_tasks},
    ]


def _ts(value):
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def run_once(path):
    env = ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit("the benchmark playbook failed:\n%s\n%s" % (proc.stdout[-4000:], proc.stderr[-2000:]))
    result = json.loads(proc.stdout)
    plays = {p["play"]["name"]: p["tasks"] for p in result["plays"]}
    probe = plays["service_probe"][0]["hosts"]["localhost"]
    probe_task = plays["service_probe"][0]["task"]["duration"]
    uri = plays["uri"]
    assert len(uri) == 15 and probe["summary"]["passed"] == 15, probe["summary"]
    return {
        "probe_s": _ts(probe_task["end"]) - _ts(probe_task["start"]),
        "probe_module_s": probe["elapsed_s"],
        "uri_s": _ts(uri[-1]["task"]["duration"]["end"]) - _ts(uri[0]["task"]["duration"]["start"]),
        "uri_task_sum_s": sum(_ts(t["task"]["duration"]["end"]) - _ts(t["task"]["duration"]["start"]) for t in uri),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="agw-obs-bench-"))
    render_mock_backend(work / "mock-render")
    stack = LocalStack(tool("prometheus"), work / "stack", work / "mock-render", NO_RULES)
    try:
        stack.prometheus.wait_for(lambda: stack.prometheus.query('up{job="agentgateway"} == 1'), what="target up")
        path = work / "bench.yml"
        path.write_text(yaml.safe_dump(playbook(stack.service_urls()), sort_keys=False))
        runs = [run_once(path) for _run in range(args.runs)]
    finally:
        stack.stop()
    medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    ratio = medians["uri_s"] / medians["probe_s"]
    print("%-36s %s" % ("run", "  ".join("%8s" % k for k in runs[0])))
    for index, run in enumerate(runs, 1):
        print("%-36s %s" % (index, "  ".join("%8.3f" % run[k] for k in runs[0])))
    print("%-36s %s" % ("median", "  ".join("%8.3f" % medians[k] for k in runs[0])))
    print("15 checks: service_probe %.3f s (module %.3f s), 15 uri tasks %.3f s: %.1fx faster"
          % (medians["probe_s"], medians["probe_module_s"], medians["uri_s"], ratio))
    print("load average while measuring: %.2f %.2f %.2f (2 cores)" % os.getloadavg())
    print(json.dumps({"runs": args.runs, "medians": medians, "ratio": round(ratio, 2),
                      "load_average": [round(x, 2) for x in os.getloadavg()],
                      "target": {"ratio_at_least": 5, "probe_under_s": 2},
                      "met": ratio >= 5 and medians["probe_s"] < 2}))
    return 0 if ratio >= 5 and medians["probe_s"] < 2 else 1


if __name__ == "__main__":
    os.environ.setdefault("ANSIBLE_NOCOLOR", "1")
    sys.exit(main())
