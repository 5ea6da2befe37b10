"""What agentgateway v1.4.1 exports on its metrics port (:15020/metrics), and a registry that records like it.

``describe()`` lists every family the proxy can export, in the order it writes them, with its
OpenMetrics type, HELP text, unit, bucket boundaries and label names. Read from the v1.4.1 source:

- crates/agentgateway/src/telemetry/metrics.rs: the proxy's families, label structs and buckets;
- crates/agentgateway/src/telemetry/log.rs: which families one request records, with which labels
  (``RequestLog`` drop, ``add_llm_metrics``), proxy/gateway.rs (downstream and TLS), llm/policy
  (guardrail checks), proxy/mod.rs (``ProxyResponseReason``), types/agent.rs (``backend_protocol``,
  ``Backend::name``), llm/cost/mod.rs (the cost lookup and the cache conventions);
- crates/xds/src/metrics.rs (``xds_*``, ``config_synchronized``), crates/core/src/tokio_metrics.rs
  (``tokio_*``), and pprof-alloc 0.5.0 src/stats/cgroups.rs (``cgroup_*``, cgroup v2 hosts only) and
  smaps.rs (``process_*``), registered in crates/agentgateway/src/app.rs;
- the encoder, prometheus-client 0.25: OpenMetrics text; a family registered with a help text gets a
  "." appended to it (collectors' help is written as is); a family without series is not written;
  a histogram series is written ``_sum``, ``_count``, then ``_bucket`` with ``le`` first; counters
  end in ``_total``, so the cgroup counters, whose names already do, end in ``_total_total``.

A measured exposition of a real v1.4.1 proxy under chat traffic (kept beside the checkout, not in it)
agrees with this description: tests/functional/test_contract_gateway.py compares them when it is there.

``ProxyMetrics`` records observations the way the proxy does (one call per event: a request through
an AI route, an MCP call, a guardrail check, a retry, an upstream call, a downstream connection) with
the real label sets, and renders the exposition as the proxy's encoder writes it; ``answer(accept)``
negotiates the content type like v1.4.1 (tests/support/exposition.py).
"""

from __future__ import annotations

import collections
import math
import os
import re
import threading

from support.exposition import answer_type_v141

PREFIX = "agentgateway"
TAG = "v1.4.1"

# ---- label sets (telemetry/metrics.rs@v1.4.1) --------------------------------------------------
# RouteIdentifier, flattened into every per-request label set. Under the Kubernetes controller:
# bind "<port>/<namespace>/<Gateway>", gateway "<namespace>/<Gateway>", listener the Gateway listener's
# name, route "<namespace>/<HTTPRoute>", route_rule the rule's name ("unknown" when it has none).
ROUTE = ("bind", "gateway", "listener", "route", "route_rule")
# CustomField: the config's metric fields (the collection's gateway_observability_metric_labels), in the
# order of the rendered config (Ansible writes the keys sorted). Values: the CEL result; "unknown" when
# it is no string. The collection's expressions fall back to "none" / "anonymous".
CUSTOM_FALLBACKS = collections.OrderedDict([("model", "none"), ("provider", "none"), ("user", "anonymous")])
HTTP = ("backend", "protocol", "method", "status", "reason")  # + ROUTE + custom: HTTPLabels
GENAI = ("gen_ai_operation_name", "gen_ai_system", "gen_ai_request_model", "gen_ai_response_model")
MCP_CALL = ("method", "resource_type", "server", "resource")  # + ROUTE + custom
TCP = ("bind", "gateway", "listener", "protocol")

# ---- buckets (telemetry/metrics.rs@v1.4.1; +Inf is implied) ------------------------------------
TOKEN_USAGE_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
GEN_AI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
OUTPUT_TOKEN_BUCKETS = (0.001, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
FIRST_TOKEN_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
HTTP_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 80.0)
PROCESSING_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
CONNECT_BUCKETS = (0.0005, 0.0015, 0.0043, 0.0126, 0.0368, 0.108, 0.316, 0.924, 2.71, 8.0)

# ---- label values --------------------------------------------------------------------------------
# ProxyResponseReason (proxy/mod.rs@v1.4.1), written with its Debug name: "Upstream" for an answer of the
# backend (any status), the others when the proxy answers itself.
REASONS = ("Upstream", "DirectResponse", "NotFound", "NoHealthyBackend", "Internal", "JwtAuth", "Oidc", "BasicAuth",
           "APIKeyAuth", "ExtAuth", "Authorization", "Timeout", "ExtProc", "RateLimit", "Guardrail", "MCP",
           "UpstreamFailure")
PROTOCOLS = ("http", "tcp", "a2a", "mcp", "llm")  # cel::BackendProtocol: llm for AI backends, mcp for MCP ones
COST_LOOKUP_STATUSES = ("Exact", "Unpriced", "Missing", "NoCatalog")  # llm/cost/mod.rs CostLookupStatus
GUARDRAIL_PHASES, GUARDRAIL_ACTIONS = ("Request", "Response"), ("Allow", "Mask", "Reject", "FailOpen")
CALL_KINDS = ("Primary", "Policy", "Mirror")
CALL_SUBTYPES = ("Http", "Llm", "Mcp", "ExtAuthz", "ExtProc", "Guardrail", "RateLimit", "Oidc")
MCP_RESOURCE_TYPES = ("tool", "prompt", "resource", "templates", "task")  # mcp/mod.rs MCPOperation Display
TRANSPORTS = ("plaintext", "tls", "hbone")  # the connect labels' transport
# llm/mod.rs@v1.4.1 cache_convention_for: these providers' "input" excludes the cache (Claude models behind
# Vertex AI and Copilot too); every other provider's input already holds the cached tokens.
INPUT_EXCLUDES_CACHE = ("anthropic", "aws.bedrock")


