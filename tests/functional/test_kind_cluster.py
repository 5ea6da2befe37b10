"""The kind_cluster role (playbooks/kind.yml): the kind config from the site's plan, checked by kind v0.32.0's own code.

The role plans the site's roles (agw_obs plan_site, side-effect free) and maps one host port to every
NodePort their parts claim: agw_obs's _agw_obs_port_plan, plugins/plugin_utils/kind_config.port_plan
over the parts' node_ports and host_ports. Its config is the role's own vars/main.yml over that plan.

- Variations of the settings are computed IN-PROCESS: the site planned by support.planner (the roles'
  real defaults and vars, Ansible's own templating) and the role's vars/main.yml templated over it
  the same way. One play run proves the in-process config is the one the play writes.
- The configs are validated by the kind tools `make setup` builds from sigs.k8s.io/kind v0.32.0
  (tools/kind): kind-config-check runs kind's own loader (strict decoding of the v1alpha4 config),
  defaults and semantic checks, the steps `kind create cluster` runs before it creates anything; the
  kind CLI itself decodes the config before it needs an engine (its semantic checks only run once an
  engine has answered, see tools/kind/cmd/kind-config-check/main.go).
- playbooks/kind.yml runs where only a play proves it: render mode writes the config (and its copy),
  a second run changes nothing, absent removes it and changes nothing in check mode; apply mode stops
  at its check for kind and an engine (the real kind answers `kind version`).
- The role's decisions on what kind and the engine report (tools, an existing cluster, the
  kubeconfig) are its vars/main.yml templated in-process over those reports.

No container engine runs here, so no cluster is created: the full create/check/delete path runs in
molecule/kind, on a machine with Docker. Bad settings (image tag, name, listen address, wait, two
settings on one NodePort, two NodePorts on one host port) are unit tests:
tests/unit/plugins/plugin_utils/test_settings.py (kind-*) and test_plan_checks.py.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.agentgateway.observability.plugins.plugin_utils.kind_config import cluster_config, port_plan
from support import planner
from support.fixtures import REPO, VENV_BIN, ansible_env, render_playbook, snapshot
from support.programs import programs_dir
from support.session import shared
from support.tools import tool

KIND_PLAYBOOK = REPO / "playbooks" / "kind.yml"
IMAGE = "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
DEFAULT_MAPPINGS = {(30080, 30080), (30088, 8080), (30090, 30090), (30091, 30091), (30200, 30200)}


def render_kind(out, extra_vars=None, check=True, args=()):
    return render_playbook(KIND_PLAYBOOK, out, extra_vars, check=check, args=args)


def mappings(config):
    return {(m["containerPort"], m["hostPort"]) for m in config["nodes"][0].get("extraPortMappings", [])}


def node_ports_in(documents):
    """Every nodePort anywhere in the given documents: Helm values and Kubernetes objects alike."""
    found = set()

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "nodePort" and isinstance(item, int):
                    found.add(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for document in documents:
        walk(document)
    return found


def rendered_documents(render_dir):
    return [yaml.safe_load(p.read_text(encoding="utf-8"))
            for p in sorted((render_dir / "helm").rglob("*.yaml")) + sorted((render_dir / "manifests").rglob("*.yaml"))]


def kind_check(*paths):
    return subprocess.run([tool("kind-config-check")] + [str(p) for p in paths], capture_output=True, text=True,
                          timeout=60, check=False)


# ---- the role's values, in-process ---------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _site_plan(settings_json):
    return planner.plan_site(dict(json.loads(settings_json), agw_obs_render_dir="/render"))


def site_plan(settings=None):
    """{role: part} of the roles kind.yml plans for ``settings`` (the site's roles but the verification)."""
    return _site_plan(json.dumps(settings or {}, sort_keys=True))


def role_value(name, inputs=None, settings=None):
    """Variable ``name`` of the kind_cluster role (its vars/main.yml) over the site's plan for ``settings``.

    ``inputs`` are what only the role reads (the probes' registered results, kind_cluster_kubeconfig).
    """
    variables = dict(settings or {})
    variables.update(inputs or {})
    variables["_agw_obs_plans"] = site_plan(settings)
    return planner.value("kind_cluster", name, variables)


def planned_config(settings=None):
    """(the config text kind.yml would write, the same parsed) for ``settings``."""
    text = role_value("_kind_cluster_config_text", settings=settings)
    return text, yaml.safe_load(text)


# ---- render mode: one run of playbooks/kind.yml, shared by the session --------------------------------

@pytest.fixture(scope="module")
def kind_render(request):
    """playbooks/kind.yml rendered once per session, with kind_cluster_config_file set (read-only)."""
    def build(path):
        (path / "copy").mkdir()
        render_kind(path / "render", {"kind_cluster_config_file": str(path / "copy" / "kind.yaml")})
    return shared(request.config, "kind-render", build)


@pytest.fixture(scope="module")
def default_kind_config(kind_render):
    return kind_render / "render" / "kind" / "agw-obs.yaml"


def test_the_play_writes_the_config_the_sites_plan_gives(kind_render, default_kind_config, rendered_site):
    # The same settings rendered by site.yml: whatever NodePorts the roles put into their Services and
    # chart values, the kind config maps exactly those.
    text = default_kind_config.read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    stack_ports = node_ports_in(rendered_documents(rendered_site))
    assert {c for c, _h in mappings(config)} == stack_ports == {30080, 30088, 30090, 30091, 30200}
    # the gateway listener goes to traffic_base_url's port (http://localhost:8080), the rest to themselves
    assert mappings(config) == DEFAULT_MAPPINGS
    node = config["nodes"][0]
    assert node["image"] == IMAGE and node["role"] == "control-plane"
    assert {m["listenAddress"] for m in node["extraPortMappings"]} == {"127.0.0.1"}
    assert "127.0.0.1:8080 -> NodePort 30088, gateway listener (gateway_observability_listener_node_port; " \
           "host port from traffic_base_url)" in text
    # what the in-process plan gives for the same settings, byte for byte; and the copy
    assert planned_config()[0] == text
    # the NodePorts the deploy path checks across the parts are the ones kind maps
    site = planner.site(site_plan())
    assert cluster_config(port_plan(site.node_ports(), site.host_ports())["mappings"], "agw-obs", IMAGE) == config
    assert (kind_render / "copy" / "kind.yaml").read_text(encoding="utf-8") == text


VARIATIONS = {
    "settings": {
        "grafana_node_port": 30300,
        "prometheus_node_port": 30301,
        "tempo_query_node_port_enabled": False,
        "gateway_observability_metrics_service_enabled": False,
        "traffic_base_url": "http://127.0.0.1:9080",
        "kind_cluster_name": "other",
        "kind_cluster_listen_address": "0.0.0.0",
    },
    "gateway-elsewhere": {"traffic_base_url": "http://gateway.example.com:8080"},
    "production": {"agw_obs_profile": "production"},
}


@pytest.fixture(scope="module")
def variations(tmp_path_factory):
    """{name: (settings, config path, parsed config)}: each variation's config, planned in-process."""
    out = tmp_path_factory.mktemp("kind-variations")
    configs = {}
    for name, settings in VARIATIONS.items():
        text, config = planned_config(settings)
        path = out / ("%s.yaml" % name)
        path.write_text(text, encoding="utf-8")
        configs[name] = (settings, path, config)
    return configs


def test_the_generated_configs_pass_kinds_own_validation(default_kind_config, variations):
    proc = kind_check(default_kind_config, *[path for _s, path, _c in variations.values()])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("valid kind config") == 1 + len(variations), proc.stdout


def test_the_mappings_follow_the_settings(variations):
    _settings, _path, config = variations["settings"]
    assert config["name"] == "other"
    assert mappings(config) == {(30300, 30300), (30301, 30301), (30088, 9080)}
    assert {m["listenAddress"] for m in config["nodes"][0]["extraPortMappings"]} == {"0.0.0.0"}


def test_a_gateway_reached_elsewhere_keeps_its_node_port_on_the_host(variations):
    _settings, _path, config = variations["gateway-elsewhere"]
    assert mappings(config) == DEFAULT_MAPPINGS - {(30088, 8080)} | {(30088, 30088)}


def test_production_profile_uses_no_node_port(variations):
    settings, _path, config = variations["production"]
    assert "extraPortMappings" not in config["nodes"][0]
    documents = planner.site(site_plan(settings)).documents()
    assert node_ports_in(yaml.safe_load(text) for text in documents.values()) == set()


# ---- what only a play proves: idempotence, check mode, removal -------------------------------------------

def copy_of(kind_render, tmp_path):
    """A copy of the shared render (and the config file copy) to run the play again over."""
    shutil.copytree(kind_render / "render", tmp_path / "render")
    shutil.copytree(kind_render / "copy", tmp_path / "copy")
    return tmp_path


def test_second_render_changes_nothing(kind_render, tmp_path):
    root = copy_of(kind_render, tmp_path)
    before = snapshot(root)
    proc = render_kind(root / "render", {"kind_cluster_config_file": str(root / "copy" / "kind.yaml")})
    assert "changed=0" in proc.stdout
    assert snapshot(root) == before


def test_absent_in_render_mode_removes_the_config_and_check_mode_removes_nothing(kind_render, tmp_path):
    root = copy_of(kind_render, tmp_path)
    before = snapshot(root)
    proc = render_kind(root / "render", {"kind_cluster_state": "absent"}, args=["--check"])
    assert re.search(r"changed=[1-9]", proc.stdout), "check mode reports the removal it would make"
    assert snapshot(root) == before
    render_kind(root / "render", {"kind_cluster_state": "absent"})
    assert not (root / "render" / "kind" / "agw-obs.yaml").exists()


# ---- kind's own validation refuses broken configs ------------------------------------------------------

def broken(default_kind_config, tmp_path, change):
    config = yaml.safe_load(default_kind_config.read_text(encoding="utf-8"))
    change(config)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def test_kind_refuses_an_unknown_field(default_kind_config, tmp_path):
    path = broken(default_kind_config, tmp_path,
                  lambda c: c["nodes"][0]["extraPortMappings"][0].update({"hostIP": "127.0.0.1"}))
    proc = kind_check(path)
    assert proc.returncode == 1
    assert "unable to decode config" in proc.stderr and "field hostIP not found" in proc.stderr


def test_kind_refuses_a_duplicate_host_port(default_kind_config, tmp_path):
    def duplicate(config):
        ports = config["nodes"][0]["extraPortMappings"]
        ports[1]["hostPort"] = ports[0]["hostPort"]
    proc = kind_check(broken(default_kind_config, tmp_path, duplicate))
    assert proc.returncode == 1
    assert "port mapping with same listen address, port and protocol already configured" in proc.stderr
    assert "127.0.0.1:30080/TCP" in proc.stderr


def test_kind_refuses_a_protocol_and_a_port_it_does_not_know(default_kind_config, tmp_path):
    proc = kind_check(broken(default_kind_config, tmp_path,
                             lambda c: c["nodes"][0]["extraPortMappings"][0].update({"protocol": "HTTP"})))
    assert proc.returncode == 1 and "Unknown PortMappingProtocol" in proc.stderr
    proc = kind_check(broken(default_kind_config, tmp_path,
                             lambda c: c["nodes"][0]["extraPortMappings"][0].update({"hostPort": 70000})))
    assert proc.returncode == 1 and "invalid hostPort" in proc.stderr


def no_engine_env(*keep):
    """PATH with only the named folders: no docker, no podman."""
    return {"PATH": os.pathsep.join(keep), "HOME": os.environ.get("HOME", "/tmp")}


def test_the_kind_cli_decodes_the_config_before_it_needs_an_engine(default_kind_config, tmp_path):
    kind = tool("kind")
    version = subprocess.run([kind, "version"], capture_output=True, text=True, timeout=30, check=True).stdout
    assert version.startswith("kind v0.32.0 ")
    # PATH holds kind alone: whatever this machine runs, no cluster can be created by this test.
    env = no_engine_env(os.path.dirname(kind))
    bad = broken(default_kind_config, tmp_path,
                 lambda c: c["nodes"][0]["extraPortMappings"][0].update({"hostIP": "127.0.0.1"}))
    proc = subprocess.run([kind, "create", "cluster", "--name", "agw-obs-test", "--config", str(bad)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "unable to decode config" in proc.stderr, proc.stderr
    proc = subprocess.run([kind, "create", "cluster", "--name", "agw-obs-test", "--config", str(default_kind_config)],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    # the generated config decodes; kind stops at the engine it cannot find
    assert proc.returncode != 0
    assert "unable to decode config" not in proc.stderr and "docker" in proc.stderr, proc.stderr


# ---- apply mode without kind or a container engine ---------------------------------------------------

def run_kind_apply(path, extra_vars=None):
    """playbooks/kind.yml in apply mode, with PATH = the venv and ``path`` only."""
    cmd = [str(VENV_BIN / "ansible-playbook"), str(KIND_PLAYBOOK)]
    for key, value in (extra_vars or {}).items():
        cmd += ["-e", json.dumps({key: value})]
    proc = subprocess.run(cmd, cwd=REPO, env=ansible_env(PATH=os.pathsep.join([str(VENV_BIN), path])),
                          capture_output=True, text=True, timeout=300, check=False)
    proc.stdout += proc.stderr
    return proc


def test_without_kind_or_engine_it_stops_at_once_and_says_what_is_missing(tmp_path):
    proc = run_kind_apply(programs_dir(tmp_path / "bin"))
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    for text in ("kind is missing: kind_cluster_kind_binary=kind could not be run",
                 "go install sigs.k8s.io/kind@v0.32.0",
                 "No container engine answers", "docker could not be run", "podman could not be run",
                 "agw_obs_render_dir", "molecule test -s apiserver"):
        assert text in out, (text, out[-3000:])
    # nothing after the check ran: not even the site's plan
    assert "Plan the site's roles" not in proc.stdout


def test_a_kind_of_another_version_and_a_docker_without_its_daemon_are_named(tmp_path):
    """The real kind v0.32.0 against kind_cluster_kind_version=v0.31.0; the docker CLI, when there is one."""
    docker = shutil.which("docker")
    daemon = bool(docker) and subprocess.run([docker, "info"], capture_output=True, timeout=30,
                                             check=False).returncode == 0
    extra = [tool("kind")] + ([docker] if docker else [])
    proc = run_kind_apply(programs_dir(tmp_path / "bin", extra=extra), {"kind_cluster_kind_version": "v0.31.0"})
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert 'kind_cluster_kind_version=v0.31.0 is required, but kind reports "kind v0.32.0' in out, out[-3000:]
    assert "kind is missing" not in out   # kind was found; only its version is refused
    if not docker:
        assert "docker could not be run" in out, out[-3000:]
    elif not daemon:
        assert "docker failed: Cannot connect to the Docker daemon" in out, out[-3000:]
    assert "Plan the site's roles" not in proc.stdout


# ---- the role's decisions, from what kind and the engine report (vars/main.yml, in-process) -----------

KIND_V0_32 = {"rc": 0, "stdout": "kind v0.32.0 go1.26.8 linux/amd64", "stderr_lines": []}


def test_a_running_docker_and_kind_v0_32_pass_the_tool_check():
    inputs = {"_kind_cluster_kind": KIND_V0_32, "_kind_cluster_docker": {"rc": 0, "stderr_lines": []}}
    assert role_value("_kind_cluster_tool_problems", inputs) == []
    assert role_value("_kind_cluster_engine", inputs) == "docker"
    assert role_value("_kind_cluster_env", inputs) == {}


def test_podman_is_taken_when_docker_does_not_answer():
    inputs = {"_kind_cluster_kind": KIND_V0_32,
              "_kind_cluster_docker": {"rc": 1, "stderr_lines": ["Cannot connect to the Docker daemon"]},
              "_kind_cluster_podman": {"rc": 0, "stderr_lines": []}}
    assert role_value("_kind_cluster_tool_problems", inputs) == []
    assert role_value("_kind_cluster_engine", inputs) == "podman"
    assert role_value("_kind_cluster_env", inputs) == {"KIND_EXPERIMENTAL_PROVIDER": "podman"}


def inspect_output(*bindings):
    # `docker inspect <node>` (Docker Engine API ContainerInspect, HostConfig.PortBindings)
    ports = {"6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "39001"}]}
    ports.update({"%d/tcp" % c: [{"HostIp": "127.0.0.1", "HostPort": str(h)}] for c, h in bindings})
    return json.dumps([{"Name": "/agw-obs-control-plane", "HostConfig": {"PortBindings": ports}}])


def test_an_existing_cluster_that_maps_everything_passes():
    inputs = {"_kind_cluster_clusters": {"stdout_lines": ["other", "agw-obs"]},
              "_kind_cluster_inspect": {"stdout": inspect_output(*DEFAULT_MAPPINGS)}}
    assert role_value("_kind_cluster_exists", inputs) is True
    assert role_value("_kind_cluster_missing", inputs) == []


def test_an_existing_cluster_without_a_mapping_fails_naming_the_setting():
    inputs = {"_kind_cluster_clusters": {"stdout_lines": ["agw-obs"]},
              "_kind_cluster_inspect": {"stdout": inspect_output(*(DEFAULT_MAPPINGS - {(30090, 30090)}))}}
    message = " ".join(role_value("_kind_cluster_missing_message", inputs).split())
    assert message == (
        "kind cluster agw-obs exists but does not map prometheus_node_port=30090 (Prometheus, on host port 30090)."
        " kind cannot add port mappings to a cluster that exists: delete it (kind_cluster_state=absent, or kind"
        " delete cluster --name agw-obs) and run again, or set those settings to ports it maps.")


def test_a_missing_cluster_is_created_with_the_generated_config(default_kind_config):
    inputs = {"_kind_cluster_clusters": {"stdout_lines": ["other"]}, "kind_cluster_kubeconfig": "/tmp/kc"}
    assert role_value("_kind_cluster_exists", inputs) is False
    assert role_value("_kind_cluster_create_argv", inputs) == [
        "kind", "create", "cluster", "--name", "agw-obs", "--config", "-", "--wait", "5m", "--kubeconfig", "/tmp/kc"]
    # kind reads on stdin the config render mode writes (checked by kind's loader above)
    assert role_value("_kind_cluster_config_text", inputs) == default_kind_config.read_text(encoding="utf-8")


def kubeconfig(server, name="kind-agw-obs"):
    return {"apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": "Q0E="}}],
            "users": [{"name": name, "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}


@pytest.mark.parametrize("file_config, current", [
    (None, False),                                                     # no file yet
    ({"clusters": [], "users": [], "contexts": []}, False),             # file without the context
    (kubeconfig("https://127.0.0.1:39001"), True),                      # the same entries
    (kubeconfig("https://127.0.0.1:40000"), False),                     # a recreated cluster: new port
], ids=["no-file", "other-contexts", "current", "stale"])
def test_the_kubeconfig_is_exported_only_when_it_is_not_current(file_config, current):
    inputs = {"_kind_cluster_kubeconfig_kind": {"stdout": yaml.safe_dump(kubeconfig("https://127.0.0.1:39001"))},
              "_kind_cluster_kubeconfig_file": {}}
    if file_config is not None:
        other = {"name": "prod", "cluster": {"server": "https://prod"}}
        file_config = dict(file_config, clusters=file_config["clusters"] + [other])
        inputs["_kind_cluster_kubeconfig_file"] = {
            "content": base64.b64encode(yaml.safe_dump(file_config).encode()).decode()}
    assert role_value("_kind_cluster_kubeconfig_current", inputs) is current
