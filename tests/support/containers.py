"""Every container the rendered site would run, with the resources the rendered values give it.

The charts cannot be downloaded here, so which containers a chart runs for given values is
modelled from the chart templates at the pinned versions (read at the source, nothing copied):

- prometheus 29.27.0 (prometheus-community/helm-charts @ cf408a290aec): templates/deploy.yaml runs
  the ``configmapReload.prometheus`` container (``enabled`` defaults to true; resources
  ``configmapReload.prometheus.resources``) and the server (``server.resources``), plus
  ``server.extraInitContainers`` and ``server.sidecarContainers``; the kube-state-metrics 8.4.0
  sub-chart (``kube-state-metrics.enabled``, default true) runs one container
  (``kube-state-metrics.resources``) and kube-rbac-proxy when ``kubeRBACProxy.enabled``.
- grafana 12.11.1 (grafana-community/helm-charts @ 3386a1156177): templates/_pod.tpl runs grafana
  (``resources``); each enabled sidecar (dashboards, datasources, alerts, notifiers, plugins) as
  a container, or as an init container when its ``init*`` flag is set, all with
  ``sidecar.resources``; ``init-chown-data`` when ``persistence.enabled`` and
  ``initChownData.enabled`` (default true) with ``initChownData.resources``;
  ``download-dashboards`` when ``dashboards`` is set, with ``downloadDashboards.resources``.
- tempo 2.2.4 (same commit): templates/statefulset.yaml runs tempo (``tempo.resources``) and
  tempo-query when ``tempoQuery.enabled`` (default false).
- loki 18.11.0 (same commit), single binary: templates/_pod.tpl runs loki (``singleBinary.resources``,
  else ``defaults.resources``, else ``loki.resources``) and the rules sidecar when
  ``sidecar.rules.enabled`` (default true); templates/memcached/_memcached-statefulset.tpl runs,
  per enabled cache (``chunksCache``/``resultsCache``, default on), memcached with the cache's
  ``resources`` or, when empty, requests ``allocatedCPU`` (default 500m) and round(1.2 x
  ``allocatedMemory``) Mi with that memory as limit, plus the exporter when
  ``memcachedExporter.enabled`` (default true) with ``memcachedExporter.resources``.
- agentgateway v1.4.1 (agentgateway/agentgateway controller/install/helm/agentgateway): one
  controller container, ``resources`` (chart default: requests 100m / 128Mi, no limits);
  agentgateway-crds runs nothing.
- The proxy pods the agentgateway controller creates for the Gateway: the ``agentgateway``
  container with ``AgentgatewayParameters.spec.resources`` and ``spec.deployment.spec.replicas``.
- Deployments, StatefulSets and DaemonSets rendered as manifests, as written.

Anything a chart would run that is not modelled (an enabled alertmanager, Loki's gateway or
canary, ...) raises NotModelled, so a test cannot pass by leaving a container out.
"""

from __future__ import annotations

import re

from support.fixtures import load_rendered, rendered_manifests


class NotModelled(AssertionError):
    pass


def _dig(values, path, default=None):
    node = values
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _merge(base, override):
    out = dict(base)
    for key, value in (override or {}).items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def _container(owner, name, resources, replicas=1, init=False):
    return {"owner": owner, "name": name, "resources": resources or {}, "replicas": int(replicas), "init": init}


def _extra(owner, specs, init=False):
    return [_container(owner, c.get("name", "?"), c.get("resources"), init=init) for c in specs or []]


def _prometheus(owner, values):
    out = []
    replicas = _dig(values, "server.replicaCount", 1)
    if _dig(values, "configmapReload.prometheus.enabled", True):
        out.append(_container(owner, "prometheus-server-configmap-reload",
                              _dig(values, "configmapReload.prometheus.resources"), replicas))
    out.append(_container(owner, "prometheus-server", _dig(values, "server.resources"), replicas))
    out += _extra(owner, _dig(values, "server.extraInitContainers"), init=True)
    for name, spec in (_dig(values, "server.sidecarContainers") or {}).items():
        out.append(_container(owner, name, (spec or {}).get("resources"), replicas))
    if _dig(values, "kube-state-metrics.enabled", True):
        out.append(_container(owner, "kube-state-metrics", _dig(values, "kube-state-metrics.resources"),
                              _dig(values, "kube-state-metrics.replicas", 1)))
        if _dig(values, "kube-state-metrics.kubeRBACProxy.enabled", False):
            out.append(_container(owner, "kube-rbac-proxy", _dig(values, "kube-state-metrics.kubeRBACProxy.resources")))
    for sub in ("alertmanager", "prometheus-node-exporter", "prometheus-pushgateway"):
        if _dig(values, sub + ".enabled", True):  # all three default to enabled in the chart
            raise NotModelled("%s: sub-chart %s is enabled" % (owner, sub))
    return out