class Family(collections.namedtuple("Family", "name type help unit buckets labels appears")):
    """One metric family as the proxy writes it.

    ``name``: as in ``# TYPE`` (the prefix and the unit suffix included, ``_total`` not);
    ``type``: counter, gauge, histogram or info; ``help``: the HELP text as written; ``unit``: the
    ``# UNIT`` (empty: none); ``buckets``: the upper bounds of a histogram without +Inf; ``labels``: the
    label names in the order the proxy writes them (a bucket's ``le`` comes first); ``appears``: what
    makes the proxy write it (a family without series is left out): "always", "chat" (requests through
    an AI route), "stream" (streamed answers), "mcp", "guardrail", "retry", "tls" (an HTTPS or TLS
    listener), "xds" (fed by the controller), "cgroup" (a cgroup v2 host).
    """

    def sample_names(self):
        if self.type == "counter":
            return (self.name + "_total",)
        if self.type == "info":
            return (self.name + "_info",)
        if self.type == "histogram":
            return tuple(self.name + s for s in ("_sum", "_count", "_bucket"))
        return (self.name,)


def _f(name, kind, help_text, labels=(), unit="", buckets=(), appears="chat", collector=False):
    return Family(PREFIX + "_" + name + ("_" + unit if unit else ""), kind,
                  help_text if collector else help_text + ".", unit, tuple(buckets), tuple(labels), appears)


CGROUP_GAUGES = (("usage", "current memory usage"), ("working_set", "current working set"),
                 ("anon", "current anonymous usage"), ("inactive_anon", "current inactive anonymous usage"),
                 ("active_anon", "current active anonymous usage"), ("file", "current file usage"),
                 ("file_mapped", "current mapped file usage"), ("active_file", "current active file usage"),
                 ("inactive_file", "current inactive file usage"), ("shmem", "current shmem usage"),
                 ("kernel", "current kernel usage"), ("kernel_stack", "current kernel stack usage"),
                 ("pagetables", "current pagetables usage"), ("percpu", "current percpu usage"),
                 ("sock", "current socket memory usage"), ("slab", "current slab usage"),
                 ("slab_reclaimable", "current reclaimable slab usage"),
                 ("slab_unreclaimable", "current unreclaimable slab usage"))
CGROUP_COUNTERS = (("pgfault_total", "cgroup page faults"), ("pgmajfault_total", "cgroup major page faults"),
                   ("workingset_refault_anon_total", "anonymous workingset refaults"),
                   ("workingset_refault_file_total", "file workingset refaults"),
                   ("workingset_activate_anon_total", "anonymous workingset activations"),
                   ("workingset_activate_file_total", "file workingset activations"),
                   ("workingset_restore_anon_total", "anonymous workingset restores"),
                   ("workingset_restore_file_total", "file workingset restores"))
# smaps.rs: (gauge, /proc/self/smaps_rollup key, help); "size" has no rollup key and reads 0
PROCESS_GAUGES = (("size", "Size", "size memory usage"), ("rss", "Rss", "rss memory usage"),
                  ("pss", "Pss", "pss memory usage"), ("pss_dirty", "Pss_Dirty", "pss_dirty memory usage"),
                  ("shared_clean", "Shared_Clean", "shared_clean memory usage"),
                  ("shared_dirty", "Shared_Dirty", "shared_dirty memory usage"),
                  ("private_clean", "Private_Clean", "private_clean memory usage"),
                  ("private_dirty", "Private_Dirty", "private_dirty memory usage"),
                  ("referenced", "Referenced", "referenced memory usage"),
                  ("anonymous", "Anonymous", "anonymous memory usage"), ("lazy_free", "LazyFree", "lazy free memory usage"),
                  ("anon_huge_pages", "AnonHugePages", "anonymous huge pages usage"),
                  ("shmem_huge_pages", "ShmemHugePages", "shared memory huge pages usage"),
                  ("shmem_pmd_mapped", "ShmemPmdMapped", "shared memory pmd mapped usage"),
                  ("file_pmd_mapped", "FilePmdMapped", "file pmd mapped usage"),
                  ("shared_hugetlb", "Shared_Hugetlb", "shared hugetlb usage"),
                  ("private_hugetlb", "Private_Hugetlb", "private hugetlb usage"),
                  ("swap", "Swap", "process swap usage"), ("swap_pss", "SwapPss", "process proportional swap usage"),
                  ("locked", "Locked", "process locked memory usage"))
TOKIO_GAUGES = (("global_queue_depth", "number of tasks currently scheduled in the runtime\u2019s global queue"),
                ("num_alive_tasks", "number of currently alive tasks in the runtime"),
                ("num_workers", "number of worker threads used by the runtime"))


