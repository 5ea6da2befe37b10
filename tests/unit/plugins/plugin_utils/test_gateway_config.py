"""Unit tests of the gateway telemetry builder/validator (plugins/plugin_utils/gateway_config.py)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.agentgateway.observability.plugins.plugin_utils.gateway_config import (
    TelemetryConfigError,
    build,
    cel_problems,
    check_raw_config,
    reference_grants,
)
from support.gateway import seed_raw_configs
from support.schemas import proxy_config_errors

TEMPO = {"name": "tempo", "namespace": "monitoring", "port": 4317}


def errors_of(spec):
    with pytest.raises(TelemetryConfigError) as info:
        build(spec)
    return info.value.errors


def joined(spec):
    return "\n".join(errors_of(spec))


@pytest.fixture(scope="module")
def seed(seed_tutorial):
    main, custom = seed_raw_configs(seed_tutorial)[:2]
    return main, custom


def seed_errors(raw):
    return "\n".join(errors_of({"tracing": {"enabled": False}, "extra_raw_config": copy.deepcopy(raw)}))


# ---- the tutorial's rawConfig, as-is: one test per invented key or trap -----------------------

def test_seed_metrics_enabled_is_rejected(seed):
    assert "extra_raw_config.config.metrics.enabled: metrics are always on" in seed_errors(seed[0])


def test_seed_metrics_prefix_is_rejected(seed):
    assert "extra_raw_config.config.metrics.prefix: the metric prefix is fixed" in seed_errors(seed[0])


def test_seed_metrics_tags_is_rejected(seed):
    out = seed_errors(seed[0])
    assert "extra_raw_config.config.metrics.tags: there is no 'tags'" in out
    assert "config.metrics.fields.add" in out


def test_seed_custom_metrics_is_rejected(seed):
    out = seed_errors(seed[1])
    assert "extra_raw_config.config.metrics.customMetrics: agentgateway has no custom metrics" in out
    assert "agentgateway_gen_ai_client_cost_usd_total" in out


def test_seed_tracing_collector_endpoint_is_rejected(seed):
    assert seed[0]["config"]["tracing"]["collector"]["endpoint"]
    out = seed_errors(seed[0])
    assert "extra_raw_config.config.tracing.collector: there is no tracing.collector (nor collector.endpoint)" in out
    assert "otlpEndpoint" in out


def test_seed_double_slash_default_is_rejected(seed):
    out = seed_errors(seed[0])
    assert ("extra_raw_config.config.metrics.tags.add.user: 'jwt.sub // \"anonymous\"' uses '//' as a default "
            "operator") in out
    assert 'write default(jwt.sub, "anonymous")' in out
    # ... also inside customMetrics
    assert "customMetrics.0.labels.0.user" in seed_errors(seed[1])


@pytest.mark.parametrize("name,fix", [("totalCost", "llm.cost.total"), ("inputCost", "llm.cost.input"),
                                      ("outputCost", "llm.cost.output")])
def test_seed_invented_cost_variables_are_rejected(seed, name, fix):
    out = seed_errors(seed[0])
    assert "uses llm.%s, which does not exist; use %s" % (name, fix) in out
    assert "config.tracing.fields.add.llm.cost." in out


def test_seed_errors_name_every_problem_at_once(seed):
    errors = errors_of({"tracing": {"enabled": False}, "extra_raw_config": copy.deepcopy(seed[0])})
    assert len(errors) == 9


def test_the_seed_also_fails_the_upstream_schema(seed, schemas_dir):
    # The rejections above match the real proxy: its schema refuses the same block.
    assert proxy_config_errors(schemas_dir, seed[0])


# ---- CEL -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("expr", [
    'default(jwt.sub, "anonymous")',
    '"http://example.com/" + request.path',
    "'a//b' == request.path",
    'r"x//y"',
    '"""multi // line"""',
    'request.headers["x-a\\"//"]',
    "llm.cost.total",
])
def test_valid_cel_passes(expr):
    assert cel_problems("x", expr) == []