def _grafana(owner, values):
    replicas = _dig(values, "replicas", 1)
    out = [_container(owner, "grafana", _dig(values, "resources"), replicas)]
    sidecar = _dig(values, "sidecar.resources")
    for kind, init_flag in (("dashboards", "initDashboards"), ("datasources", "initDatasources"),
                            ("alerts", "initAlerts"), ("notifiers", "initNotifiers"), ("plugins", None)):
        if _dig(values, "sidecar.%s.enabled" % kind, False):
            init = bool(init_flag and _dig(values, "sidecar.%s.%s" % (kind, init_flag), False))
            out.append(_container(owner, "grafana-sc-" + kind, sidecar, replicas, init=init))
    if _dig(values, "persistence.enabled", False) and _dig(values, "initChownData.enabled", True):
        out.append(_container(owner, "init-chown-data", _dig(values, "initChownData.resources"), replicas, init=True))
    if _dig(values, "dashboards"):
        out.append(_container(owner, "download-dashboards", _dig(values, "downloadDashboards.resources"), replicas,
                              init=True))
    out += _extra(owner, _dig(values, "extraInitContainers"), init=True) + _extra(owner, _dig(values, "extraContainers"))
    if _dig(values, "imageRenderer.enabled", False):
        raise NotModelled("%s: imageRenderer is enabled" % owner)
    return out


def _tempo(owner, values):
    replicas = _dig(values, "replicas", 1)
    out = [_container(owner, "tempo", _dig(values, "tempo.resources"), replicas)]
    if _dig(values, "tempoQuery.enabled", False):
        out.append(_container(owner, "tempo-query", _dig(values, "tempoQuery.resources"), replicas))
    return out + _extra(owner, _dig(values, "initContainers"), init=True) + _extra(owner, _dig(values, "extraContainers"))


