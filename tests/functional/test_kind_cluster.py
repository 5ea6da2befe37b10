"""The kind_cluster role (playbooks/kind.yml): the generated kind config, checked by kind v0.32.0's own code.

No container engine runs here, so no cluster is created: the role runs in render mode (it writes the
kind config it would use) and, in apply mode, up to its check for kind and an engine. The config is
validated by the kind tools `make setup` builds from sigs.k8s.io/kind v0.32.0 (tools/kind):
- kind-config-check runs kind's own loader (strict decoding of the v1alpha4 config), defaults and
  semantic checks, the steps `kind create cluster` runs before it creates anything;
- the kind CLI itself, which decodes the config before it needs an engine (its semantic checks only
  run once an engine has answered, see tools/kind/cmd/kind-config-check/main.go).
The full create/check/delete path runs in molecule/kind, on a machine with Docker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from support.fixtures import REPO, VENV_BIN, ansible_env, render_playbook, render_site, run_playbook, snapshot
from support.programs import programs_dir
from support.tools import tool

KIND_PLAYBOOK = REPO / "playbooks" / "kind.yml"
IMAGE = "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"


def render_kind(out, extra_vars=None, check=True, args=()):
    return render_playbook(KIND_PLAYBOOK, out, extra_vars, check=check, args=args)


def kind_config(out, name="agw-obs"):
    return yaml.safe_load((out / "kind" / ("%s.yaml" % name)).read_text(encoding="utf-8"))


def mappings(config):
    return {(m["containerPort"], m["hostPort"]) for m in config["nodes"][0].get("extraPortMappings", [])}


def node_ports_in(render_dir):
    """Every nodePort anywhere in the rendered stack: Helm values and Kubernetes objects alike."""
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

    for path in list((render_dir / "helm").rglob("*.yaml")) + list((render_dir / "manifests").rglob("*.yaml")):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return found


def kind_check(*paths):
    return subprocess.run([tool("kind-config-check")] + [str(p) for p in paths], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture(scope="module")
def default_kind_config(tmp_path_factory):
    out = tmp_path_factory.mktemp("kind-default")
    render_kind(out)
    return out / "kind" / "agw-obs.yaml"


def test_one_mapping_for_every_node_port_the_rendered_stack_uses(tmp_path, default_kind_config):
    # The same settings rendered by site.yml: whatever NodePorts the roles put into their Services and
    # chart values, the kind config maps exactly those.
    render_site(tmp_path)
    stack_ports = node_ports_in(tmp_path)
    config = yaml.safe_load(default_kind_config.read_text(encoding="utf-8"))
    assert {c for c, _h in mappings(config)} == stack_ports
    assert stack_ports == {30080, 30088, 30090, 30091, 30200}
    # the gateway listener goes to traffic_base_url's port (http://localhost:8080), the rest to themselves
    assert mappings(config) == {(30080, 30080), (30088, 8080), (30090, 30090), (30091, 30091), (30200, 30200)}
    node = config["nodes"][0]
    assert node["image"] == IMAGE and node["role"] == "control-plane"
    assert {m["listenAddress"] for m in node["extraPortMappings"]} == {"127.0.0.1"}


def test_the_generated_config_passes_kinds_own_validation(default_kind_config):
    proc = kind_check(default_kind_config)
    assert proc.returncode == 0, proc.stderr
    assert "valid kind config" in proc.stdout


def test_the_mappings_follow_the_settings(tmp_path):
    variables = {
        "grafana_node_port": 30300,
        "prometheus_node_port": 30301,
        "tempo_query_node_port_enabled": False,
        "gateway_observability_metrics_service_enabled": False,
        "traffic_base_url": "http://127.0.0.1:9080",
        "kind_cluster_name": "other",
        "kind_cluster_listen_address": "0.0.0.0",
    }
    render_kind(tmp_path, variables)
    config = kind_config(tmp_path, "other")
    assert config["name"] == "other"
    assert mappings(config) == {(30300, 30300), (30301, 30301), (30088, 9080)}
    assert {m["listenAddress"] for m in config["nodes"][0]["extraPortMappings"]} == {"0.0.0.0"}
    assert kind_check(tmp_path / "kind" / "other.yaml").returncode == 0


def test_a_gateway_reached_elsewhere_keeps_its_node_port_on_the_host(tmp_path):
    render_kind(tmp_path, {"traffic_base_url": "http://gateway.example.com:8080"})
    assert (30088, 30088) in mappings(kind_config(tmp_path))


def test_production_profile_uses_no_node_port(tmp_path):
    render_kind(tmp_path, {"agw_obs_profile": "production"})
    config = kind_config(tmp_path)
    assert "extraPortMappings" not in config["nodes"][0]
    assert kind_check(tmp_path / "kind" / "agw-obs.yaml").returncode == 0


def test_second_render_changes_nothing_and_check_mode_writes_nothing(tmp_path):
    render_kind(tmp_path)
    before = snapshot(tmp_path)
    proc = render_kind(tmp_path)
    assert "changed=0" in proc.stdout
    assert snapshot(tmp_path) == before
    fresh = tmp_path / "fresh"
    render_kind(fresh, args=["--check"])
    assert not fresh.exists() or snapshot(fresh) == {}


def test_absent_in_render_mode_removes_the_config(tmp_path):
    render_kind(tmp_path)
    render_kind(tmp_path, {"kind_cluster_state": "absent"})
    assert not (tmp_path / "kind" / "agw-obs.yaml").exists()


def test_config_file_copy(tmp_path, default_kind_config):
    copy = tmp_path / "copy" / "kind.yaml"
    (tmp_path / "copy").mkdir()
    render_kind(tmp_path / "r", {"kind_cluster_config_file": str(copy)})
    assert copy.read_text(encoding="utf-8") == default_kind_config.read_text(encoding="utf-8")


@pytest.mark.parametrize("extra_vars, names", [
    # the tutorial's collision: Grafana and the gateway both on 30080
    ({"gateway_observability_listener_node_port": 30080},
     ["NodePort 30080", "grafana_node_port=30080 (Grafana)", "gateway_observability_listener_node_port=30080"]),
    # two NodePorts would listen on one host port
    ({"traffic_base_url": "http://localhost:30090"},
     ["host port 30090", "prometheus_node_port=30090 (Prometheus)", "traffic_base_url"]),
    ({"kind_cluster_node_image": "kindest/node:v1.36.1"}, ["kind_cluster_node_image", "pinned by digest"]),
    ({"kind_cluster_name": "Agw_Obs"}, ["kind_cluster_name"]),
    ({"kind_cluster_listen_address": "localhost"}, ["kind_cluster_listen_address"]),
    ({"kind_cluster_wait": "five minutes"}, ["kind_cluster_wait"]),
], ids=["node-port-collision", "host-port-collision", "image-tag", "name", "listen-address", "wait"])
def test_bad_settings_fail_before_the_config_is_written(tmp_path, extra_vars, names):
    proc = render_kind(tmp_path, extra_vars, check=False)
    assert proc.returncode != 0
    for name in names:
        assert name in proc.stdout, (name, proc.stdout[-3000:])
    assert not (tmp_path / "kind").exists()


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
    """PATH with only the named programs (symlinked into a fresh folder): no docker, no podman."""
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

def path_without_engines(tmp_path, *extra):
    return programs_dir(tmp_path / "bin", extra=extra)


def run_kind_apply(extra_vars=None, path=None):
    """playbooks/kind.yml in apply mode, with PATH = the venv and ``path`` only."""
    cmd = [str(VENV_BIN / "ansible-playbook"), str(KIND_PLAYBOOK)]
    for key, value in (extra_vars or {}).items():
        cmd += ["-e", json.dumps({key: value})]
    proc = subprocess.run(cmd, cwd=REPO, env=ansible_env(PATH=os.pathsep.join([str(VENV_BIN), path])),
                          capture_output=True, text=True, timeout=300, check=False)
    proc.stdout += proc.stderr
    return proc


def test_without_kind_or_engine_it_stops_at_once_and_says_what_is_missing(tmp_path):
    proc = run_kind_apply(path=path_without_engines(tmp_path))
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    for text in ("kind is missing: kind_cluster_kind_binary=kind could not be run",
                 "go install sigs.k8s.io/kind@v0.32.0",
                 "No container engine answers", "docker could not be run", "podman could not be run",
                 "agw_obs_render_dir", "molecule test -s apiserver"):
        assert text in out, (text, out[-3000:])
    # nothing after the check ran: not even the NodePort collection
    assert "Collect the NodePorts" not in proc.stdout


def test_a_docker_without_its_daemon_is_no_engine(tmp_path):
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("no docker CLI on this machine")
    if subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False).returncode == 0:
        pytest.skip("docker's daemon answers on this machine: the kind scenario covers it")
    proc = run_kind_apply(path=path_without_engines(tmp_path, docker, tool("kind")))
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert "docker failed: Cannot connect to the Docker daemon" in out, out[-3000:]
    assert "kind is missing" not in out   # kind v0.32.0 was found and accepted


def test_a_kind_of_another_version_is_refused(tmp_path):
    proc = run_kind_apply({"kind_cluster_kind_version": "v0.31.0"}, path=path_without_engines(tmp_path, tool("kind")))
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert 'kind_cluster_kind_version=v0.31.0 is required, but kind reports "kind v0.32.0' in out, out[-3000:]


# ---- the role's decisions on an existing cluster, from what kind and the engine report -----------------

WANTED = ["_kind_cluster_tool_problems", "_kind_cluster_engine", "_kind_cluster_env", "_kind_cluster_exists",
          "_kind_cluster_missing", "_kind_cluster_missing_message", "_kind_cluster_create_argv",
          "_kind_cluster_config_text", "_kind_cluster_kubeconfig_current"]


def role_vars(tmp_path, inputs, wanted=None):
    """Evaluate the role's internal values (vars/main.yml) for the given probe results and facts."""
    out = tmp_path / "values.json"
    if wanted is None:
        wanted = [k for k in WANTED if k != "_kind_cluster_kubeconfig_current" or "_kind_cluster_kubeconfig_kind" in inputs]
    run_playbook(REPO / "tests" / "functional" / "playbooks" / "kind_cluster_vars.yml",
                 dict(inputs, wanted=wanted, values_file=str(out)))
    return json.loads(out.read_text(encoding="utf-8"))