def describe(custom=tuple(CUSTOM_FALLBACKS)):
    """{family name: Family} in the order the proxy writes them; ``custom``: the config's metric field names."""
    custom = tuple(custom)
    route, http = ROUTE + custom, HTTP + ROUTE + custom
    genai = GENAI + ROUTE + custom
    families = [
        # first sub-registry (app.rs): xds::Metrics::new, then the collectors
        _f("xds_connection_terminations", "counter", "The total number of completed connections to xds server "
           "(unstable)", ("reason",), appears="xds"),
        _f("xds_message", "counter", "Total number of messages received (unstable)", ("url",), appears="xds"),
        _f("xds_message", "counter", "Total number of bytes received (unstable)", ("url",), unit="bytes",
           appears="xds"),
        _f("config_synchronized", "gauge", "Whether the last configuration load/reload was successful or not, being "
           "synchronized with the on-disk configuration", appears="always"),
    ]
    families += [_f("tokio_" + n, "gauge", h, appears="always", collector=True) for n, h in TOKIO_GAUGES]
    families += [_f("cgroup_" + n, "gauge", h, appears="cgroup", collector=True) for n, h in CGROUP_GAUGES]
    families += [_f("cgroup_" + n, "counter", h, appears="cgroup", collector=True) for n, h in CGROUP_COUNTERS]
    families += [_f("process_" + n, "gauge", h, appears="always", collector=True) for n, _k, h in PROCESS_GAUGES]
    # second sub-registry: telemetry::metrics::Metrics::new, in registration order
    families += [
        _f("build", "info", "Agentgateway build information", ("tag",), appears="always"),
        _f("gen_ai_client_token_usage", "histogram", "Number of tokens used per request",
           ("gen_ai_token_type",) + genai, buckets=TOKEN_USAGE_BUCKETS),
        _f("gen_ai_client_cost", "counter", "Cumulative USD cost of generative AI requests", genai, unit="usd"),
        _f("gen_ai_server_request_duration", "histogram", "Duration of generative AI request", genai,
           buckets=GEN_AI_DURATION_BUCKETS),
        _f("gen_ai_server_time_per_output_token", "histogram", "Time to generate each output token for a given "
           "request", genai, buckets=OUTPUT_TOKEN_BUCKETS, appears="stream"),
        _f("gen_ai_server_time_to_first_token", "histogram", "Time to generate the first token for a given request",
           genai, buckets=FIRST_TOKEN_BUCKETS, appears="stream"),
        _f("requests", "counter", "The total number of HTTP requests sent", http),
        _f("guardrail_checks", "counter", "Total number of guardrail checks", ("phase", "action"),
           appears="guardrail"),
        _f("cost_catalog_lookups", "counter", "Total number of model cost catalog lookups by resolution status",
           ("status",) + genai),
        _f("downstream_connections", "counter", "The total number of downstream connections established", TCP),
        _f("mcp_requests", "counter", "Total number of MCP tool calls", MCP_CALL + route, appears="mcp"),
        _f("response", "counter", "Total HTTP response bytes received", http, unit="bytes"),
        _f("request_duration", "histogram", "Duration of HTTP requests (seconds)", http, unit="seconds",
           buckets=HTTP_DURATION_BUCKETS),
        _f("request_processing", "histogram", "Duration from receiving an HTTP request to sending the primary "
           "outbound call (seconds)", ("backend",) + route, unit="seconds", buckets=PROCESSING_BUCKETS),
        _f("response_processing", "histogram", "Duration from receiving the primary outbound response to sending "
           "the HTTP response (seconds)", ("backend",) + route, unit="seconds", buckets=PROCESSING_BUCKETS),
        _f("downstream_received", "counter", "Total TCP bytes received per connection labels", TCP, unit="bytes"),
        _f("downstream_sent", "counter", "Total TCP bytes transmitted per connection labels", TCP, unit="bytes"),
        _f("upstream_connect_duration", "histogram", "Duration to establish upstream connection (seconds)",
           ("transport",), unit="seconds", buckets=CONNECT_BUCKETS),
        _f("upstream_call_duration", "histogram", "Duration of outbound calls made by agentgateway (seconds)",
           ("kind", "subtype"), unit="seconds", buckets=HTTP_DURATION_BUCKETS),
        _f("tls_handshake_duration", "histogram", "Duration to complete inbound TLS/HTTPS handshake (seconds)", TCP,
           unit="seconds", buckets=CONNECT_BUCKETS, appears="tls"),
        _f("retries", "counter", "The total number of request retries", http, appears="retry"),
    ]
    return collections.OrderedDict((f.name, f) for f in families)


FAMILIES = describe()


def family(short):
    """A family of the default description by its name without the prefix: ``family("requests")``."""
    return FAMILIES[PREFIX + "_" + short]


# ---- text ------------------------------------------------------------------------------------------
def format_le(bound):
    """A bucket bound as the proxy writes it: 1.0, 0.00005, 67108864.0, +Inf."""
    if math.isinf(bound):
        return "+Inf"
    if float(bound).is_integer():
        return "%d.0" % bound
    text = repr(float(bound))
    return text if "e" not in text else ("%.12f" % bound).rstrip("0")


