"""The one screen site.yml ends with: URLs from the site's port plan, the Grafana password file, the result.

Two runs of site.yml in render mode (no cluster), each only what the screen needs (tags), since the
screen is wiring only a play has: the verification and the summary run in a second play, after the
first planned the site (the summary reads the site's port plan, agw_obs's _agw_obs_port_plan, from
the parts planned in the run), and the summary comes also when the verification failed (always).

- Render mode with the default access (nodeport): the screen says where the files are, lists the
  host ports of the NodePorts the planned roles claim, and why nothing was verified.
- agw_obs_access=url: a CONTRACT Grafana (tests/support/contract.py) answers its health check, the
  other URLs name hosts that never resolve (RFC 6761 .invalid, a failure that is not retried): the
  verification fails, every failure names its cause and fix, the hop that works still passes, the
  reports are written, and the screen still comes with the failed result.
The verification's passing run is tests/functional/test_verification_role.py; the summary's lines
for every access mode are unit tests (tests/unit/plugins/plugin_utils/test_verification_summary.py).
"""

from __future__ import annotations

import json
import re

from support.contract import ContractGrafana
from support.fixtures import REPO, render_site, run_playbook
from support.stack import dashboards


def screen(stdout):
    """The lines of the last 'Summary of the run' task."""
    part = stdout[stdout.rindex("Summary of the run"):]
    return part[:part.index("PLAY RECAP")]


def test_render_mode_screen_follows_the_planned_roles_node_ports(tmp_path):
    # only these roles are planned and rendered: the screen maps their NodePorts, no other role's
    proc = render_site(tmp_path / "render", {"grafana_node_port": 31080,
                                             "grafana_admin_password_file": str(tmp_path / "pw"),
                                             "verification_report_dir": str(tmp_path / "report")},
                       args=["--tags", "grafana,gateway_observability,traffic"])
    text = screen(proc.stdout)
    assert "Rendered into %s (nothing applied): index.yaml" % (tmp_path / "render") in text
    assert re.search(r"grafana +http://localhost:31080 \(NodePort 31080\)", text), text
    # the gateway listener on the host port of traffic_base_url (http://localhost:8080)
    assert re.search(r"gateway +http://localhost:8080 \(NodePort 30088\)", text), text
    assert re.search(r"gateway_metrics +http://localhost:30091 \(NodePort 30091\)", text), text
    assert "30080" not in text and "prometheus" not in text and "tempo" not in text, text
    assert "password in %s (not there" % (tmp_path / "pw") in text
    assert "Verification skipped: render mode" in text and "agw_obs_access=url" in text
    assert not (tmp_path / "report").exists()


def test_a_failed_verification_still_ends_with_the_screen(tmp_path):
    grafana = ContractGrafana("contract-password", [], dashboards())
    try:
        urls = {name: "http://%s.invalid" % name.replace("_", "-")
                for name in ("gateway", "gateway_metrics", "mock_backend", "prometheus", "tempo")}
        urls["grafana"] = grafana.url
        proc = render_site(tmp_path / "render", {
            "agw_obs_access": "url", "agw_obs_service_urls": urls, "traffic_enabled": False,
            "verification_grafana_password": "contract-password", "verification_grafana_datasources": [],
            "verification_grafana_panel": {},
            "verification_report_dir": str(tmp_path / "report"), "verification_deadline": 2,
            "verification_timeout": 1}, check=False, args=["--tags", "verification"])
    finally:
        grafana.stop()
    assert proc.returncode != 0
    assert "Verification failed" in proc.stdout
    text = screen(proc.stdout)
    assert "Verification FAILED:" in text and str(tmp_path / "report" / "verification.json") in text, text
    assert re.search(r"prometheus +http://prometheus\.invalid", text), text
    assert "password given in verification_grafana_password" in text
    # the report: every failure with its cause, the hop that works still passes
    checks = {c["id"]: c for c in json.loads((tmp_path / "report" / "verification.json").read_text())["checks"]}
    assert checks["gateway.request.gpt-4.0"]["cause"] == "dns"
    assert checks["prometheus.ready"]["cause"] == "dns"
    assert checks["grafana.health"]["status"] == "passed", "the hops that work still pass"
    assert "cause: dns" in proc.stdout and "fix: " in proc.stdout
    assert 'type="dns"' in (tmp_path / "report" / "verification.junit.xml").read_text()


def test_changed_node_ports_are_where_the_verification_and_the_screen_go(tmp_path):
    """Every NodePort moved: the verification's checks go to the host ports the kind port plan maps to the new
    NodePorts, and the screen lists the same URLs (one computation: site_services.resolve). The node address
    never resolves (RFC 6761 .invalid), so every check fails at once, naming where it went."""
    moved = {"prometheus_node_port": 31990, "grafana_node_port": 31080, "tempo_query_node_port": 31200,
             "gateway_observability_metrics_node_port": 31091, "gateway_observability_listener_node_port": 31088,
             "traffic_base_url": "http://localhost:8081"}
    proc = run_playbook(REPO / "tests" / "functional" / "playbooks" / "verification_screen.yml", dict(
        moved, agw_obs_node_address="nodes.invalid", verification_grafana_password="unused-password",
        verification_models=["gpt-4"], verification_priced_models=["gpt-4"], verification_fail_on_error=False,
        verification_report_dir=str(tmp_path / "report"), verification_deadline=1, verification_timeout=1))
    checks = {c["id"]: c for c in json.loads((tmp_path / "report" / "verification.json").read_text())["checks"]}
    tried = {check_id: checks[check_id]["tried"] for check_id in (
        "gateway.metrics_before", "gateway.request.gpt-4.0", "prometheus.ready", "tempo.ready", "grafana.health")}
    for check_id, port in (("gateway.metrics_before", 31091), ("gateway.request.gpt-4.0", 8081),
                           ("prometheus.ready", 31990), ("tempo.ready", 31200), ("grafana.health", 31080)):
        assert "http://nodes.invalid:%d/" % port in tried[check_id], tried
        assert checks[check_id]["cause"] == "dns", checks[check_id]
    # a hop the site does not run is a skipped check with its reason, not a failure
    assert checks["loki.skipped"]["status"] == "skipped"
    assert "Loki is off (verification_loki_enabled=false)" in checks["loki.skipped"]["saw"]
    text = screen(proc.stdout)
    for name, port, node_port in (("grafana", 31080, 31080), ("prometheus", 31990, 31990), ("tempo", 31200, 31200),
                                  ("gateway", 8081, 31088), ("gateway_metrics", 31091, 31091)):
        assert re.search(r"%s +http://nodes\.invalid:%d \(NodePort %d\)" % (name, port, node_port), text), text
    assert re.search(r"mock_backend +API server proxy /api/v1/namespaces/agentgateway-system/services/mock-openai:8080/",
                     text), text
    assert re.search(r"loki +not verified: Loki is off", text), text
    assert not re.search(r":(30090|30080|30200|30091)\b", text + json.dumps(tried)), "a default port is left"
    assert "Verification FAILED:" in text