NODE_PORTS = [
    {"setting": "grafana_node_port", "port": 30080, "what": "Grafana"},
    {"setting": "prometheus_node_port", "port": 30090, "what": "Prometheus"},
    {"setting": "gateway_observability_listener_node_port", "port": 30088, "what": "gateway listener"},
]
HOST_PORTS = [{"setting": "traffic_base_url", "url": "http://localhost:8080",
               "node_port_setting": "gateway_observability_listener_node_port"}]


def inspect_output(*bindings):
    # `docker inspect <node>` (Docker Engine API ContainerInspect, HostConfig.PortBindings)
    ports = {"6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "39001"}]}
    ports.update({"%d/tcp" % c: [{"HostIp": "127.0.0.1", "HostPort": str(h)}] for c, h in bindings})
    return json.dumps([{"Name": "/agw-obs-control-plane", "HostConfig": {"PortBindings": ports}}])


def test_a_running_docker_and_kind_v0_32_pass_the_tool_check(tmp_path):
    values = role_vars(tmp_path, {
        "_kind_cluster_kind": {"rc": 0, "stdout": "kind v0.32.0 go1.26.8 linux/amd64", "stderr_lines": []},
        "_kind_cluster_docker": {"rc": 0, "stderr_lines": []},
    })
    assert values["_kind_cluster_tool_problems"] == []
    assert values["_kind_cluster_engine"] == "docker" and values["_kind_cluster_env"] == {}


def test_podman_is_taken_when_docker_does_not_answer(tmp_path):
    values = role_vars(tmp_path, {
        "_kind_cluster_kind": {"rc": 0, "stdout": "kind v0.32.0 go1.26.8 linux/amd64", "stderr_lines": []},
        "_kind_cluster_docker": {"rc": 1, "stderr_lines": ["Cannot connect to the Docker daemon"]},
        "_kind_cluster_podman": {"rc": 0, "stderr_lines": []},
    })
    assert values["_kind_cluster_tool_problems"] == []
    assert values["_kind_cluster_engine"] == "podman"
    assert values["_kind_cluster_env"] == {"KIND_EXPERIMENTAL_PROVIDER": "podman"}


def test_an_existing_cluster_that_maps_everything_passes(tmp_path):
    values = role_vars(tmp_path, {
        "_agw_obs_node_ports": NODE_PORTS, "_agw_obs_host_ports": HOST_PORTS,
        "_kind_cluster_clusters": {"stdout_lines": ["other", "agw-obs"]},
        "_kind_cluster_inspect": {"stdout": inspect_output((30080, 30080), (30090, 30090), (30088, 8080))},
    })
    assert values["_kind_cluster_exists"] is True
    assert values["_kind_cluster_missing"] == []


def test_an_existing_cluster_without_a_mapping_fails_naming_the_setting(tmp_path):
    values = role_vars(tmp_path, {
        "_agw_obs_node_ports": NODE_PORTS, "_agw_obs_host_ports": HOST_PORTS,
        "_kind_cluster_clusters": {"stdout_lines": ["agw-obs"]},
        "_kind_cluster_inspect": {"stdout": inspect_output((30080, 30080), (30088, 8080))},
    })
    message = " ".join(values["_kind_cluster_missing_message"].split())
    assert message == (
        "kind cluster agw-obs exists but does not map prometheus_node_port=30090 (Prometheus, on host port 30090)."
        " kind cannot add port mappings to a cluster that exists: delete it (kind_cluster_state=absent, or kind"
        " delete cluster --name agw-obs) and run again, or set those settings to ports it maps.")


def test_a_missing_cluster_is_created_with_the_generated_config(tmp_path):
    values = role_vars(tmp_path, {
        "_agw_obs_node_ports": NODE_PORTS, "_agw_obs_host_ports": HOST_PORTS,
        "_kind_cluster_clusters": {"stdout_lines": ["other"]},
        "kind_cluster_kubeconfig": "/tmp/kc",
    })
    assert values["_kind_cluster_exists"] is False
    assert values["_kind_cluster_create_argv"] == [
        "kind", "create", "cluster", "--name", "agw-obs", "--config", "-", "--wait", "5m", "--kubeconfig", "/tmp/kc"]
    path = tmp_path / "stdin.yaml"
    path.write_text(values["_kind_cluster_config_text"], encoding="utf-8")
    assert kind_check(path).returncode == 0


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
def test_the_kubeconfig_is_exported_only_when_it_is_not_current(tmp_path, file_config, current):
    import base64

    inputs = {"_kind_cluster_kubeconfig_kind": {"stdout": yaml.safe_dump(kubeconfig("https://127.0.0.1:39001"))},
              "_kind_cluster_kubeconfig_file": {}}
    if file_config is not None:
        other = {"name": "prod", "cluster": {"server": "https://prod"}}
        file_config = dict(file_config, clusters=file_config["clusters"] + [other])
        inputs["_kind_cluster_kubeconfig_file"] = {
            "content": base64.b64encode(yaml.safe_dump(file_config).encode()).decode()}
    assert role_vars(tmp_path, inputs)["_kind_cluster_kubeconfig_current"] is current