def format_value(value):
    """A u64 as an integer, an f64 with its shortest repr (0.0, 420.0, 4.197754351)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return ("+Inf" if value > 0 else "-Inf") if math.isinf(value) else repr(value)
    return str(int(value))


def _escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels_text(pairs):
    return "{%s}" % ",".join('%s="%s"' % (k, _escape(v)) for k, v in pairs) if pairs else ""


class Histogram(object):
    """One histogram series: per-bucket counts (not cumulative), sum, count."""

    __slots__ = ("buckets", "counts", "sum", "count")

    def __init__(self, buckets):
        self.buckets, self.counts, self.sum, self.count = tuple(buckets), [0] * (len(buckets) + 1), 0.0, 0

    def observe(self, value):
        value = float(value)
        index = next((i for i, bound in enumerate(self.buckets) if value <= bound), len(self.buckets))
        self.counts[index] += 1
        self.sum += value
        self.count += 1

    def cumulative(self):
        """[(bound, cumulative count)] with +Inf last."""
        out, total = [], 0
        for bound, count in zip(self.buckets + (float("inf"),), self.counts):
            total += count
            out.append((bound, total))
        return out

    def copy(self):
        other = Histogram(self.buckets)
        other.counts, other.sum, other.count = list(self.counts), self.sum, self.count
        return other


def sample_lines(fam, labels, value, timestamp=None, extra=None):
    """The sample lines of one series (``labels``: {name: value} of ``fam.labels``), as the encoder writes them.

    ``extra``: labels appended after the family's (the target labels a scrape adds, for backfills);
    ``timestamp``: seconds appended to every sample (promtool's backfill needs them).
    """
    pairs = [(name, labels[name]) for name in fam.labels] + sorted((extra or {}).items())
    tail = "" if timestamp is None else " %d" % timestamp
    if fam.type == "histogram":
        text = _labels_text(pairs)
        lines = ["%s_sum%s %s%s" % (fam.name, text, format_value(float(value.sum)), tail),
                 "%s_count%s %d%s" % (fam.name, text, value.count, tail)]
        for bound, count in value.cumulative():
            lines.append("%s_bucket%s %d%s" % (fam.name, _labels_text([("le", format_le(bound))] + pairs), count, tail))
        return lines
    return ["%s%s %s%s" % (fam.sample_names()[0], _labels_text(pairs), format_value(value), tail)]


def header_lines(fam):
    return ["# HELP %s %s" % (fam.name, fam.help), "# TYPE %s %s" % (fam.name, fam.type)] + (
        ["# UNIT %s %s" % (fam.name, fam.unit)] if fam.unit else [])


# ---- the registry ----------------------------------------------------------------------------------
class ProxyMetrics(object):
    """Records what one agentgateway v1.4.1 proxy would record, and renders its exposition.

    ``gateway``: "<namespace>/<Gateway>"; ``port``/``listener``: the Gateway listener the requests come in
    on (bind "<port>/<gateway>"); ``prices``: the price catalog in the collection's shape
    (gateway_observability_model_prices: provider -> model -> {input, output, cacheRead, cacheWrite} in USD
    per 1M tokens, numbers or decimal strings); None: no catalog (lookups "NoCatalog"). ``custom``: metric
    field name -> the value when the request has none (None: the collection's, CUSTOM_FALLBACKS). ``process``: write
    process_* from /proc/self/smaps_rollup (this process's, like pprof-alloc; left out where unreadable);
    ``cgroup``/``xds``: nothing is written for them until ``watch_cgroup`` (or ``set_gauge``) and
    ``xds_initial_state`` (or ``xds_*``) record something: what a proxy on a cgroup v2 node, fed by the
    controller, writes.

    Every recording method takes the label values the proxy would have; label sets are checked against
    the family's, so a series with a label the proxy does not write cannot be recorded.
    """

    def __init__(self, gateway="agentgateway-system/agentgateway-proxy", port=8080, listener="http", prices=None,
                 custom=None, tag=TAG, process=True):
        self.gateway, self.port, self.listener = gateway, port, listener
        self.custom_fallbacks = collections.OrderedDict(CUSTOM_FALLBACKS if custom is None else custom)
        self.families = describe(tuple(self.custom_fallbacks))
        self.prices = prices
        self.process = process
        self.cgroup = None  # a callable returning cgroup_stats()'s dict: the cgroup_* families (see watch_cgroup)
        self.lock = threading.RLock()
        self.series = collections.OrderedDict((name, collections.OrderedDict()) for name in self.families)
        self.runtime = {"tokio_global_queue_depth": 0, "tokio_num_alive_tasks": threading.active_count,
                        "tokio_num_workers": os.cpu_count() or 1}
        self._record("info", "build", {"tag": tag}, 1)
        self._record("set", "config_synchronized", {}, 1)

    # -- building blocks -----------------------------------------------------------------------------
    def bind(self, port=None):
        return "%d/%s" % (self.port if port is None else port, self.gateway)

    def route_labels(self, route, route_rule=None, listener=None, port=None):
        """RouteIdentifier of a request on this gateway: route "<namespace>/<HTTPRoute>"; route_rule: the rule's name."""
        return {"bind": self.bind(port), "gateway": self.gateway, "listener": listener or self.listener,
                "route": route, "route_rule": route_rule or "unknown"}

    def custom_labels(self, **values):
        """The metric fields' values: those given (None: the fallback), the fallbacks for the others."""
        return {name: values.get(name) or fallback for name, fallback in self.custom_fallbacks.items()}

    def _record(self, how, short, labels, amount):
        fam = self.families[PREFIX + "_" + short]
        if set(labels) != set(fam.labels):
            raise ValueError("%s has labels %s, not %s" % (fam.name, list(fam.labels), sorted(labels)))
        key = tuple(str(labels[name]) for name in fam.labels)
        with self.lock:
            series = self.series[fam.name]
            if how == "observe":
                series.setdefault(key, Histogram(fam.buckets)).observe(amount)
            elif how == "inc":
                series[key] = series.get(key, 0.0 if isinstance(amount, float) else 0) + amount
            else:  # set / info
                series[key] = amount

    def set_gauge(self, short, value, **labels):
        """A gauge: config_synchronized, tokio_*, process_*, cgroup_* (cgroup counters: ``count``)."""
        self._record("set", short, labels, value)

    def count(self, short, amount=1, **labels):
        """Add to any counter by its short name, with its labels (for what has no method of its own)."""
        self._record("inc", short, labels, amount)

    # -- requests --------------------------------------------------------------------------------------
    def http_request(self, route, backend, status=200, protocol="http", method="POST", reason="Upstream",
                     duration=0.05, response_bytes=0, request_processing=None, response_processing=None,
                     retries=0, route_rule=None, listener=None, port=None, **custom):
        """One HTTP request through ``route`` to ``backend`` ("<namespace>/<name>"), as log.rs records it.

        requests_total (HTTPLabels), response_bytes_total (when bytes were sent back),
        request_duration_seconds, retries_total (``retries`` > 0: how many times it was retried),
        request/response_processing_seconds (None: not recorded, as for an answer the proxy gave before
        any outbound call). ``reason``: "Upstream" for the backend's answer (any status), else the
        ProxyResponseReason of the proxy's own answer ("Guardrail" for a prompt guard's rejection,
        status 403 by default; "MCP", "UpstreamFailure", ...). ``protocol``: "llm" behind an AI backend,
        "mcp" behind an MCP backend, "http" otherwise. ``custom``: the metric fields' values.
        """
        http = dict(self.route_labels(route, route_rule, listener, port), backend=backend, protocol=protocol,
                    method=method, status=str(status), reason=reason, **self.custom_labels(**custom))
        self._record("inc", "requests", http, 1)
        if response_bytes:
            self._record("inc", "response_bytes", http, int(response_bytes))
        self._record("observe", "request_duration_seconds", http, duration)
        if retries:
            self._record("inc", "retries", http, int(retries))
        minimal = {k: http[k] for k in ("backend",) + ROUTE + tuple(self.custom_fallbacks)}
        if request_processing is not None:
            self._record("observe", "request_processing_seconds", minimal, request_processing)
        if response_processing is not None:
            self._record("observe", "response_processing_seconds", minimal, response_processing)
        return http

    def llm_request(self, route, backend, model, status=200, provider="openai", response_model=None,
                    input_tokens=None, output_tokens=None, cache_read=None, cache_write=None, duration=0.2,
                    ttft=None, method="POST", reason="Upstream", response_bytes=0, request_processing=0.0003,
                    response_processing=0.0002, upstream_call=None, answered=True, retries=0, route_rule=None,
                    listener=None, port=None, user=None):
        """One request through an AI route (protocol "llm"), with what the provider answered.

        ``model``: the request's model (custom field ``model`` and gen_ai_request_model); ``provider``: the
        provider's name (gen_ai_system and custom ``provider``: openai, anthropic, aws.bedrock, azure,
        gcp.gemini, ...). ``answered``: the provider answered (any status). Then, as add_llm_metrics does:
        the cost catalog lookup (Exact / Unpriced / Missing / NoCatalog), the cost for a priced model (a 0
        series when it answered without usage), token usage by type for each count given (``input`` as the
        provider reports it: OpenAI-style input includes ``cache_read``, Anthropic-style excludes it),
        gen_ai_server_request_duration (``response_model`` None: "unknown", as for error answers), and for
        a streamed answer (``ttft``: seconds to the first token) time to first token and time per output
        token ((duration - ttft) / output tokens); the primary upstream call (kind Primary, subtype Llm)
        lasts ``upstream_call`` (default: ``duration``). Not answered (a guardrail's 403 with reason
        "Guardrail", an unreachable backend with 503 "UpstreamFailure"): only the HTTP families.
        Returns the answer's cost in USD (None: not priced).
        """
        self.http_request(route, backend, status, "llm", method, reason, duration, response_bytes,
                          request_processing if answered else None, response_processing if answered else None,
                          retries, route_rule, listener, port, model=model, provider=provider, user=user)
        if not answered:
            return None
        self.upstream_call("Primary", "Llm", duration if upstream_call is None else upstream_call)
        genai = dict(self.route_labels(route, route_rule, listener, port), gen_ai_operation_name="chat",
                     gen_ai_system=provider, gen_ai_request_model=model,
                     gen_ai_response_model=response_model or "unknown",
                     **self.custom_labels(model=model, provider=provider, user=user))
        lookup, rates = self.cost_lookup(provider, response_model or model)
        self._record("inc", "cost_catalog_lookups", dict(genai, status=lookup), 1)
        cost = None
        if rates:
            cost = self.cost_usd(provider, rates, input_tokens or 0, output_tokens or 0, cache_read or 0,
                                 cache_write or 0)
            self._record("inc", "gen_ai_client_cost_usd", genai, cost)
        for kind, tokens in (("input", input_tokens), ("output", output_tokens), ("input_cache_read", cache_read),
                             ("input_cache_write", cache_write)):
            if tokens is not None:
                self._record("observe", "gen_ai_client_token_usage", dict(genai, gen_ai_token_type=kind), tokens)
        self._record("observe", "gen_ai_server_request_duration", genai, duration)
        if ttft is not None:
            self._record("observe", "gen_ai_server_time_to_first_token", genai, ttft)
            if output_tokens:
                self._record("observe", "gen_ai_server_time_per_output_token", genai,
                             max(duration - ttft, 0.0) / output_tokens)
        return cost

    def cost_lookup(self, provider, model):
        """(CostLookupStatus, rates or None) for a model in the price catalog."""
        if self.prices is None:
            return "NoCatalog", None
        entry = (self.prices.get(provider) or {}).get(model)
        if entry is None:
            return "Missing", None
        rates = {k: float(v) for k, v in entry.items() if k in ("input", "output", "cacheRead", "cacheWrite")}
        return ("Exact", rates) if rates else ("Unpriced", None)

    @staticmethod
    def cost_usd(provider, rates, input_tokens, output_tokens, cache_read=0, cache_write=0):
        """USD of one answer, as llm/cost/mod.rs usage_for prices it: the cache counted once, at its rate when
        the catalog has one, as input otherwise (prices per 1M tokens)."""
        if provider in INPUT_EXCLUDES_CACHE:
            if "cacheRead" not in rates:
                input_tokens, cache_read = input_tokens + cache_read, 0
            if "cacheWrite" not in rates:
                input_tokens, cache_write = input_tokens + cache_write, 0
        else:
            input_tokens -= cache_read if "cacheRead" in rates else 0
            input_tokens -= cache_write if "cacheWrite" in rates else 0
            cache_read = cache_read if "cacheRead" in rates else 0
            cache_write = cache_write if "cacheWrite" in rates else 0
        return (max(input_tokens, 0) * rates.get("input", 0.0) + output_tokens * rates.get("output", 0.0)
                + cache_read * rates.get("cacheRead", 0.0) + cache_write * rates.get("cacheWrite", 0.0)) / 1e6

    def mcp_request(self, route, method, resource_type=None, server=None, resource=None, backend=None, status=200,
                    reason="Upstream", duration=0.05, response_bytes=0, route_rule=None, listener=None, port=None,
                    user=None, http_method="POST", upstream_call=None):
        """One JSON-RPC request through an MCP route.

        mcp_requests_total{method, resource_type, server, resource, route..., custom} when ``method`` is
        set ("tools/call", "tools/list", "prompts/get", ...; the session's GET/DELETE have none and are not
        counted); ``resource_type``: tool, prompt, resource, templates, task; ``server``: the MCP target the
        call went to; ``resource``: the tool/prompt/resource name; None: "unknown" (a tools/list has none).
        With ``backend`` ("<namespace>/<AgentgatewayBackend>") also the HTTP families with protocol "mcp"
        (``reason`` "MCP" for the proxy's own MCP errors: 400, 404, 503 ...; ``http_method``: POST, or DELETE
        for the session's end) and the primary upstream call (subtype Mcp, lasting ``upstream_call``, default
        ``duration``) when ``reason`` is "Upstream"; without, record the HTTP part with ``http_request``.
        """
        custom = self.custom_labels(user=user)
        if method:
            self._record("inc", "mcp_requests", dict(
                self.route_labels(route, route_rule, listener, port), method=method,
                resource_type=resource_type or "unknown", server=server or "unknown", resource=resource or "unknown",
                **custom), 1)
        if backend:
            upstream = reason == "Upstream"
            self.http_request(route, backend, status, "mcp", http_method, reason, duration, response_bytes,
                              0.0002 if upstream else None, 0.0001 if upstream else None, 0, route_rule, listener,
                              port, user=user)
            if upstream:
                self.upstream_call("Primary", "Mcp", duration if upstream_call is None else upstream_call)

    def guardrail_check(self, phase="Request", action="Allow"):
        """One guardrail verdict (llm/policy record_guardrail_trip): phase Request|Response, action
        Allow|Mask|Reject|FailOpen. No route or gateway label. A Reject of the request phase answers 403
        with reason "Guardrail": record that request with ``llm_request(..., status=403, reason="Guardrail",
        answered=False)``."""
        self._record("inc", "guardrail_checks", {"phase": phase, "action": action}, 1)

    def retry(self, route, backend, count=1, status=200, protocol="http", method="POST", reason="Upstream",
              route_rule=None, listener=None, port=None, **custom):
        """retries_total += ``count`` for a request retried ``count`` times; the labels are those of its final
        answer (HTTPLabels, like requests_total). ``http_request(retries=n)`` records the same with the request."""
        http = dict(self.route_labels(route, route_rule, listener, port), backend=backend, protocol=protocol,
                    method=method, status=str(status), reason=reason, **self.custom_labels(**custom))
        self._record("inc", "retries", http, int(count))

    # -- connections and outbound calls ------------------------------------------------------------
    def upstream_call(self, kind="Primary", subtype="Llm", duration=0.1):
        """An outbound call: kind Primary|Policy|Mirror, subtype Http|Llm|Mcp|ExtAuthz|ExtProc|Guardrail|..."""
        self._record("observe", "upstream_call_duration_seconds", {"kind": kind, "subtype": subtype}, duration)

    def upstream_connect(self, transport="plaintext", duration=0.001):
        """A new upstream connection (pooled connections are not counted again): transport plaintext|tls|hbone."""
        self._record("observe", "upstream_connect_duration_seconds", {"transport": transport}, duration)

    def _tcp(self, protocol, listener, port):
        # proxy/gateway.rs: a plain HTTP bind has no listener chosen per connection (gateway and listener
        # "unknown"); an HTTPS or TLS listener is chosen in the handshake.
        if protocol == "http":
            return {"bind": self.bind(port), "gateway": "unknown", "listener": "unknown", "protocol": protocol}
        return {"bind": self.bind(port), "gateway": self.gateway, "listener": listener, "protocol": protocol}

    def downstream_connection(self, protocol="http", listener=None, port=None):
        """A client connection accepted (protocol http, https, tls, ...; ``listener``: for https/tls)."""
        self._record("inc", "downstream_connections", self._tcp(protocol, listener, port), 1)

    def downstream_bytes(self, received=0, sent=0, protocol="http", listener=None, port=None):
        labels = self._tcp(protocol, listener, port)
        if received:
            self._record("inc", "downstream_received_bytes", labels, int(received))
        if sent:
            self._record("inc", "downstream_sent_bytes", labels, int(sent))

    def tls_handshake(self, duration, listener, protocol="https", port=None):
        """An inbound TLS handshake on an HTTPS (protocol https) or TLS (tls) listener."""
        self._record("observe", "tls_handshake_duration_seconds", self._tcp(protocol, listener, port), duration)

    def xds_message(self, url, size):
        """A DeltaDiscoveryResponse of type ``url`` with ``size`` bytes of resources."""
        self._record("inc", "xds_message", {"url": url}, 1)
        self._record("inc", "xds_message_bytes", {"url": url}, int(size))

    def xds_termination(self, reason="Reconnect"):
        """A finished xDS connection: ConnectionError, Error, Reconnect, Complete."""
        self._record("inc", "xds_connection_terminations", {"reason": reason}, 1)

    def xds_initial_state(self, sizes=None):
        """What a proxy fed by the controller has recorded once its xDS stream is up: one
        DeltaDiscoveryResponse per subscribed type URL (``XDS_TYPES``) with the resources' bytes
        (``sizes``: {type URL: bytes}; default ``XDS_INITIAL_SIZES``). A reconnect sends the state again:
        call ``xds_termination`` then this."""
        for url, size in (sizes or XDS_INITIAL_SIZES).items():
            self.xds_message(url, size)

    def watch_cgroup(self, read=None):
        """Write the cgroup_* families on every scrape, as pprof-alloc's collector does on a cgroup v2 host:
        from ``read()`` (default: this process's own cgroup, ``cgroup_stats``, else ``STATIC_CGROUP``)."""
        self.cgroup = read or (lambda: cgroup_stats() or STATIC_CGROUP)

    # -- output ----------------------------------------------------------------------------------------
    def _runtime(self):
        for name, value in self.runtime.items():
            self._record("set", name, {}, value() if callable(value) else value)
        stats = self.cgroup() if self.cgroup is not None else None
        for name, _help in CGROUP_GAUGES if stats else ():
            self._record("set", "cgroup_" + name, {}, int(stats[name]))
        for name, _help in CGROUP_COUNTERS if stats else ():
            self._record("set", "cgroup_" + name, {}, int(stats[name[:-len("_total")]]))
        if self.process:
            rollup = smaps_rollup()
            for name, key, _help in PROCESS_GAUGES if rollup is not None else ():
                self._record("set", "process_" + name, {}, rollup.get(key, 0))

    def snapshot(self):
        """[(Family, [({label: value}, value or Histogram copy)])] of the families with series, in order."""
        with self.lock:
            self._runtime()
            out = []
            for name, series in self.series.items():
                if series:
                    fam = self.families[name]
                    out.append((fam, [(dict(zip(fam.labels, key)), v.copy() if isinstance(v, Histogram) else v)
                                      for key, v in series.items()]))
            return out

    def render(self):
        """The exposition as OpenMetrics text, as v1.4.1 writes it for both content types."""
        lines = []
        for fam, series in self.snapshot():
            lines += header_lines(fam)
            for labels, value in series:
                lines += sample_lines(fam, labels, value)
        return "\n".join(lines + ["# EOF", ""])

    def answer(self, accept):
        """(content type, body bytes) for a scrape with this Accept header (v1.4.1's negotiation)."""
        return answer_type_v141(accept), self.render().encode("utf-8")


def smaps_rollup(path="/proc/self/smaps_rollup"):
    """{key: bytes} of this process's smaps rollup, None where unreadable (pprof-alloc writes nothing then)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    return {m.group(1): int(m.group(2)) * 1024 for m in re.finditer(r"^(\w+):\s+(\d+) kB$", text, re.M)}


# ---- what a proxy fed by the controller on a cgroup v2 node adds ------------------------------------
# state_manager.rs@v1.4.1: the xDS client subscribes to these two type URLs (the Authorization type is
# commented out); xds/src/metrics.rs@v1.4.1 counts every DeltaDiscoveryResponse by type URL and adds the
# bytes of its resources (Any.value) to xds_message_bytes_total.
XDS_ADDRESS_TYPE = "type.googleapis.com/istio.workload.Address"
XDS_RESOURCE_TYPE = "type.googleapis.com/agentgateway.dev.resource.Resource"
XDS_TYPES = (XDS_ADDRESS_TYPE, XDS_RESOURCE_TYPE)
# The first response of each type carries the whole state: the services and workloads the proxy may call
# (Address), its binds, listeners, routes, backends and policies (Resource). Plausible sizes, not measured.
XDS_INITIAL_SIZES = collections.OrderedDict([(XDS_ADDRESS_TYPE, 1853), (XDS_RESOURCE_TYPE, 7420)])

_MIB = 1024 * 1024
# A small proxy's memory.stat when its own cannot be read (no cgroup v2 here), consistent the way the kernel's
# is: anon = active_anon + inactive_anon; file = active_file + inactive_file + shmem (shmem is counted in file
# but sits on the anon LRU lists); file_mapped <= file; kernel >= kernel_stack + pagetables + percpu + slab,
# slab = slab_reclaimable + slab_unreclaimable; usage (memory.current) = anon + file + kernel + sock; the
# working set is usage - inactive_file (pprof-alloc cgroups.rs get_stats).
STATIC_CGROUP = {
    "anon": 22 * _MIB, "active_anon": 20 * _MIB, "inactive_anon": 2 * _MIB,
    "file": 9 * _MIB, "active_file": 5 * _MIB, "inactive_file": 3 * _MIB, "shmem": 1 * _MIB,
    "file_mapped": 4 * _MIB, "kernel": 4 * _MIB, "kernel_stack": 512 * 1024, "pagetables": 384 * 1024,
    "percpu": 128 * 1024, "slab": 2 * _MIB, "slab_reclaimable": 1280 * 1024, "slab_unreclaimable": 768 * 1024,
    "sock": 256 * 1024, "pgfault": 18342, "pgmajfault": 12, "workingset_refault_anon": 0,
    "workingset_refault_file": 3, "workingset_activate_anon": 0, "workingset_activate_file": 1,
    "workingset_restore_anon": 0, "workingset_restore_file": 0,
}
STATIC_CGROUP["usage"] = STATIC_CGROUP["anon"] + STATIC_CGROUP["file"] + STATIC_CGROUP["kernel"] + STATIC_CGROUP["sock"]
STATIC_CGROUP["working_set"] = STATIC_CGROUP["usage"] - STATIC_CGROUP["inactive_file"]
STATIC_CGROUP["max"] = None


def cgroup_stats(proc_cgroup="/proc/self/cgroup", root="/sys/fs/cgroup"):
    """This process's cgroup v2 memory as pprof-alloc reads it (stats/cgroups.rs: the ``0::<path>`` line of
    /proc/self/cgroup, then <root><path>/memory.current and memory.stat), with ``usage``, ``working_set``
    (usage - inactive_file) and ``max`` (memory.max: bytes, None for "max"); None where unreadable (a cgroup v1
    host: pprof-alloc writes no cgroup_* then)."""
    try:
        with open(proc_cgroup, encoding="utf-8") as handle:
            found = re.search(r"^0::(/.*)$", handle.read(), re.M)
        if not found:
            return None
        base = root + found.group(1).rstrip("/")
        with open(base + "/memory.current", encoding="utf-8") as handle:
            usage = int(handle.read().strip())
        with open(base + "/memory.stat", encoding="utf-8") as handle:
            stat = {k: int(v) for k, v in re.findall(r"^(\w+) (\d+)$", handle.read(), re.M)}
    except (OSError, ValueError):
        return None
    out = {name: stat.get(name, 0) for name in STATIC_CGROUP if name not in ("usage", "working_set", "max")}
    out.update(usage=usage, working_set=max(usage - out["inactive_file"], 0), max=None)
    try:
        with open(base + "/memory.max", encoding="utf-8") as handle:
            limit = handle.read().strip()
        out["max"] = int(limit) if limit.isdigit() else None
    except OSError:
        pass
    return out


# ---- reading an exposition ---------------------------------------------------------------------------
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(\S+))?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """An OpenMetrics text exposition as {family name: {"type", "help", "unit", "samples": [(sample name,
    [(label, value)] in written order, value)]}}; samples are assigned to the family declared before them."""
    families, current = collections.OrderedDict(), None
    for line in text.splitlines():
        if line.startswith("# "):
            parts = line.split(" ", 3)
            if parts[1] in ("HELP", "TYPE", "UNIT") and len(parts) >= 3:
                current = families.setdefault(parts[2], {"type": "unknown", "help": "", "unit": "", "samples": []})
                current[parts[1].lower()] = parts[3] if len(parts) > 3 else ""
            continue
        match = _SAMPLE.match(line.strip())
        if match and current is not None:
            pairs = [(m.group(1), m.group(2)) for m in _LABEL.finditer(match.group(2) or "")]
            current["samples"].append((match.group(1), pairs, float(match.group(3))))
    return families


def label_names(parsed_family):
    """The label names of a parsed family's samples in written order (``le`` left out); a family whose
    samples disagree has more than one."""
    return sorted({tuple(k for k, _v in pairs if k != "le") for _n, pairs, _v in parsed_family["samples"]})


def bucket_bounds(parsed_family):
    """The ``le`` values of a parsed histogram, in written order, without repeats."""
    seen = []
    for name, pairs, _value in parsed_family["samples"]:
        if name.endswith("_bucket"):
            le = dict(pairs)["le"]
            if le not in seen:
                seen.append(le)
    return seen