@pytest.mark.parametrize("expr,needle", [
    ('jwt.sub // "anonymous"', "'//'"),
    ('"a" + jwt.sub// x', "'//'"),
    ("llm.totalCost * 2", "llm.cost.total"),
    ("llm . inputCost", "llm.cost.input"),
    ("  ", "is empty"),
])
def test_cel_traps_are_reported(expr, needle):
    problems = cel_problems("labels.user", expr)
    assert problems and problems[0].startswith("labels.user: ")
    assert needle in problems[0]


def test_cel_must_be_a_string():
    assert "must be a string" in cel_problems("x", 3)[0]


# ---- sampling --------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, 0.0, 0.25, 1, 1.0, True, False, "true", "0.5", 'request.headers["x"] == "1"'])
def test_sampling_in_range_passes(value):
    out = build({"tracing": {"service": TEMPO, "random_sampling": value, "client_sampling": value}})
    assert "randomSampling" in out["frontend"]["tracing"]


@pytest.mark.parametrize("value", [1.5, -0.1, "2", "1.01", float("nan")])
def test_sampling_outside_zero_one_is_rejected(value):
    out = joined({"tracing": {"service": TEMPO, "random_sampling": value}})
    assert "tracing_random_sampling: sampling" in out and "outside [0, 1]" in out


def test_sampling_in_raw_config_is_checked_too():
    out = joined({"tracing": {"enabled": False},
                  "extra_raw_config": {"config": {"tracing": {"otlpEndpoint": "http://t:4317", "randomSampling": 3}}}})
    assert "extra_raw_config.config.tracing.randomSampling: sampling 3 is outside [0, 1]" in out


def test_sampling_becomes_a_cel_string_in_the_policy():
    tracing = build({"tracing": {"service": TEMPO, "random_sampling": True, "client_sampling": 0.5}})["frontend"]["tracing"]
    assert tracing["randomSampling"] == "true" and tracing["clientSampling"] == "0.5"


# ---- the generated config ---------------------------------------------------------------------

FULL = {
    "metrics": {"labels": {"user": 'default(jwt.sub, "anonymous")', "model": "llm.requestModel"},
                "remove": ["agentgateway_tokio_workers"], "in_policy": True},
    "tracing": {"service": TEMPO, "protocol": "grpc", "random_sampling": 0.1,
                "attributes": {"gen_ai.request.model": "llm.requestModel"},
                "resources": {"service.name": '"gw"'}, "filter": "response.code >= 200"},
    "logging": {"level": "debug", "format": "json"},
    "access_log": {"fields": {"cost": "default(llm.cost.total, 0.0)"}, "remove": ["src.addr"],
                   "filter": "true",
                   "otlp": {"enabled": True, "protocol": "http", "path": "/otlp/v1/logs",
                            "service": {"name": "loki", "namespace": "monitoring", "port": 3100}}},
    "model_prices": {"openai": {"gpt-4o-mini": {"input": 0.15, "output": "0.60"},
                                "big": {"rates": {"input": "1"}, "tiers": [{"contextOver": 200000,
                                                                            "rates": {"input": 2}}]}}},
}


def test_full_build_passes_the_proxy_schema(schemas_dir):
    out = build(copy.deepcopy(FULL))
    assert proxy_config_errors(schemas_dir, out["raw_config"]) == []
    config = out["raw_config"]["config"]
    assert config["metrics"] == {"fields": {"add": FULL["metrics"]["labels"]}, "remove": ["agentgateway_tokio_workers"]}
    assert config["logging"] == {"level": "debug", "format": "json"}
    models = config["modelCatalog"][0]["inline"]["providers"]["openai"]["models"]
    assert models["gpt-4o-mini"] == {"rates": {"input": "0.15", "output": "0.60"}}
    assert models["big"]["tiers"] == [{"contextOver": 200000, "rates": {"input": "2"}}]
    assert out["logging"] == {"level": "debug", "format": "json"}


def test_full_build_frontend_has_the_kubernetes_shape():
    front = build(copy.deepcopy(FULL))["frontend"]
    assert front["tracing"] == {
        "backendRef": TEMPO, "protocol": "GRPC", "randomSampling": "0.1",
        "attributes": {"add": [{"name": "gen_ai.request.model", "expression": "llm.requestModel"}]},
        "resources": [{"name": "service.name", "expression": '"gw"'}],
        "filter": "response.code >= 200",
    }
    assert front["accessLog"] == {
        "attributes": {"add": [{"name": "cost", "expression": "default(llm.cost.total, 0.0)"}], "remove": ["src.addr"]},
        "filter": "true",
        "otlp": {"backendRef": {"name": "loki", "namespace": "monitoring", "port": 3100}, "protocol": "HTTP",
                 "path": "/otlp/v1/logs"},
    }
    assert front["metrics"] == {"attributes": {"add": [
        {"name": "user", "expression": 'default(jwt.sub, "anonymous")'},
        {"name": "model", "expression": "llm.requestModel"}]}}


