# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana pieces of the grafana role: dashboard ConfigMaps for the chart's sidecar, grafana.com imports.

Dashboards are provisioned offline: each JSON file becomes a ConfigMap labelled for the chart's
dashboard sidecar (``sidecar.dashboards.label``), with the folder in an annotation
(``sidecar.dashboards.folderAnnotation``). grafana.com downloads use the chart's ``dashboards``
value, which makes the chart add its curl init container; they are opt-in only.

The collection's dashboards select the gateway's series with ``job="$job"``: ``job`` is a hidden
constant variable, and the ConfigMaps carry the job name they are given (the prometheus role's
``prometheus_gateway_job_name`` by default), so the dashboards follow the scrape job the rules follow.
"""

from __future__ import annotations

import json
import posixpath
import re

from ansible_collections.agentgateway.observability.plugins.plugin_utils.prometheus_config import is_job_name

# Kubernetes limits a ConfigMap to 1 MiB in total.
CONFIGMAP_MAX_BYTES = 1024 * 1024
# The dashboards' hidden constant variable holding the job label of the gateway pods' series.
JOB_VARIABLE = "job"


class GrafanaConfigError(ValueError):
    """Bad input for the Grafana configuration; the message names the setting."""


def _configmap_name(path):
    stem = posixpath.basename(path)
    if stem.endswith(".json"):
        stem = stem[: -len(".json")]
    stem = re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")
    if not stem:
        raise GrafanaConfigError("dashboard file %r has no usable name" % (path,))
    return ("grafana-dashboard-" + stem)[:253].rstrip("-")


def check_dashboard(path, text):
    """Parse one dashboard; it must be a dashboard (uid, title, panels) and never download anything."""
    try:
        board = json.loads(text)
    except ValueError as exc:
        raise GrafanaConfigError("dashboard file %s is not valid JSON: %s" % (path, exc))
    if not isinstance(board, dict):
        raise GrafanaConfigError("dashboard file %s must hold a JSON object" % path)
    for key in ("uid", "title"):
        if not isinstance(board.get(key), str) or not board[key]:
            raise GrafanaConfigError("dashboard file %s needs a non-empty %r" % (path, key))
    if len(board["uid"]) > 40:
        raise GrafanaConfigError("dashboard file %s: uid %r is longer than Grafana's 40 characters" % (path, board["uid"]))
    if "gnetId" in board:
        raise GrafanaConfigError(
            "dashboard file %s carries gnetId: bundle the JSON itself, or list it in grafana_gnet_dashboards" % path
        )
    return board


def job_constant(board):
    """The dashboard's constant variable ``job`` (Grafana's templating list), or None."""
    templating = board.get("templating")
    variables = templating.get("list") if isinstance(templating, dict) else None
    for variable in variables if isinstance(variables, list) else []:
        if isinstance(variable, dict) and variable.get("name") == JOB_VARIABLE and variable.get("type") == "constant":
            return variable
    return None


def set_job(board, job):
    """Give the dashboard's constant ``job`` the value ``job`` (query, current value, its one option).

    Returns True when that changed the dashboard; a dashboard without the constant is left alone.
    """
    variable = job_constant(board)
    if variable is None:
        return False
    wanted = {
        "query": job,
        "current": {"selected": False, "text": job, "value": job},
        "options": [{"selected": True, "text": job, "value": job}],
    }
    if all(variable.get(key) == value for key, value in wanted.items()):
        return False
    variable.update(wanted)
    return True


def dashboard_configmaps(files, namespace, label, label_value, folder_annotation, folder, job=None):
    """ConfigMaps for the sidecar, one per dashboard file.

    ``files`` is a list of ``{"path": ..., "content": ...}``. Names are derived from the file names;
    two files with the same name, or two dashboards with the same uid, are an error. With ``job``,
    each dashboard that has the constant variable ``job`` gets that value (the file's text is kept
    when it holds it already).
    """
    if job is not None and not is_job_name(job):
        raise GrafanaConfigError("the gateway's scrape job %r is not a valid job name: use letters, digits, _ or - "
                                 "(it is prometheus_gateway_job_name, agentgateway by default)" % (job,))
    out, names, uids = [], {}, {}
    for item in files or []:
        path, text = item["path"], item["content"]
        board = check_dashboard(path, text)
        if job is not None and set_job(board, job):
            text = json.dumps(board, indent=2, ensure_ascii=False)
        name = _configmap_name(path)
        if name in names:
            raise GrafanaConfigError("dashboard files %s and %s map to the same ConfigMap %s: rename or drop one in "
                                     "grafana_extra_dashboard_files" % (names[name], path, name))
        if board["uid"] in uids:
            raise GrafanaConfigError("dashboard files %s and %s share uid %r: give the one in grafana_extra_dashboard_files "
                                     "another uid" % (uids[board["uid"]], path, board["uid"]))
        names[name], uids[board["uid"]] = path, path
        if len(text.encode("utf-8")) > CONFIGMAP_MAX_BYTES - 4096:
            raise GrafanaConfigError("dashboard file %s is too large for a ConfigMap (1 MiB)" % path)
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {
                        label: str(label_value),
                        "app.kubernetes.io/part-of": "agentgateway-observability",
                        "app.kubernetes.io/managed-by": "agentgateway.observability",
                    },
                    "annotations": {folder_annotation: folder},
                },
                "data": {posixpath.basename(path): text},
            }
        )
    return out


def gnet_values(dashboards, provider="grafana-com", folder="grafana.com"):
    """Chart values for optional grafana.com downloads; {} when none are asked for."""
    if not dashboards:
        return {}
    entries = {}
    for item in dashboards:
        if not isinstance(item, dict) or not item.get("name") or not item.get("gnet_id"):
            raise GrafanaConfigError(
                "each grafana_gnet_dashboards entry needs name and gnet_id (and optionally revision, datasource): %r" % (item,)
            )
        name = str(item["name"])
        if not re.match(r"^[a-z0-9][a-z0-9-]*$", name):
            raise GrafanaConfigError("grafana_gnet_dashboards name %r: use lower-case letters, digits and -" % name)
        try:
            gnet_id, revision = int(item["gnet_id"]), int(item.get("revision", 1))
        except (TypeError, ValueError):
            raise GrafanaConfigError("grafana_gnet_dashboards %s: gnet_id and revision must be integers" % name)
        entries[name] = {"gnetId": gnet_id, "revision": revision, "datasource": str(item.get("datasource", "Prometheus"))}
    return {
        "dashboardProviders": {
            "dashboardproviders.yaml": {
                "apiVersion": 1,
                "providers": [
                    {
                        "name": provider,
                        "orgId": 1,
                        "folder": folder,
                        "type": "file",
                        "disableDeletion": False,
                        "editable": True,
                        # the chart writes downloads to /var/lib/grafana/dashboards/<provider>
                        "options": {"path": "/var/lib/grafana/dashboards/%s" % provider},
                    }
                ],
            }
        },
        "dashboards": {provider: entries},
    }
