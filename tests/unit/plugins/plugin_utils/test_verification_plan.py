"""Unit tests of the verification plan and of the diagnose sections (pure logic)."""

from __future__ import annotations

import re

import pytest

from ansible_collections.agentgateway.observability.plugins.plugin_utils import diagnose
from ansible_collections.agentgateway.observability.plugins.plugin_utils import verification as plan_mod

SENT = [{"model": "gpt-4", "n": 0, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"},
        {"model": "gpt-3.5-turbo", "n": 0, "trace_id": "0af7651916cd43dd8448eb211c80319c",
         "span_id": "b7ad6b7169203331"}]
TARGETS = {"gateway": {"url": "http://gw"}, "mock_backend": {"url": "http://wm"}}


def make(**kw):
    args = dict(sent=SENT, targets=TARGETS, path="/v1/chat/completions", api_key="test-token",
                backend_api_key="mock-key", namespace="agentgateway-system", priced_models=["gpt-4"])
    args.update(kw)
    return plan_mod.plan(**args)


def test_requests_carry_our_trace_context_and_the_client_key():
    requests = make()["requests"]
    assert [r["id"] for r in requests] == ["gateway.request.gpt-4.0", "gateway.request.gpt-3.5-turbo.0"]
    first = requests[0]
    assert first["headers"]["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert first["headers"]["Authorization"] == "Bearer test-token" and first["method"] == "POST"
    assert first["body"]["model"] == "gpt-4" and first["service"] == {"url": "http://gw"}
    assert set(first["fixes"]) == {"server_error", "not_found", "unauthorized"}


def test_the_gateway_check_wants_a_new_span_of_our_trace_and_the_backend_key():
    received, via = make()["backend"][:2]
    assert received["body"]["headers"] == {"traceparent": {"contains": SENT[0]["trace_id"]}}
    pattern = via["body"]["headers"]["traceparent"]["matches"]
    assert via["body"]["headers"]["Authorization"] == {"equalTo": "Bearer mock-key"}
    # the same regex semantics WireMock (Java) applies: our own span id must not match, a gateway's must
    assert not re.match(pattern, "00-%s-%s-01" % (SENT[0]["trace_id"], SENT[0]["span_id"]))
    assert re.match(pattern, "00-%s-%s-01" % (SENT[0]["trace_id"], "1111111111111111"))
    assert not re.match(pattern, "00-%s-%s-01" % (SENT[1]["trace_id"], "1111111111111111"))
    assert received["cause"] == "not_received" and via["cause"] == "bypassed_gateway"


def test_queries_escape_model_names_for_promql_and_price_only_priced_models():
    queries = {q["id"]: q for q in make()["queries"]}
    assert set(queries) == {"prometheus.requests_by_model", "prometheus.tokens_input", "prometheus.tokens_output",
                            "prometheus.cost"}
    assert 'model=~"gpt-3\\\\.5-turbo|gpt-4"' in queries["prometheus.requests_by_model"]["query"]
    assert queries["prometheus.cost"]["per_label"] == {"label": "gen_ai_request_model", "values": ["gpt-4"]}
    assert "prometheus.cost" not in {q["id"] for q in make(priced_models=[])["queries"]}


def test_traces_logs_and_check_mode():
    result = make(trace_attributes={"gen_ai.usage.input_tokens": "*"}, loki_query='{a="b"} |= "{trace_id}"')
    assert result["traces"][0]["attributes"] == {"gen_ai.request.model": "gpt-4", "gen_ai.usage.input_tokens": "*"}
    assert result["log_queries"][1]["query"] == '{a="b"} |= "0af7651916cd43dd8448eb211c80319c"'
    idle = make(follow=False)
    assert len(idle["requests"]) == 2 and idle["backend"] == idle["traces"] == idle["queries"] == []
    with pytest.raises(plan_mod.PlanError, match="must contain {trace_id}"):
        make(loki_query="{a=\"b\"}")
    with pytest.raises(plan_mod.PlanError, match="32 and span_id 16"):
        make(sent=[dict(SENT[0], trace_id="XYZ")])


def _pod(name, phase="Running", node="n1", ready=True, restarts=0, waiting=None):
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": {"name": name, "namespace": "monitoring"}, "spec": {"nodeName": node, "containers": [{}]},
            "status": {"phase": phase, "containerStatuses": [{"name": "c", "ready": ready, "restartCount": restarts,
                                                              "state": state}]}}


def test_failing_pods_table_and_logs():
    pods = [_pod("ok"), _pod("pending", phase="Pending", node=None, ready=False),
            _pod("crash", ready=False, restarts=4, waiting="CrashLoopBackOff"),
            _pod("done", phase="Succeeded", ready=False)]
    failing = diagnose.failing_pods(pods)
    assert [p["name"] for p in failing] == ["pending", "crash"]
    assert failing[1]["reason"] == "c: CrashLoopBackOff" and failing[1]["restarts"] == 4
    table = diagnose.pod_table(pods)
    assert "!  monitoring  pending" in table and "<none>" in table
    logs = diagnose.pod_logs(failing, [
        {"item": {"namespace": "monitoring", "name": "crash"}, "failed": True, "msg": "kubelet unreachable"}])
    assert "not scheduled to a node, so no kubelet has run it" in logs["logs/monitoring/pending.log"]
    assert "could not be read" in logs["logs/monitoring/crash.log"] and "kubelet unreachable" in \
        logs["logs/monitoring/crash.log"]


def test_sections_record_failed_reads_and_unknown_kinds():
    section = diagnose.section([{"item": {"kind": "EnterpriseAgentgatewayPolicy", "api_version": "x/v1"},
                                 "api_found": False, "resources": []},
                                {"item": "monitoring", "failed": True, "msg": "connection refused"}], "resources")
    assert "does not serve this kind" in section[0]["error"] and section[1]["error"] == "connection refused"
    helm = diagnose.section([{"item": {"name": "grafana", "namespace": "monitoring"}, "status": {}}], "status")
    assert helm[0]["release"] == "not installed"
    view = diagnose.telemetry_view({"kind": "AgentgatewayParameters", "metadata": {"name": "p"},
                                    "spec": {"rawConfig": {"config": {}}, "deployment": {"replicas": 1}}})
    assert view["spec"] == {"rawConfig": {"config": {}}}