def test_minimal_build_has_no_catalog_and_no_metrics_policy():
    out = build({"tracing": {"enabled": False}})
    assert out["frontend"] == {}
    assert out["raw_config"] == {"config": {"logging": {"level": "info", "format": "json"}}}


def test_http_tracing_with_path():
    tracing = build({"tracing": {"service": dict(TEMPO, port=4318), "protocol": "http",
                                 "path": "/v1/traces"}})["frontend"]["tracing"]
    assert tracing["protocol"] == "HTTP" and tracing["path"] == "/v1/traces"


def test_path_needs_http():
    assert "a path only applies to protocol http" in joined({"tracing": {"service": TEMPO, "path": "/v1/traces"}})


@pytest.mark.parametrize("spec,needle", [
    ({"tracing": {"service": TEMPO, "protocol": "thrift"}}, "must be grpc"),
    ({"tracing": {"service": {"name": "Tempo!", "namespace": "monitoring", "port": 4317}}}, "must be a Kubernetes name"),
    ({"tracing": {"service": dict(TEMPO, port=70000)}}, "port number"),
    ({"tracing": {"service": TEMPO, "colector": 1}}, "colector: unknown setting"),
    ({"metrics": {"labels": {"9lives": '"x"'}}, "tracing": {"enabled": False}}, "not a valid name"),
    ({"metrics": {"labels": {"route": '"x"'}}, "tracing": {"enabled": False}}, "already sets a label"),
    ({"metrics": {"labels": {"l%d" % i: '"x"' for i in range(17)}, "in_policy": True}, "tracing": {"enabled": False}},
     "at most 16"),
    ({"logging": {"format": "xml"}, "tracing": {"enabled": False}}, "must be json or text"),
    ({"tracing": {"enabled": False}, "model_prices": {"openai": {"m": {"input": "-1"}}}}, ">= 0"),
    ({"tracing": {"enabled": False}, "model_prices": {"openai": {"m": {"input": "0.0000001"}}}}, "6 fractional"),
    ({"tracing": {"enabled": False}, "model_prices": {"openai": {"m": {"input": "cheap"}}}}, "not a decimal"),
    ({"tracing": {"enabled": False}, "model_prices": {"openai": {"m": {"prompt": "1"}}}}, "unknown: prompt"),
    ({"tracing": {"enabled": False}, "model_prices": {"openai": {"m": {"rates": {"input": "1"},
                                                                       "tiers": [{"contextOver": 5, "rates": {}},
                                                                                 {"contextOver": 5, "rates": {}}]}}}},
     "increase strictly"),
    ({"tracing": {"enabled": False}, "bogus": {}}, "bogus: unknown section"),
])
def test_bad_structured_input_is_rejected(spec, needle):
    assert needle in joined(spec)


def test_messages_use_the_variable_names():
    with pytest.raises(TelemetryConfigError) as info:
        build({"tracing": {"service": TEMPO, "random_sampling": 7}},
              names={"tracing": "gateway_observability_tracing"})
    assert "gateway_observability_tracing_random_sampling: sampling 7 is outside [0, 1]" in str(info.value)


# ---- extra raw config ------------------------------------------------------------------------

def test_extra_raw_config_is_merged(schemas_dir):
    out = build({"tracing": {"enabled": False}, "metrics": {"labels": {"team": '"a"'}},
                 "extra_raw_config": {"config": {"metrics": {"fields": {"add": {"env": '"prod"'}}},
                                                 "adminAddr": "localhost:15000"}}})
    config = out["raw_config"]["config"]
    assert config["metrics"]["fields"]["add"] == {"team": '"a"', "env": '"prod"'}
    assert config["adminAddr"] == "localhost:15000"
    assert proxy_config_errors(schemas_dir, out["raw_config"]) == []


