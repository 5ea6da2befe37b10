# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role grafana's settings that meta/argument_specs.yml cannot express.

``validate_export`` checks what role existing_stack takes from this role (the dashboard files); the job
name its dashboards get is the prometheus role's, checked by that role's export.
The dashboards themselves (valid JSON, uid, one ConfigMap each) are checked by their builder,
grafana_config.py, when the role plans them, before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ansible_collections.agentgateway.observability.plugins.plugin_utils.prometheus_config import is_job_name
from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import Check, is_dns_subdomain, is_list


def validate_export(settings, check=None):
    c = check or Check(settings)
    files = c["grafana_extra_dashboard_files"]
    if c.require(is_list(files), "grafana_extra_dashboard_files must be a list of dashboard JSON files."):
        for path in files:
            c.require(isinstance(path, str) and path.endswith(".json") and os.path.isfile(os.path.expanduser(path)),
                      "grafana_extra_dashboard_files: %s is not a .json file on the controller." % (path,))
    return c.problems


def validate(settings):
    c = Check(settings)
    c.chart("grafana_chart_repo", "grafana_chart_name", "grafana_chart_version", "grafana_release_name",
            "grafana_namespace", "grafana_extra_values")
    if c["grafana_service_type"] == "NodePort":
        c.node_port("grafana_node_port", 30080)
    # admin credentials: always from a Secret
    c.not_empty("grafana_admin_user", "it is the Grafana admin's login")
    existing = c["grafana_admin_existing_secret"]
    c.require(existing == "" or is_dns_subdomain(existing),
              "grafana_admin_existing_secret=%s is not a valid Secret name: name the Secret you manage (lower-case "
              "letters, digits, '-' and '.'), or leave it empty to let the role create one." % existing)
    c.object_name("grafana_admin_secret_name", "Secret")
    c.config_key("grafana_admin_user_key")
    c.config_key("grafana_admin_password_key")
    if existing == "":
        c.not_empty("grafana_admin_password_file", "with no grafana_admin_existing_secret it names the file on the "
                                                   "controller that keeps the generated password")
        c.integer("grafana_admin_password_length", 16)
    extra = c["grafana_extra_values"]
    if isinstance(extra, Mapping):
        env = extra.get("env") if isinstance(extra.get("env"), Mapping) else {}
        ini = extra.get("grafana.ini") if isinstance(extra.get("grafana.ini"), Mapping) else {}
        security = ini.get("security") if isinstance(ini.get("security"), Mapping) else {}
        c.require(
            "adminPassword" not in extra and "GF_SECURITY_ADMIN_PASSWORD" not in env and "admin_password" not in security,
            "grafana_extra_values sets a fixed admin password (adminPassword, env GF_SECURITY_ADMIN_PASSWORD or "
            "grafana.ini security.admin_password): it would sit in clear text in the Helm values. Name a Secret you "
            "manage in grafana_admin_existing_secret, or let the role generate one.")
    # datasources
    c.http_url("grafana_prometheus_url", "give Prometheus' address as Grafana reaches it, e.g. "
                                         "http://prometheus-server.monitoring.svc.cluster.local")
    if c.http_url("grafana_tempo_url", "give Tempo's query API as Grafana reaches it, e.g. "
                                       "http://tempo.monitoring.svc.cluster.local:3200"):
        tempo = c["grafana_tempo_url"].split("?")[0]
        c.require(":3100/" not in tempo + "/",
                  "grafana_tempo_url=%s points at port 3100: Tempo's query API is on port 3200 (3100 was the chart's "
                  "port before version 1.21.1 and is Loki's port)." % c["grafana_tempo_url"])
    if c.flag("grafana_loki_enabled"):
        c.http_url("grafana_loki_url", "give Loki's address as Grafana reaches it, e.g. "
                                       "http://loki.monitoring.svc.cluster.local:3100")
    if c.flag("grafana_persistence_enabled"):
        c.quantity("grafana_persistence_size", "10Gi")
    # the dashboards' job constant: the rule of the prometheus role's scrape job names (prometheus_config.py)
    job = c["grafana_gateway_job_name"]
    c.require(is_job_name(job),
              "grafana_gateway_job_name=%s is not a valid job name: use letters, digits, _ or - (it is the job label "
              "the dashboards select, prometheus_gateway_job_name by default)." % (job,))
    validate_export(settings, c)
    for name, example in (("grafana_image_repository", "grafana/grafana"),
                          ("grafana_sidecar_image_repository", "kiwigrid/k8s-sidecar"),
                          ("grafana_download_dashboards_image_repository", "curlimages/curl"),
                          ("grafana_init_chown_data_image_repository", "library/busybox")):
        c.image_path(name, example, "grafana_image_registry",
                     "tags with grafana_image_tag / grafana_sidecar_image_tag")
    c.resources("grafana_resources", "{requests: {cpu: 250m, memory: 512Mi}, limits: {memory: 1Gi}}")
    for name in ("grafana_sidecar_resources", "grafana_init_chown_data_resources",
                 "grafana_download_dashboards_resources"):
        c.resources(name, "{requests: {cpu: 10m, memory: 64Mi}, limits: {memory: 128Mi}}")
    return c.problems
