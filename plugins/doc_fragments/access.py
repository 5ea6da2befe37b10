# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the modules that reach a service of the stack (module_utils/access.py)."""

from __future__ import annotations


class ModuleDocFragment(object):
    # How to reach services, and the HTTP settings: every verification module.
    DOCUMENTATION = r"""
options:
  access:
    description:
      - How the controller reaches the service (the collection's C(agw_obs_access)).
      - C(url) uses the service's C(url).
      - C(nodeport) uses C(<scheme>://<node_address>:<host_port>), the host port a kind cluster maps to a NodePort.
      - C(proxy) goes through the Kubernetes API server's service proxy
        (C(/api/v1/namespaces/<namespace>/services/<scheme>:<name>:<port>/proxy/)) with the user of O(kubeconfig) and
        O(context). It needs no NodePort and no port-forward; the user needs C(get) on C(services/proxy).
      - A service's own C(access) overrides this.
    type: str
    choices: [nodeport, proxy, url]
    default: url
  node_address:
    description: Host of the NodePort URLs in C(nodeport) access.
    type: str
    default: localhost
  kubeconfig:
    description:
      - Kubeconfig for C(proxy) access. Default, as for kubernetes.core, C(K8S_AUTH_KUBECONFIG), then the first file in
        C(KUBECONFIG), then C(~/.kube/config).
      - Users with a client certificate (file or data), a token or token file, basic auth, or an C(exec) credential
        plugin work; C(auth-provider) and C(tls-server-name) are refused with a clear message.
    type: path
  context:
    description: Kubeconfig context for C(proxy) access; default C(K8S_AUTH_CONTEXT), then the current context.
    type: str
  timeout:
    description:
      - Seconds each attempt may take (connect and every read).
      - Cut to what is left of O(deadline), but never below one second, so a check that starts late still gets one attempt.
    type: float
    default: 10.0
  deadline:
    description:
      - Seconds the whole check may take. Attempts that fail for a reason that can pass (connection refused, 5xx, no
        endpoints yet, data not there yet) are retried with exponential backoff until then.
      - Failures that cannot pass by waiting (DNS, TLS, 401, 403, a missing Service) end the check at once.
    type: float
    default: 30.0
  backoff:
    description: First pause between attempts in seconds; it doubles each time, up to 5 seconds.
    type: float
    default: 0.5
  validate_certs:
    description: Verify the service's TLS certificate (C(url) and C(nodeport) access; C(proxy) uses the kubeconfig's CA).
    type: bool
    default: true
  ca_path:
    description: CA bundle that signed the service's certificate.
    type: path
  client_cert:
    description: Client certificate (PEM) for services that ask for one.
    type: path
  client_key:
    description: Key of O(client_cert).
    type: path
  proxy_url:
    description:
      - An HTTP proxy between the controller and the service (or the API server), C(http://[user:password@]host:port).
      - Plain HTTP requests are sent to it with the full URL, HTTPS through a C(CONNECT) tunnel. Empty uses no proxy
        (the kubeconfig's C(proxy-url) still applies to C(proxy) access).
    type: str
  username:
    description:
      - Basic auth user for the service (C(url) and C(nodeport) access; the API server proxy strips the header).
    type: str
  password:
    description: Basic auth password of O(username).
    type: str
  bearer_token:
    description: "Sent as C(Authorization: Bearer <token>) (C(url) and C(nodeport) access)."
    type: str
  headers:
    description: Extra headers sent with every request.
    type: dict
    default: {}
  fail_on_error:
    description:
      - Fail the task when a check fails. The results, with the cause and fix of each failure, are returned either way.
      - Set false to collect the results of several modules into one report (the verification role does).
    type: bool
    default: true
"""

    # The service a module talks to (one per module, or one per check in service_probe).
    SERVICE = r"""
options:
  service:
    description:
      - The service to reach. Which keys count depends on the access mode.
    type: dict
    required: true
    suboptions:
      access:
        description: Overrides the module's O(access) for this service.
        type: str
        choices: [nodeport, proxy, url]
      url:
        description: Base URL (C(url) access), for example C(http://localhost:9090).
        type: str
      host_port:
        description: Host port mapped to the Service's NodePort (C(nodeport) access).
        type: int
      node_address:
        description: Host of the NodePort URL; overrides the module's O(node_address).
        type: str
      namespace:
        description: Namespace of the Service (C(proxy) access).
        type: str
      name:
        description: Name of the Service (C(proxy) access).
        type: str
      port:
        description: Port of the Service, number or name (C(proxy) access).
        type: str
      scheme:
        description: Scheme the service speaks (C(proxy) and C(nodeport) access).
        type: str
        choices: [http, https]
        default: http
"""
