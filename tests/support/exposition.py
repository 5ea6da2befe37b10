"""A metrics target that answers like the agentgateway proxy does, by its Accept header.

How the proxy picks its answer, read from crates/agentgateway/src/management/metrics_server.rs:

- main @ 75b4e6c: negotiates between text/plain and protobuf (application/vnd.google.protobuf,
  application/protobuf, application/x-protobuf) by q-value, text/plain when nothing matches. Its
  text/plain body comes from prometheus-client's text encoder, i.e. OpenMetrics text (an ``info``
  type, ``# EOF``), which Prometheus' classic text parser refuses.
- v1.4.1: OpenMetrics (content type application/openmetrics-text) when any Accept entry is
  application/openmetrics-text, else the same text as text/plain.

The bodies here are ours: a few of the gateway's metric names (tests/support/proxy_metrics.py renders
whole expositions of v1.4.1 with the same negotiation, for the gateway stand-in), as OpenMetrics text and as
length-delimited io.prometheus.client.MetricFamily protobuf messages encoded by hand (the wire
format of Prometheus' client_model metrics.proto). The proxy's own protobuf output could not be
run here; this reproduces the negotiation, not the proxy's encoder.
"""

from __future__ import annotations

import http.server
import struct
import threading

OPENMETRICS = b"""# HELP agentgateway_build Agentgateway build information.
# TYPE agentgateway_build info
agentgateway_build_info{tag="v1.5.0"} 1
# HELP agentgateway_requests The total number of HTTP requests sent.
# TYPE agentgateway_requests counter
agentgateway_requests_total{gateway="agentgateway-system/agentgateway-proxy",status="200"} 42
# EOF
"""

PROTOBUF_TYPE = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
_PROTOBUF_ESSENCES = ("application/vnd.google.protobuf", "application/protobuf", "application/x-protobuf")

# metrics.proto: MetricType COUNTER = 0, GAUGE = 1
COUNTER, GAUGE = 0, 1


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number, wire_type, payload):
    key = _varint((number << 3) | wire_type)
    if wire_type == 2:
        return key + _varint(len(payload)) + payload
    return key + payload


def _string(number, text):
    return _field(number, 2, text.encode("utf-8"))


def metric_family(name, metric_type, samples, help_text=""):
    """One length-delimited MetricFamily: samples are (labels dict, value)."""
    body = _string(1, name) + (_string(2, help_text) if help_text else b"") + _field(3, 0, _varint(metric_type))
    for labels, value in samples:
        metric = b"".join(_field(1, 2, _string(1, k) + _string(2, v)) for k, v in sorted(labels.items()))
        number = 3 if metric_type == COUNTER else 2  # Metric.counter = 3, Metric.gauge = 2
        metric += _field(number, 2, _field(1, 1, struct.pack("<d", float(value))))
        body += _field(4, 2, metric)
    return _varint(len(body)) + body


PROTOBUF = (
    metric_family("agentgateway_build_info", GAUGE, [({"tag": "v1.5.0"}, 1)], "Agentgateway build information.")
    + metric_family("agentgateway_requests_total", COUNTER,
                    [({"gateway": "agentgateway-system/agentgateway-proxy", "status": "200"}, 42)],
                    "The total number of HTTP requests sent.")
)


def _accept(header):
    """[(essence, q)] in header order."""
    out = []
    for entry in (header or "").split(","):
        parts = [p.strip() for p in entry.split(";") if p.strip()]
        if not parts:
            continue
        q = 1.0
        for param in parts[1:]:
            if param.startswith("q="):
                q = float(param[2:])
        out.append((parts[0].lower(), q))
    return out


def answer_main(accept):
    """(content type, body) the way agentgateway main @ 75b4e6c answers ``accept``."""
    best, best_q = "text/plain", -1.0
    for essence, q in _accept(accept):
        kind = "protobuf" if essence in _PROTOBUF_ESSENCES else "text/plain" if essence in ("text/plain", "*/*") else None
        if kind and q > best_q:
            best, best_q = kind, q
    if best == "protobuf":
        return PROTOBUF_TYPE, PROTOBUF
    return "text/plain;charset=utf-8", OPENMETRICS


V141_OPENMETRICS_TYPE = "application/openmetrics-text;charset=utf-8;version=1.0.0"
V141_TEXT_TYPE = "text/plain; charset=utf-8"


def answer_type_v141(accept):
    """The content type agentgateway v1.4.1 answers ``accept`` with (its body is the same OpenMetrics text
    either way): OpenMetrics when any Accept entry is application/openmetrics-text, whatever its q."""
    if any(essence == "application/openmetrics-text" for essence, _q in _accept(accept)):
        return V141_OPENMETRICS_TYPE
    return V141_TEXT_TYPE


def answer_v141(accept):
    """(content type, body) the way agentgateway v1.4.1 answers ``accept``."""
    return answer_type_v141(accept), OPENMETRICS


class GatewayMetricsTarget(object):
    """HTTP server on 127.0.0.1 answering like ``answer`` (answer_main or answer_v141); records what it served."""

    def __init__(self, answer):
        self.served = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                content_type, body = answer(self.headers.get("Accept"))
                outer.served.append(content_type.split(";")[0])
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
