"""Throughput of the openai_traffic module against WireMock with the mock_backend role's mappings.

Renders playbooks/mock.yml (100 ms delay by default), starts WireMock on 127.0.0.1 with the rendered
mappings and arguments, and measures, with --runs repetitions each:

* the module's request loop at concurrency 1, 10 and 50, as a fraction of the bound
  concurrency / delay (e.g. 10 workers / 0.1 s = 100 requests/s);
* the tutorial's curl loop (10 sequential curl POSTs, without its `sleep 2`) next to the module
  sending the same 10 requests at concurrency 1 and 10.

Loopback only, bounded in requests and time. Prints a table and a JSON line with the medians.

    .venv/bin/python benchmarks/traffic_throughput.py [--runs 3] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".venv" / "collections"), str(REPO / "tests")]

from ansible_collections.agentgateway.observability.plugins.module_utils.http_client import HttpClient  # noqa: E402
from ansible_collections.agentgateway.observability.plugins.module_utils import traffic  # noqa: E402
from support.wiremock import render_mock_backend, start_from_render  # noqa: E402

import yaml  # noqa: E402

DEFAULTS = yaml.safe_load((REPO / "roles" / "mock_backend" / "defaults" / "main.yml").read_text())
API_KEY = DEFAULTS["mock_backend_api_key"]
MODEL = DEFAULTS["mock_backend_models"][0]
DELAY = DEFAULTS["mock_backend_delay_ms"] / 1000.0


def module_run(base_url, requests, concurrency):
    params = dict(base_url=base_url, path="/v1/chat/completions", api_key=API_KEY, models=[MODEL],
                  requests=requests, duration=None, concurrency=concurrency, stream_ratio=0.0,
                  prompt="Test message {i} for observability demo", max_tokens=50, headers={}, header_mix=[],
                  extra_body={}, timeout=10.0, retries=0, pause=0.0)
    client = HttpClient(base_url=base_url, timeout=10.0, headers={"Authorization": "Bearer " + API_KEY})
    results, wall = traffic.run_traffic(client, params)
    stats = traffic.summarize(results, wall, base_url, concurrency)
    if stats["failures"]:
        raise SystemExit("benchmark run had failures: %s" % stats["errors"])
    return stats


def curl_loop(base_url, count=10):
    """The tutorial's loop (minus `sleep 2`): sequential curl POSTs; returns wall seconds."""
    started = time.monotonic()
    for i in range(1, count + 1):
        body = json.dumps({"model": MODEL, "messages": [
            {"role": "user", "content": "Test message %d for observability demo" % i}], "max_tokens": 50})
        subprocess.run(["curl", "-sS", "-o", "/dev/null", "-X", "POST", base_url + "/v1/chat/completions",
                        "-H", "Content-Type: application/json", "-H", "Authorization: Bearer " + API_KEY,
                        "-d", body, "--max-time", "10"], check=True)
    return time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions per point (median reported)")
    parser.add_argument("--seconds", type=float, default=2.0, help="target length of one throughput run")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed for the tutorial's loop")
    work = pathlib.Path(tempfile.mkdtemp(prefix="agw-bench-"))
    deadline = time.monotonic() + 300
    try:
        render_mock_backend(work / "render")
        server = start_from_render(work / "render", work / "wiremock")
        try:
            module_run(server.url, 300, 10)  # JIT warm-up of WireMock, not measured
            rows, medians = [], {}
            for concurrency in (1, 10, 50):
                bound = concurrency / DELAY
                requests = max(concurrency * 2, int(bound * args.seconds))
                rates = []
                for _run in range(args.runs):
                    if time.monotonic() > deadline:
                        raise SystemExit("benchmark took longer than 300 s")
                    rates.append(module_run(server.url, requests, concurrency)["requests_per_second"])
                median = statistics.median(rates)
                medians["c%d" % concurrency] = {"requests": requests, "rps": median, "bound": bound,
                                                "fraction": round(median / bound, 3), "runs": rates}
                rows.append("module  c=%-3d %5d req  %7.1f req/s  bound %6.1f  %5.1f%%"
                            % (concurrency, requests, median, bound, 100 * median / bound))
            curl = statistics.median(curl_loop(server.url) for _run in range(args.runs))
            same10 = {c: statistics.median(module_run(server.url, 10, c)["duration_seconds"]
                                           for _run in range(args.runs))
                      for c in (1, 10)}
            medians["ten_requests_seconds"] = {"curl_loop": round(curl, 3), "module_c1": same10[1],
                                               "module_c10": same10[10],
                                               "tutorial_loop_with_sleep_2_at_least": round(curl + 9 * 2.0, 1)}
            rows.append("10 requests: curl loop %.2fs, module c=1 %.2fs, module c=10 %.2fs "
                        "(the tutorial's loop with sleep 2: >= %.1fs)" % (curl, same10[1], same10[10], curl + 18))
            print("\n".join(rows))
            print(json.dumps(medians, sort_keys=True))
            return 0 if medians["c10"]["fraction"] >= 0.8 else 1
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