def _memcached_resources(cache):
    if cache.get("resources"):
        return cache["resources"]
    memory = "%dMi" % ((int(cache.get("allocatedMemory", 0)) * 12 + 5) // 10)
    return {"requests": {"cpu": str(cache.get("allocatedCPU", "500m")), "memory": memory}, "limits": {"memory": memory}}


def _loki(owner, values):
    if _dig(values, "deploymentMode") != "Monolithic":
        raise NotModelled("%s: only the single binary (deploymentMode Monolithic) is modelled" % owner)
    for component in ("read", "write", "backend"):
        if _dig(values, component + ".replicas", 0):
            raise NotModelled("%s: %s replicas" % (owner, component))
    for flag, default in (("gateway.enabled", True), ("lokiCanary.enabled", True), ("minio.enabled", False),
                          ("chunksCache.l2.enabled", False)):
        if _dig(values, flag, default):
            raise NotModelled("%s: %s" % (owner, flag))
    resources = (_dig(values, "singleBinary.resources") or _dig(values, "defaults.resources")
                 or _dig(values, "loki.resources"))
    replicas = _dig(values, "singleBinary.replicas", 0)
    out = [_container(owner, "loki", resources, replicas)]
    if _dig(values, "sidecar.rules.enabled", True) and _dig(values, "singleBinary.sidecar", True):
        out.append(_container(owner, "loki-sc-rules", _dig(values, "sidecar.resources"), replicas))
    if _dig(values, "memcached.enabled", True):
        for cache in ("chunksCache", "resultsCache"):
            spec = _dig(values, cache, {})
            if not spec.get("enabled", True):
                continue
            defaults = {"chunksCache": {"allocatedMemory": 8192}, "resultsCache": {"allocatedMemory": 1024}}[cache]
            spec = _merge(defaults, spec)
            out.append(_container(owner, cache + "-memcached", _memcached_resources(spec), spec.get("replicas", 1)))
            if _dig(values, "memcachedExporter.enabled", True):
                out.append(_container(owner, cache + "-exporter", _dig(values, "memcachedExporter.resources"),
                                      spec.get("replicas", 1)))
    return out


def _agentgateway(owner, values):
    chart_default = {"requests": {"cpu": "100m", "memory": "128Mi"}}
    return [_container(owner, "agentgateway-controller", _merge(chart_default, _dig(values, "resources") or {}),
                       _dig(values, "replicaCount", 1))]


CHARTS = {
    "prometheus": _prometheus,
    "grafana": _grafana,
    "tempo": _tempo,
    "loki": _loki,
    "agentgateway": _agentgateway,
    "agentgateway-crds": lambda owner, values: [],
}

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


def _manifest_containers(path, obj):
    kind = obj["kind"]
    owner = "%s %s" % (kind, obj["metadata"]["name"])
    if kind in WORKLOADS:
        if kind == "DaemonSet":
            raise NotModelled("%s: a DaemonSet runs once per node" % path)
        pod = obj["spec"]["template"]["spec"]
        replicas = obj["spec"].get("replicas", 1)
        return ([_container(owner, c["name"], c.get("resources"), replicas) for c in pod["containers"]]
                + [_container(owner, c["name"], c.get("resources"), replicas, init=True)
                   for c in pod.get("initContainers") or []])
    if kind == "AgentgatewayParameters":
        spec = obj["spec"]
        replicas = ((spec.get("deployment") or {}).get("spec") or {}).get("replicas", 1)
        return [_container("Gateway proxy (%s)" % owner, "agentgateway", spec.get("resources"), replicas)]
    if kind in ("Pod", "Job", "CronJob", "ReplicaSet", "EnterpriseAgentgatewayParameters"):
        raise NotModelled("%s: %s" % (path, kind))
    return []


def site_containers(render_dir):
    """Every container the rendered site would run: [{owner, name, resources, replicas, init}]."""
    index = load_rendered(render_dir, "index.yaml")
    out = []
    for entry in index["entries"]:
        if entry["type"] != "helm_release":
            continue
        release = load_rendered(render_dir, entry["path"])
        model = CHARTS.get(release["chart"]["name"])
        if model is None:
            raise NotModelled("chart %s" % release["chart"]["name"])
        out += model("release %s" % release["release"], release["values"])
    for path, obj in rendered_manifests(render_dir).items():
        out += _manifest_containers(path, obj)
    return out


_CPU = re.compile(r"^([0-9.]+)(m?)$")
_MEMORY = re.compile(r"^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS = {None: 1, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "k": 10 ** 3, "M": 10 ** 6,
            "G": 10 ** 9, "T": 10 ** 12}


def cpu_cores(quantity):
    match = _CPU.match(str(quantity))
    assert match, "not a CPU quantity: %r" % (quantity,)
    return float(match.group(1)) / (1000 if match.group(2) else 1)


def memory_bytes(quantity):
    match = _MEMORY.match(str(quantity))
    assert match, "not a memory quantity: %r" % (quantity,)
    return float(match.group(1)) * _FACTORS[match.group(2)]


def missing_resources(container):
    """What a container lacks of requests.cpu, requests.memory and limits.memory."""
    res = container["resources"]
    need = [("requests", "cpu"), ("requests", "memory"), ("limits", "memory")]
    return ["%s.%s" % pair for pair in need if not (res.get(pair[0]) or {}).get(pair[1])]


def requested(containers):
    """(CPU cores, memory bytes) requested by the running containers, replicas counted.

    Init containers run before the others and release their requests; the pod's request is the
    larger of the two, which for these small init containers is the main containers' sum.
    """
    cpu = sum(cpu_cores(c["resources"]["requests"]["cpu"]) * c["replicas"] for c in containers if not c["init"])
    memory = sum(memory_bytes(c["resources"]["requests"]["memory"]) * c["replicas"] for c in containers if not c["init"])
    return cpu, memory
