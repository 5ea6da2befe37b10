"""Unit tests of the screen a site run ends with (verification_summary; pure logic).

The screen lists what ``site_services.resolve`` worked out, the same answer the verification's checks
use (tests/unit/plugins/plugin_utils/test_site_services.py). The site-level behaviour (the screen
after a real verification, in render mode, with changed NodePorts) is asserted in
tests/functional/test_site_summary.py and in molecule's default scenario.
"""

from __future__ import annotations

from ansible_collections.agentgateway.observability.plugins.plugin_utils.site_services import resolve
from ansible_collections.agentgateway.observability.plugins.plugin_utils.verification import summary

SERVICES = {
    "gateway": {"namespace": "agentgateway-system", "name": "agentgateway-proxy", "port": 8080,
                "node_port_setting": "gateway_observability_listener_node_port"},
    "mock_backend": {"namespace": "agentgateway-system", "name": "mock-openai", "port": 8080},
    "grafana": {"namespace": "monitoring", "name": "grafana", "port": 80, "node_port_setting": "grafana_node_port"},
    "tempo": {"absent": "agw_obs_stack_mode=existing runs no Tempo of its own"},
}
MAPPINGS = [{"setting": "grafana_node_port", "what": "Grafana", "node_port": 31000, "host_port": 31000},
            {"setting": "gateway_observability_listener_node_port", "what": "gateway listener", "node_port": 30088,
             "host_port": 8080}]
REPORT = {"passed": False, "summary": {"total": 3, "passed": 2, "failed": 1, "skipped": 0},
          "files": {"json": "/r/verification.json", "md": "/r/verification.md"}}


def resolved(access="nodeport", **kwargs):
    return resolve(SERVICES, sorted(SERVICES), access=access, port_mappings=MAPPINGS, **kwargs)


def test_nodeport_urls_come_from_the_port_plan_and_the_rest_goes_through_the_api_server_proxy():
    lines = summary(resolved(node_address="127.0.0.1"), access="nodeport", grafana_password_file="/home/u/pw",
                    report=REPORT)
    assert lines[0] == "Applied."
    assert "  gateway          http://127.0.0.1:8080 (NodePort 30088)" in lines
    # the plan's port (a changed grafana_node_port)
    assert "  grafana          http://127.0.0.1:31000 (NodePort 31000)" in lines
    assert ("  mock_backend     API server proxy /api/v1/namespaces/agentgateway-system/services/mock-openai:8080/proxy/"
            in lines)
    assert "  tempo            not verified: agw_obs_stack_mode=existing runs no Tempo of its own" in lines
    assert "Grafana admin: user admin, password in /home/u/pw." in lines
    assert lines[-1] == ("Verification FAILED: 3 checks, 2 passed, 1 failed, 0 skipped; "
                         "reports /r/verification.json, /r/verification.md")


def test_a_host_port_given_without_a_node_port_is_listed_without_one():
    lines = summary(resolved(overrides={"grafana": {"host_port": 3000}}))
    assert "  grafana          http://localhost:3000" in lines


def test_render_mode_says_where_the_files_are_and_why_nothing_was_verified():
    lines = summary(resolved("url", service_urls={"gateway": "http://127.0.0.1:4000"}), access="url",
                    render_dir="/out", grafana_password_file="/pw", grafana_password_file_exists=False,
                    skip_reason="render mode (agw_obs_render_dir=/out)")
    assert lines[0].startswith("Rendered into /out (nothing applied): index.yaml lists every file")
    assert "  gateway          http://127.0.0.1:4000" in lines
    assert "  grafana          not verified: no URL given (agw_obs_service_urls.grafana is empty)" in lines
    assert any("/pw (not there" in line and "grafana_render_admin_password=true" in line for line in lines)
    assert lines[-1] == "Verification skipped: render mode (agw_obs_render_dir=/out)"


def test_proxy_access_lists_every_service_by_its_proxy_path_and_check_mode_says_so():
    lines = summary(resolved("proxy", overrides={"grafana": {"scheme": "https"}}), access="proxy",
                    grafana_password_given=True, check_mode=True,
                    report={"passed": True, "summary": {"total": 1, "passed": 1, "failed": 0, "skipped": 0}})
    assert lines[0] == "Applied (check mode: nothing changed)."
    assert sum("API server proxy" in line for line in lines) == 3
    assert "  grafana          API server proxy /api/v1/namespaces/monitoring/services/https:grafana:80/proxy/" in lines
    assert "Grafana admin: user admin, password given in verification_grafana_password." in lines
    assert lines[-1].endswith("(no report files written)") and lines[-1].startswith("Verification PASSED")


def test_an_unfinished_verification_is_named():
    assert summary(resolved())[-1] == "Verification did not finish: its error is above."