@pytest.mark.parametrize("extra,needle", [
    ({"config": {"metrics": {"fields": {"add": {"a": '"x"'}, "remove": ["y"]}}}}, "config.metrics.fields.remove: unknown key"),
    ({"config": {"tracingg": {}}}, "config.tracingg: unknown key"),
    ({"config": {"logging": {"format": "yaml"}}}, "must be json or text"),
    ({"config": {"statsAddr": "0.0.0.0:9091"}}, "expect port 15020"),
    ({"frontendPolicies": {"tracing": {"host": "t:4317"}}}, "not accepted in rawConfig on Kubernetes"),
    ({"binds": []}, "listeners come from the Gateway"),
    ({"metrics": {}}, "unknown top-level key 'metrics'"),
    ({"config": {"modelCatalog": [{"inline": {"providers": {"openai": {"models": {"m": {"rates": {"inp": "1"}}}}}}}]}},
     "unknown rate 'inp'"),
    ({"config": {"modelCatalog": [{"url": "x"}]}}, "exactly one of"),
])
def test_bad_extra_raw_config_is_rejected(extra, needle, schemas_dir):
    out = joined({"tracing": {"enabled": False}, "extra_raw_config": extra})
    assert needle in out


def test_extra_tracing_conflicts_with_policy_tracing():
    extra = {"config": {"tracing": {"otlpEndpoint": "http://tempo:4317"}}}
    out = joined({"tracing": {"service": TEMPO}, "extra_raw_config": extra})
    assert "tracing is already configured by the role" in out
    out = build({"tracing": {"enabled": False}, "extra_raw_config": extra})
    assert out["raw_config"]["config"]["tracing"] == {"otlpEndpoint": "http://tempo:4317"}


def test_allow_lists_accept_every_telemetry_key_the_schema_knows(schemas_dir):
    raw = {"config": {
        "logging": {"filter": "true", "fields": {"add": {"a": "1"}, "remove": ["b"]}, "level": ["info"],
                    "format": "text"},
        "tracing": {"otlpEndpoint": "http://t:4317", "headers": {"a": "b"}, "otlpProtocol": "http",
                    "fields": {"add": {"a": "1"}, "remove": []}, "randomSampling": "true", "clientSampling": 0.5,
                    "path": "/v1/traces"},
        "metrics": {"remove": ["x"], "fields": {"add": {"a": '"b"'}}},
        "modelCatalog": [{"file": "/etc/catalog.json"}, {"inline": '{"providers": {}}'},
                         {"inline": {"providers": {"openai": {"models": {"m": {"rates": {
                             "input": "1", "output": "2", "cacheRead": "0.1", "cacheWrite": "0.2", "reasoning": "3",
                             "inputAudio": "4", "outputAudio": "5"}}}}}}}],
        "statsAddr": "0.0.0.0:15020", "readinessAddr": "0.0.0.0:15021", "adminAddr": "localhost:15000",
        "standardAttributes": {"user": "u", "group": "g"},
        "backend": {"keepalives": {"enabled": True, "time": "3m", "interval": "3m", "retries": 9},
                    "connectTimeout": "10s", "poolIdleTimeout": "90s", "poolMaxSize": 10},
    }}
    assert check_raw_config(raw) == []
    assert proxy_config_errors(schemas_dir, raw) == []


# ---- ReferenceGrants -----------------------------------------------------------------------------

def test_reference_grants_one_per_namespace(schemas_dir):
    from support.schemas import crd_errors
    grants = reference_grants([{"namespace": "monitoring", "name": "tempo"}, {"namespace": "monitoring", "name": "loki"},
                               {"namespace": "logs", "name": "loki"}],
                              "gw-backends", "agentgateway.dev", "AgentgatewayPolicy", "agentgateway-system")
    assert [g["metadata"]["namespace"] for g in grants] == ["logs", "monitoring"]
    assert grants[1]["spec"]["to"] == [{"group": "", "kind": "Service", "name": "loki"},
                                       {"group": "", "kind": "Service", "name": "tempo"}]
    for grant in grants:
        assert crd_errors(schemas_dir, grant) == []
    with pytest.raises(TelemetryConfigError):
        reference_grants([{"name": "x"}], "n", "g", "k", "ns")
