"""The renderer: golden scripts per target and scope, and that what it prints really fixes the cluster.

Every script is run through bash with the cluster tools (helm, kubectl, cilium, juju, sudo)
replaced by functions that record their argv and stdin, and answer the reads a script makes
(the release's chart version, the k8s charm's cluster-annotations); `juju exec` runs its
script the same way, as the unit's bash would. The recorded calls are what a user's shell
would run. Applying them to the snapshot and re-running the rules must clear the findings
the change is meant to fix, with each change made once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from istio_cilium_compat.assemble import build_snapshot
from istio_cilium_compat.cli import main
from istio_cilium_compat.manifests import load_snapshot
from istio_cilium_compat.plan import (
    Plan,
    clusterwide_probe_policy_safe,
    helm_writes,
    plan,
    probe_cidrs,
    requests_for,
)
from istio_cilium_compat.remedy import PolicyRef, Remedy
from istio_cilium_compat.render import (
    NO_APPLY,
    NO_CONFIG,
    RESULT_KEYS,
    TARGETS,
    Rendered,
    action_results,
    render,
    resolve_target,
    with_fixes,
)
from istio_cilium_compat.report import Report, Severity
from istio_cilium_compat.rules import evaluate
from istio_cilium_compat.rules.facts import Facts
from istio_cilium_compat.snapshot import DaemonSetInfo, NodeConfig, PeerAuthentication, Policy, Snapshot
from tests.clusters import (
    CILIUM_NS,
    ISTIO_NS,
    T0,
    T1,
    Obj,
    cilium_agent,
    cilium_pod,
    cnp,
    configmap,
    daemonset,
    healthy,
    istio_cni,
    namespace,
    network_policy,
    node_config,
    peer_auth,
    without,
    ztunnel,
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden" / "render"
EXAMPLES = ROOT / "examples"
SCOPES = ("changes", "full")
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

HELM_TO_KEY = {
    "socketLB.hostNamespaceOnly": "bpf-lb-sock-hostns-only",
    "cni.exclusive": "cni-exclusive",
    "bpf.masquerade": "enable-bpf-masquerade",
    "bpf.hostLegacyRouting": "enable-host-legacy-routing",
    # The chart writes enable-ztunnel only for encryption.type=ztunnel, from encryption.enabled.
    "encryption.enabled": "enable-ztunnel",
}
CILIUM_FIXED = ("CIC001", "CIC003", "CIC010", "CIC011", "CIC012")
CK_RELEASE = {"meta.helm.sh/release-name": "ck-network", "meta.helm.sh/release-namespace": "kube-system"}
HELM_LABELS = {"app.kubernetes.io/managed-by": "Helm"}
HELM_RELEASE = {"meta.helm.sh/release-name": "cilium", "meta.helm.sh/release-namespace": CILIUM_NS}
CK_IMAGE = "ghcr.io/canonical/cilium:1.19.4-ck1"
DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress"]}
CHART_VERSION = "1.17.4"
"""What the stubbed `helm get all --template` prints: the release's chart version."""
CLUSTER_ANNOTATIONS = "k8sd/v1alpha1/cilium/devices=eth+ k8sd/v1alpha1/cilium/cni-exclusive=true"
"""What the stubbed `juju config k8s cluster-annotations` prints."""
CK_CHART = f"/snap/k8s/current/k8s/manifests/charts/cilium-{CHART_VERSION}.tgz"
PROBE_V6 = "fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128"


# ----------------------------------------------------------------------------- clusters


def _set_image(objects: list[Obj], image: str, name: str = "cilium") -> None:
    for obj in objects:
        if obj["kind"] == "DaemonSet" and obj["metadata"]["name"] == name:
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = image


def _set_env(objects: list[Obj], name: str, env: dict[str, str]) -> None:
    for obj in objects:
        if obj["kind"] == "DaemonSet" and obj["metadata"]["name"] == name:
            container = obj["spec"]["template"]["spec"]["containers"][0]
            container["env"] = [{"name": k, "value": v} for k, v in env.items()]


def _helm_managed(objects: list[Obj]) -> list[Obj]:
    objects[0] = configmap(objects[0]["data"], labels=HELM_LABELS, annotations=HELM_RELEASE)
    return objects


def canonical_defaults() -> list[Obj]:
    """Canonical Kubernetes out of the box: socket LB on, hostns-only absent (CIC001)."""
    objects = healthy(bpf_lb_sock_hostns_only=None, cni_chaining_mode="portmap")
    objects[0] = configmap(objects[0]["data"], labels=HELM_LABELS, annotations=CK_RELEASE)
    _set_image(objects, CK_IMAGE)
    objects.append(configmap({}, name="k8sd-config"))
    return objects


def canonical_charmed_istio() -> list[Obj]:
    """CK with the cni-exclusive annotation set and Charmed Istio's defaults (microk8s paths, no PA)."""
    objects = canonical_defaults()
    objects[0]["data"]["cni-exclusive"] = "true"
    objects = without(without(objects, "PeerAuthentication"), "DaemonSet", "istio-cni-node")
    objects.append(
        istio_cni(
            conf="/var/snap/microk8s/current/args/cni-network",
            bin_dir="/var/snap/microk8s/current/opt/cni/bin",
        )
    )
    return objects


def helm_exclusive_nodeconfig() -> list[Obj]:
    """Helm-managed Cilium with cni-exclusive on and a node pool that undoes two needed settings."""
    objects = _helm_managed(healthy(cni_exclusive="true"))
    objects.append(
        node_config(
            "pool-a",
            {
                "bpf-lb-sock-hostns-only": "false",
                "enable-host-legacy-routing": "false",
                "enable-ipv4-masquerade": "false",  # no iptables masquerading there: BPF host routing holds
            },
        )
    )
    objects.append(node_config("pool-b", {"bpf-lb-sock": "true"}))
    return objects


def plain_cilium_namespace() -> list[Obj]:
    """Not Helm-managed, Cilium in namespace `cilium`: masquerading, its own ztunnel, deny-all, restart due."""
    data = {
        "kube-proxy-replacement": "false",
        "bpf-lb-sock": "true",
        "bpf-lb-sock-hostns-only": "true",
        "cni-exclusive": "false",
        "enable-bpf-masquerade": "true",
        "enable-ztunnel": "true",
        "enable-policy": "default",
    }
    return [
        configmap(data, namespace="cilium", written={"enable-bpf-masquerade": T1}),
        cilium_agent(namespace="cilium"),
        cilium_pod("cilium-a", T0, namespace="cilium"),
        ztunnel(),
        istio_cni(),
        namespace(ISTIO_NS, mode=None),
        namespace("bookinfo"),
        peer_auth(ISTIO_NS, mode="STRICT"),
        network_policy("bookinfo", "deny-all", DENY_ALL),
    ]


def non_default_deny_off() -> list[Obj]:
    """Cilium 1.17 with enable-non-default-deny-policies false and IPv6 on: a clusterwide probe policy
    would isolate every pod, so each isolating policy gets the allowance, for both probe addresses."""
    objects = _helm_managed(healthy(enable_non_default_deny_policies="false", enable_ipv6="true"))
    objects.append(network_policy("bookinfo", "deny-all", DENY_ALL))
    objects.append(
        cnp(
            "bookinfo",
            "frontend",
            {"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"fromEndpoints": [{}]}]},
        )
    )
    return objects


def masquerade_agent() -> list[Obj]:
    """BPF masquerading and BPF host routing with the BPF ip-masq-agent, which needs BPF masquerade:
    the fix is legacy host routing, never enable-bpf-masquerade=false (the agent would not start)."""
    return _helm_managed(
        healthy(enable_bpf_masquerade="true", enable_ip_masq_agent="true", enable_host_legacy_routing="false")
    )


def old_istio() -> list[Obj]:
    """Istio 1.21: PeerAuthentication is served as security.istio.io/v1beta1 only."""
    objects = _helm_managed(healthy(bpf_lb_sock_hostns_only="false"))
    _set_image(objects, "docker.io/istio/ztunnel:1.21.2", "ztunnel")
    _set_image(objects, "docker.io/istio/install-cni:1.21.2", "istio-cni-node")
    return objects


def _from_objects(factory: Callable[[], list[Obj]]) -> Callable[[], Snapshot]:
    return lambda: build_snapshot(factory(), source=f"test: {factory.__name__}")


def _example(folder: Path) -> Callable[[], Snapshot]:
    return lambda: load_snapshot([folder])


CASES: dict[str, Callable[[], Snapshot]] = {
    "canonical-defaults": _from_objects(canonical_defaults),
    "canonical-charmed-istio": _from_objects(canonical_charmed_istio),
    "helm-exclusive-nodeconfig": _from_objects(helm_exclusive_nodeconfig),
    "plain-cilium-namespace": _from_objects(plain_cilium_namespace),
    "non-default-deny-off": _from_objects(non_default_deny_off),
    "masquerade-agent": _from_objects(masquerade_agent),
    "old-istio": _from_objects(old_istio),
    "compatible": _from_objects(healthy),
}
if EXAMPLES.is_dir():
    for _folder in sorted(EXAMPLES.iterdir()):
        if _folder.is_dir() and not _folder.name.startswith((".", "_")):
            CASES[f"example-{_folder.name}"] = _example(_folder)

COMBOS = [(case, target, scope) for case in CASES for target in TARGETS for scope in SCOPES]


def _rendered(case: str, target: str, scope: str) -> tuple[Snapshot, Rendered]:
    snapshot = CASES[case]()
    return snapshot, render(snapshot, evaluate(snapshot), target=target, scope=scope)


def _active(snapshot: Snapshot) -> set[str]:
    return {f.id for f in evaluate(snapshot).findings if f.severity is not Severity.INFO}


# ----------------------------------------------------------------------------- shell helpers

STUBS = r"""
__rec() {
  local n f
  n=$(cat "$__OUT/.n" 2>/dev/null || echo 0)
  echo $((n + 1)) > "$__OUT/.n"
  f="$__OUT/$(printf %04d "$n")"
  printf '%s\0' "$@" > "$f.argv"
  printf '%s' "${__REMOTE:-}" > "$f.where"
  cat > "$f.stdin"
}
helm() { __rec helm "$@"; if [ "$1" = get ]; then printf '%s' "$__CHART_VERSION"; fi; }
kubectl() { __rec kubectl "$@"; }
cilium() { __rec cilium "$@"; }
sudo() { __rec sudo "$@"; if [ "$1 $2 $3" = "k8s helm get" ]; then printf '%s' "$__CHART_VERSION"; fi; }
juju() {
  __rec juju "$@"
  if [ "$1" = config ] && [ $# -eq 3 ] && [ "${3#*=}" = "$3" ]; then printf '%s\n' "$__CLUSTER_ANNOTATIONS"; fi
  if [ "$1" = exec ]; then ( __REMOTE=leader; eval "${@: -1}" ) < /dev/null; fi
}
touch() { __rec touch "$@"; }
command_not_found_handle() { __rec NOT-FOUND "$@"; return 127; }
"""


@dataclasses.dataclass(frozen=True)
class Call:
    """One command the script ran, with what it read on stdin (a heredoc) and where (`leader`: juju exec)."""

    argv: tuple[str, ...]
    stdin: str
    where: str = ""


def run_script(
    script: str,
    workdir: Path,
    *,
    chart_version: str = CHART_VERSION,
    annotations: str = CLUSTER_ANNOTATIONS,
    check: bool = True,
) -> list[Call]:
    """Run `script` in bash with the cluster tools stubbed; return their calls in order."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "calls"
    out.mkdir(exist_ok=True)
    for f in out.iterdir():
        f.unlink()
    (workdir / "script.sh").write_text(script)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "__OUT": str(out),
        "__CHART_VERSION": chart_version,
        "__CLUSTER_ANNOTATIONS": annotations,
        "LC_ALL": "C.UTF-8",
    }
    result = subprocess.run(
        ["bash", "-c", STUBS + "\nset -e\n. ./script.sh\n"],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    calls = []
    for argv_file in sorted(out.glob("*.argv")):
        raw = argv_file.read_bytes().decode()
        argv = tuple(raw.split("\0")[:-1])
        stdin = argv_file.with_suffix(".stdin").read_text()
        calls.append(Call(argv, stdin, argv_file.with_suffix(".where").read_text()))
    return calls


def bash_syntax_ok(script: str) -> None:
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"bash -n: {result.stderr}\n{script}"


HEREDOC = re.compile(r"<<(?:'(\w+)'|\\(\w+))\s*'?$")


def heredocs(script: str) -> list[str]:
    """The bodies of the quoted heredocs in `script` (also inside a `juju exec` script)."""
    bodies: list[str] = []
    lines = script.split("\n")
    i = 0
    while i < len(lines):
        match = HEREDOC.search(lines[i])
        i += 1
        if match:
            end = match[1] or match[2]
            body = []
            while lines[i].rstrip("'") != end:
                body.append(lines[i])
                i += 1
            bodies.append("\n".join(body) + "\n")
            i += 1
    return bodies


def script_lines(script: str) -> list[str]:
    """The lines bash reads as commands: comments, blanks and heredoc bodies left out."""
    kept: list[str] = []
    lines = script.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.strip() and not line.lstrip().startswith("#"):
            kept.append(line)
        match = HEREDOC.search(line)
        if match:
            end = match[1] or match[2]
            while lines[i].rstrip("'") != end:
                i += 1
            i += 1
    return kept


def remote_argv(call: Call) -> tuple[str, ...]:
    """The script a `juju exec --unit k8s/leader -- SCRIPT` runs on the unit: one word."""
    assert call.argv[:4] == ("juju", "exec", "--unit", "k8s/leader") and call.argv[4] == "--", call.argv
    assert len(call.argv) == 6, f"the remote script must be one word: {call.argv}"
    return call.argv


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def helm_overlay(values: Mapping[str, Any]) -> dict[str, str]:
    """Helm values as the cilium-config keys the chart renders from them."""
    data: dict[str, str] = {}
    for path, value in flatten(values).items():
        assert path in HELM_TO_KEY, f"unexpected Helm value {path}"
        assert isinstance(value, bool), f"{path} must be a YAML boolean, got {value!r}"
        data[HELM_TO_KEY[path]] = "true" if value else "false"
    return data


def option(argv: tuple[str, ...], *names: str) -> list[str]:
    """Values of a repeated option, as `-x V` or `--x=V`."""
    found = []
    for i, arg in enumerate(argv):
        if arg in names and i + 1 < len(argv):
            found.append(argv[i + 1])
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                found.append(arg[len(name) + 1 :])
    return found


def positional(argv: tuple[str, ...], takes_value: frozenset[str]) -> list[str]:
    """The non-option words of a command line (after its first two)."""
    words: list[str] = []
    skip = False
    ended = False
    for arg in argv[2:]:
        if skip:
            skip = False
        elif ended or not arg.startswith("-"):
            words.append(arg)
        elif arg == "--":
            ended = True
        elif arg in takes_value:
            skip = True
    return words


COMMAND_LINE = re.compile(
    r"(helm |kubectl |cilium |juju |sudo k8s |set -eu$|set -euo pipefail$|chart_version=|annotations=)"
)
HELM_VALUE_FLAGS = frozenset(
    {"-n", "--namespace", "--version", "--repo", "--set", "-f", "--values", "--template"}
)


def is_change(call: Call) -> bool:
    """Whether the call changes the cluster (reads, `juju exec` wrappers and waits do not)."""
    argv = call.argv[2:] if call.argv[:2] == ("sudo", "k8s") else call.argv
    tool, rest = argv[0], argv[1:]
    if tool == "helm":
        return rest[:1] == ("upgrade",)
    if tool == "kubectl":
        verbs = [a for a in rest if a in ("patch", "apply", "rollout", "wait", "get")]
        return bool(verbs) and verbs[0] in ("patch", "apply", "rollout")
    if tool == "cilium":
        return rest[:2] == ("config", "set")
    if tool == "set":
        return True
    if tool == "juju":
        return rest[:1] == ("config",) and "=" in rest[-1]
    raise AssertionError(f"unexpected command {call.argv}")


# ----------------------------------------------------------------------------- applying a rendering


@dataclasses.dataclass
class Applied:
    """The snapshot after the rendered commands, and what they did."""

    snapshot: Snapshot
    restarted: bool = False
    calls: list[Call] = dataclasses.field(default_factory=list)

    @property
    def argvs(self) -> list[tuple[str, ...]]:
        return [c.argv for c in self.calls]

    @property
    def changes(self) -> list[Call]:
        return [c for c in self.calls if is_change(c)]


def _json_patch(document: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 `add`, the only operation the renderer emits; a missing parent fails as kubectl does."""
    for op in ops:
        assert op["op"] == "add", op
        parts = op["path"].lstrip("/").split("/")
        target = document
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        last = parts[-1]
        if isinstance(target, list):
            assert last == "-", op
            target.append(op["value"])
        else:
            target[last] = op["value"]
    return document


def _interpret(call: Call, workdir: Path, state: dict[str, Any]) -> None:
    """Apply one recorded command to the simulated cluster in `state`."""
    argv, stdin = call.argv, call.stdin
    state["calls"].append(call)
    if state["target"] == "canonical-k8s-charm":
        # Cluster commands run on the leader; here only juju itself.
        assert call.where == "leader" or argv[0] == "juju", argv
    if argv[:2] == ("sudo", "k8s"):
        argv = argv[2:]
        if argv[0] == "set":
            assert argv[1:] == ("annotations=k8sd/v1alpha1/cilium/cni-exclusive=-",), argv
            state["pending_annotation"] = True  # k8sd re-renders ck-network without it
            state["data"]["cni-exclusive"] = "false"
            return
    elif state["target"] in ("canonical-k8s", "canonical-k8s-charm") and argv[0] in ("helm", "kubectl"):
        raise AssertionError(f"Canonical Kubernetes: {argv[0]} must run as `sudo k8s {argv[0]}`")
    tool = argv[0]
    if tool == "juju":
        if argv[1] == "exec":
            remote_argv(call)  # its commands follow, recorded as run on the leader
        elif argv[1] == "ssh":
            raise AssertionError("never stdin through juju ssh")
        elif argv[1:] == ("config", "k8s", "cluster-annotations"):
            state["annotations_read"] = True
        elif argv[1:3] == ("config", "k8s"):
            assert state.get("annotations_read"), "cluster-annotations written without reading it first"
            assert argv[3:] == ("cluster-annotations=k8sd/v1alpha1/cilium/devices=eth+",), argv
        elif argv[1:5] == ("config", "-m", state["root_ns"], "istio-k8s"):
            assert argv[5:] == ("platform=",), argv
            state["platform_fixed"] = True
        else:
            raise AssertionError(f"unexpected juju call {argv}")
    elif tool == "helm":
        if argv[1] == "get":
            assert argv[2] == "all" and option(argv, "--template"), argv
            return
        assert argv[1] == "upgrade", argv
        assert "--reuse-values" in argv, argv
        release, chart = positional(argv, HELM_VALUE_FLAGS)
        assert (release, option(argv, "-n")) == (state["release"], [state["release_ns"]]), argv
        if state["target"] == "helm":
            assert (chart, option(argv, "--repo")) == ("cilium", ["https://helm.cilium.io/"]), argv
            assert option(argv, "--version") == [CHART_VERSION], f"the chart version must be pinned: {argv}"
        else:
            assert chart == CK_CHART and not option(argv, "--version"), argv
        assert not option(argv, "-f", "--values"), argv
        for pair in option(argv, "--set"):
            path, value = pair.split("=", 1)
            state["data"].update(helm_overlay({path: yaml.safe_load(value)}))
    elif tool == "cilium":
        assert argv[1:3] == ("config", "set"), argv
        key, value = argv[-2:]
        state["data"][key] = value
        if "--restart=false" not in argv:
            state["restarted_with"] = dict(state["data"])
    elif tool == "kubectl":
        namespace = option(argv, "-n", "--namespace")
        verb_at = 3 if argv[1] in ("-n", "--namespace") else 1
        verb = argv[verb_at]
        if verb == "patch":
            resource = argv[verb_at + 1]
            if resource.startswith("ciliumnodeconfig/"):
                assert option(argv, "--type") == ["merge"], argv
                patch = json.loads(option(argv, "-p", "--patch")[0])
                state["node_patches"][(namespace[0], resource.split("/", 1)[1])] = patch["spec"]["defaults"]
                assert state["restarted_with"] is None, (
                    "a CiliumNodeConfig patched after the agents restarted"
                )
            elif resource == "configmap":
                assert argv[verb_at + 2] == "cilium-config" and option(argv, "--type") == ["merge"], argv
                assert namespace == [state["cilium_ns"]], argv
                state["data"].update(json.loads(option(argv, "-p", "--patch")[0])["data"])
            else:
                assert option(argv, "--type") == ["json"], argv
                kinds = {
                    "networkpolicy": "NetworkPolicy",
                    "ciliumnetworkpolicy": "CiliumNetworkPolicy",
                    "ciliumclusterwidenetworkpolicy": "CiliumClusterwideNetworkPolicy",
                }
                key = (kinds[resource], namespace[0] if namespace else None, argv[verb_at + 2])
                state["policy_patches"].setdefault(key, []).extend(json.loads(option(argv, "-p")[0]))
        elif verb == "wait":
            assert argv[verb_at + 1] == "configmap/cilium-config", argv
            (condition,) = option(argv, "--for")
            match = re.fullmatch(r"jsonpath=\{\.data\.([\w-]+)\}=(\w+)", condition)
            assert match, condition
            assert state["data"].get(match[1]) == match[2], f"{condition} would never hold"
        elif verb == "rollout":
            assert argv[verb_at + 1 :] == ("restart", f"daemonset/{state['agent']}"), argv
            state["restarted_with"] = dict(state["data"])
        elif verb == "apply":
            assert argv[verb_at + 1 :] == ("-f", "-"), argv
            state["applied"].extend(d for d in yaml.safe_load_all(stdin) if d)
        else:
            raise AssertionError(f"unexpected kubectl call {argv}")
    else:
        raise AssertionError(f"unexpected command {argv}")


def apply_calls(snapshot: Snapshot, calls: list[Call], target: str, workdir: Path) -> Applied:
    """Apply recorded calls to the snapshot, as the cluster would."""
    config = snapshot.cilium_config
    facts = Facts(snapshot)
    release, release_ns = facts.helm_release
    state: dict[str, Any] = {
        "target": target,
        "data": dict(config.data) if config else {},
        "cilium_ns": snapshot.cilium_namespace,
        "agent": facts.cilium_agent.name if facts.cilium_agent else "cilium",
        "release": release,
        "release_ns": release_ns,
        "root_ns": facts.root_namespace or "istio-system",
        "node_patches": {},
        "policy_patches": {},
        "applied": [],
        "platform_fixed": False,
        "restarted_with": None,
        "calls": [],
    }
    for call in calls:
        _interpret(call, workdir, state)
    if state["restarted_with"] is not None:
        assert state["restarted_with"] == state["data"], "cilium-config changed after the agents restarted"
    configs = tuple(
        dataclasses.replace(c, data=state["data"]) if c is config else c for c in snapshot.cilium_configs
    )
    node_configs = tuple(
        dataclasses.replace(
            nc, defaults={**nc.defaults, **state["node_patches"].pop((nc.namespace, nc.name), {})}
        )
        for nc in snapshot.node_configs
    )
    assert not state["node_patches"], f"patched unknown CiliumNodeConfigs: {state['node_patches']}"
    policies = []
    for policy in snapshot.policies:
        ops = state["policy_patches"].pop((policy.kind, policy.namespace, policy.name), None)
        if ops is not None:
            document = _json_patch(
                json.loads(json.dumps({"spec": policy.specs[0] if policy.paths[:1] == ("/spec",) else {}})),
                ops,
            )
            policy = dataclasses.replace(policy, specs=(document["spec"], *policy.specs[1:]))
        policies.append(policy)
    assert not state["policy_patches"], f"patched unknown policies: {state['policy_patches']}"
    peer_auths = list(snapshot.peer_authentications)
    for doc in state["applied"]:
        meta = doc["metadata"]
        if doc["kind"] == "CiliumClusterwideNetworkPolicy":
            policies.append(Policy(doc["kind"], None, meta["name"], (doc["spec"],), ("/spec",)))
        elif doc["kind"] == "PeerAuthentication":
            mode = doc["spec"]["mtls"]["mode"]
            peer_auths.insert(0, PeerAuthentication(meta["namespace"], meta["name"], None, mode))
        else:
            raise AssertionError(f"unexpected manifest {doc['kind']}")
    pods = snapshot.cilium_pods
    if state["restarted_with"] is not None:  # the agents start again, after every change above
        pods = tuple(dataclasses.replace(p, start_time="2099-01-01T00:00:00Z") for p in pods)
    istio_cni: tuple[DaemonSetInfo, ...] = snapshot.istio_cni
    if state["platform_fixed"]:  # istio-k8s with platform="" mounts the standard CNI directories
        paths = {"cni-net-dir": "/etc/cni/net.d", "cni-bin-dir": "/opt/cni/bin"}
        istio_cni = tuple(dataclasses.replace(d, host_paths=paths) for d in istio_cni)
    after = dataclasses.replace(
        snapshot,
        cilium_configs=configs,
        node_configs=node_configs,
        policies=tuple(policies),
        peer_authentications=tuple(peer_auths),
        istio_cni=istio_cni,
        cilium_pods=pods,
    )
    return Applied(after, restarted=state["restarted_with"] is not None, calls=state["calls"])


def apply_rendered(snapshot: Snapshot, rendered: Rendered, workdir: Path) -> Applied:
    """Run the whole rendered script (stubbed) and apply its effect to the snapshot."""
    return apply_calls(snapshot, run_script(rendered.text(), workdir), rendered.target, workdir)


def _plan_of(snapshot: Snapshot, report: Report, scope: str) -> Plan:
    return plan(Facts(snapshot), requests_for(report, scope), scope)


# ----------------------------------------------------------------------------- golden outputs


@pytest.mark.parametrize(("case", "target", "scope"), COMBOS)
def test_golden(case: str, target: str, scope: str) -> None:
    _, rendered = _rendered(case, target, scope)
    path = GOLDEN / f"{case}.{target}.{scope}.txt"
    text = rendered.text()
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text()


def test_no_stale_golden_files() -> None:
    expected = {f"{case}.{target}.{scope}.txt" for case, target, scope in COMBOS}
    present = {p.name for p in GOLDEN.glob("*.txt")}
    assert present <= expected, f"golden files without a case: {sorted(present - expected)}"


# ----------------------------------------------------------------------------- the script contract


@pytest.mark.parametrize(("case", "target", "scope"), COMBOS)
def test_script_is_bash_with_settings_only_in_heredocs_and_comments(
    case: str, target: str, scope: str
) -> None:
    _, rendered = _rendered(case, target, scope)
    text = rendered.text()
    bash_syntax_ok(text)
    for part in (rendered.apply, rendered.istio):
        bash_syntax_ok(part)  # each part of `render -o json` runs on its own too
    assert text.startswith("#!/usr/bin/env bash\n# istio-cilium-compat render: ")
    header = text.split("\nset -euo pipefail\n", 1)[0]
    assert all(line.startswith("#") for line in header.splitlines()), header
    if rendered.nothing_to_change:
        assert script_lines(text) == []
        return
    assert "# It changes, in this order:" in header
    assert ("# Not addressed here" in header) == bool(rendered.not_addressed)
    for line in script_lines(text):
        # Every line bash reads is a command of a known tool, an assignment of a read, or `set`:
        # no bare YAML or JSON (a `juju exec` script's own lines included).
        assert COMMAND_LINE.match(line), f"not a command: {line!r}"
    # The settings appear only commented (config) or inside heredocs / quoted arguments.
    for line in rendered.config.splitlines():
        if line.strip():
            assert f"# {line}".rstrip() in text.splitlines(), line


@pytest.mark.parametrize(("case", "target", "scope"), COMBOS)
def test_script_run_once_makes_each_change_once(case: str, target: str, scope: str, tmp_path: Path) -> None:
    snapshot = CASES[case]()
    report = evaluate(snapshot)
    rendered = render(snapshot, report, target=target, scope=scope)
    applied = apply_rendered(snapshot, rendered, tmp_path)
    changes = [(c.argv, c.stdin) for c in applied.changes]
    assert len(changes) == len(set(changes)), f"a change made twice:\n{rendered.text()}"
    if rendered.nothing_to_change:
        assert applied.calls == []
        return
    the_plan = _plan_of(snapshot, report, scope)
    tools = [c[0][2:] if c[0][:2] == ("sudo", "k8s") else c[0] for c in changes]
    helm_based = rendered.target in ("helm", "canonical-k8s", "canonical-k8s-charm")
    data = snapshot.cilium_config.data if snapshot.cilium_config else {}
    helm_values = helm_writes(rendered.target, the_plan, data)[0]
    assert sum(t[:2] == ("helm", "upgrade") for t in tools) == (1 if helm_based and helm_values else 0)
    assert sum(t[:3] == ("cilium", "config", "set") for t in tools) == (
        len(the_plan.writes) if rendered.target == "cilium-cli" else 0
    )
    patches = [t for t in tools if t[0] == "kubectl" and "patch" in t]
    assert sum("configmap" in t for t in patches) == (
        1 if rendered.target == "configmap-patch" and the_plan.writes else 0
    )
    assert sum(any(a.startswith("ciliumnodeconfig/") for a in t) for t in patches) == len(
        the_plan.node_patches
    )
    restarts = sum("rollout" in t for t in tools)
    cli_restarts = rendered.target == "cilium-cli" and bool(the_plan.writes)
    assert restarts == (1 if the_plan.restart and not cli_restarts else 0)
    annotation = [w for w in the_plan.writes if w.setting.k8sd_annotation]
    canonical = rendered.target in ("canonical-k8s", "canonical-k8s-charm")
    assert sum(t[0] == "set" for t in tools) == (len(annotation) if canonical else 0)
    charm = rendered.target == "canonical-k8s-charm"
    assert sum(t[:3] == ("juju", "config", "k8s") for t in tools) == (len(annotation) if charm else 0)
    probe = the_plan.probe
    applies = sum("apply" in t for t in tools)
    assert applies == int(the_plan.strict_mtls) + int(probe is not None and probe.mode == "clusterwide")
    policy_patches = [t for t in patches if "--type" in t and "json" in t]
    assert len(policy_patches) == (len(probe.patches) if probe and probe.mode == "per-policy" else 0)


@pytest.mark.parametrize(("case", "target", "scope"), COMBOS)
def test_applying_the_rendering_fixes_the_findings(
    case: str, target: str, scope: str, tmp_path: Path
) -> None:
    snapshot, rendered = _rendered(case, target, scope)
    before = _active(snapshot)
    applied = apply_rendered(snapshot, rendered, tmp_path)
    after = _active(applied.snapshot)
    # What the header says it addresses is fixed, and nothing it changes adds a finding.
    assert not after & set(rendered.addressed), f"still {sorted(after & set(rendered.addressed))}"
    assert after <= before, f"new findings {sorted(after - before)}"
    assert not after & set(CILIUM_FIXED) - {f for f in before if f in rendered.not_addressed}
    if before & {*CILIUM_FIXED, "CIC009"} & set(rendered.addressed):
        assert applied.restarted, "a Cilium change without an agent restart"
    for finding in rendered.addressed:
        assert finding in before
    if scope == "full" and rendered.target in ("canonical-k8s", "canonical-k8s-charm"):
        assert "CIC004" not in after


@pytest.mark.parametrize(("case", "target"), [(c, t) for c in CASES for t in TARGETS])
def test_each_fix_run_as_printed_fixes_its_finding(case: str, target: str, tmp_path: Path) -> None:
    """A finding's `fix` is its remedy rendered for the target: run alone, it clears that finding."""
    snapshot = CASES[case]()
    report = evaluate(snapshot)
    resolved = resolve_target(snapshot, target)
    rendered = render(snapshot, report, target=target)
    for finding in with_fixes(snapshot, report, target).findings:
        assert finding.fix or finding.severity is Severity.INFO, finding.id
        if finding.id not in rendered.addressed:
            continue
        bash_syntax_ok(finding.fix)
        calls = run_script(finding.fix, tmp_path / finding.id)
        assert calls, f"{finding.id}: the fix runs nothing"
        applied = apply_calls(snapshot, calls, resolved, tmp_path)
        assert finding.id not in _active(applied.snapshot), f"{finding.id} after:\n{finding.fix}"


def test_render_json_is_the_action_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = EXAMPLES / "canonical-k8s-1.36-charmed-istio"
    assert main(["render", "--manifests", str(folder), "-o", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    snapshot = load_snapshot([folder])
    rendered = render(snapshot, evaluate(snapshot))
    assert list(printed) == list(RESULT_KEYS)
    assert printed == rendered.to_dict()
    assert printed["addressed"] == ["CIC001", "CIC004", "CIC022"]
    assert printed["not_addressed"] == ["CIC019"]
    results = action_results(rendered)
    assert results == {
        k.replace("_", "-"): ", ".join(v)
        if isinstance(v, list)
        else str(v).lower()
        if isinstance(v, bool)
        else v
        for k, v in printed.items()
    }
    nothing = load_snapshot([EXAMPLES / "canonical-k8s-1.36-recommended"])
    empty = action_results(render(nothing, evaluate(nothing)))
    assert (empty["config"], empty["apply"], empty["istio"]) == (NO_CONFIG, NO_APPLY, "(no Istio change)")
    assert (empty["addressed"], empty["not-addressed"]) == ("(none)", "(none)")


# ----------------------------------------------------------------------------- every command as upstream takes it


def test_helm_pins_the_release_chart_version(tmp_path: Path) -> None:
    _, rendered = _rendered("helm-exclusive-nodeconfig", "helm", "changes")
    calls = [c.argv for c in run_script(rendered.text(), tmp_path)]
    read = calls[0]
    assert read == (
        "helm",
        "get",
        "all",
        "cilium",
        "-n",
        "kube-system",
        "--template",
        '{{if eq .Release.Chart.Metadata.Name "cilium"}}{{.Release.Chart.Metadata.Version}}{{end}}',
    )
    upgrade = calls[1]
    assert upgrade[:9] == (
        "helm",
        "upgrade",
        "cilium",
        "cilium",
        "-n",
        "kube-system",
        "--repo",
        "https://helm.cilium.io/",
        "--version",
    )
    assert upgrade[9] == CHART_VERSION
    # Nothing read (another chart, or helm failed): the script stops before any upgrade.
    stopped = run_script(rendered.text(), tmp_path / "none", chart_version="", check=False)
    assert [c.argv[:2] for c in stopped] == [("helm", "get")]


def test_helm_on_k8sd_cilium_is_rendered_for_canonical_k8s() -> None:
    snapshot = CASES["canonical-defaults"]()
    rendered = render(snapshot, evaluate(snapshot), target="helm")
    assert rendered.target == "canonical-k8s"
    assert "rendered for canonical-k8s instead" in rendered.header
    assert "helm upgrade ck-network cilium" not in rendered.text()
    assert "--repo" not in rendered.text()


def test_canonical_fixes_exactly_as_k8sd_expects(tmp_path: Path) -> None:
    snapshot, rendered = _rendered("canonical-charmed-istio", "canonical-k8s", "changes")
    calls = apply_rendered(snapshot, rendered, tmp_path).argvs
    assert calls == [
        ("sudo", "k8s", "helm", "get", "all", "ck-network", "-n", "kube-system", "--template",
         "{{.Release.Chart.Metadata.Version}}"),
        ("sudo", "k8s", "helm", "upgrade", "ck-network", CK_CHART, "-n", "kube-system", "--reuse-values",
         "--set", "socketLB.hostNamespaceOnly=true"),
        ("sudo", "k8s", "set", "annotations=k8sd/v1alpha1/cilium/cni-exclusive=-"),
        ("sudo", "k8s", "kubectl", "-n", "kube-system", "wait", "configmap/cilium-config",
         "--for=jsonpath={.data.cni-exclusive}=false", "--timeout=300s"),
        ("sudo", "k8s", "kubectl", "-n", "kube-system", "rollout", "restart", "daemonset/cilium"),
        ("juju", "config", "-m", "istio-system", "istio-k8s", "platform="),
    ]  # fmt: skip
    assert "cni.exclusive" not in rendered.apply  # k8sd owns it: the annotation is the only way


def test_canonical_charm_fixes_cni_exclusive_on_every_charm_release(tmp_path: Path) -> None:
    """cluster-annotations loses the pair (1.32, main) and `k8s set` on the leader removes it (1.33-1.35)."""
    snapshot, rendered = _rendered("canonical-charmed-istio", "canonical-k8s-charm", "changes")
    calls = run_script(rendered.text(), tmp_path)
    local = [c.argv for c in calls if c.where == ""]
    leader = [c.argv for c in calls if c.where == "leader"]
    assert [a for a in local if a[:2] == ("juju", "config")] == [
        ("juju", "config", "k8s", "cluster-annotations"),
        ("juju", "config", "k8s", "cluster-annotations=k8sd/v1alpha1/cilium/devices=eth+"),
        ("juju", "config", "-m", "istio-system", "istio-k8s", "platform="),
    ]
    assert all(a[:4] == ("juju", "exec", "--unit", "k8s/leader") for a in local if a[1] == "exec")
    assert not [a for a in local if a[0] != "juju"]
    assert [a[2:4] for a in leader if a[:2] == ("sudo", "k8s")] == [
        ("helm", "get"),
        ("helm", "upgrade"),
        ("set", "annotations=k8sd/v1alpha1/cilium/cni-exclusive=-"),
        ("kubectl", "-n"),
        ("kubectl", "-n"),
    ]
    # The option without the pair is kept as it was otherwise; without the pair it is left alone.
    untouched = run_script(rendered.text(), tmp_path / "b", annotations="a=b  c=d")
    assert ("juju", "config", "k8s", "cluster-annotations=a=b c=d") in [c.argv for c in untouched]
    assert not [c for c in calls if c.argv[:2] == ("juju", "ssh")]
    apply_calls(snapshot, calls, "canonical-k8s-charm", tmp_path)


def test_canonical_charm_istio_side_runs_on_the_leader(tmp_path: Path) -> None:
    _, rendered = _rendered("canonical-charmed-istio", "canonical-k8s-charm", "full")
    calls = run_script(rendered.istio, tmp_path)
    applies = [c for c in calls if "apply" in c.argv]
    assert [c.where for c in applies] == ["leader", "leader"]
    assert [yaml.safe_load(c.stdin)["kind"] for c in applies] == [
        "CiliumClusterwideNetworkPolicy",
        "PeerAuthentication",
    ]
    assert all(c.argv[:5] == ("sudo", "k8s", "kubectl", "apply", "-f") for c in applies)


def test_cilium_cli_sets_each_key_once_and_restarts_once(tmp_path: Path) -> None:
    _, rendered = _rendered("plain-cilium-namespace", "cilium-cli", "changes")
    sets = [
        c.argv for c in run_script(rendered.text(), tmp_path) if c.argv[:3] == ("cilium", "config", "set")
    ]
    assert sets
    assert len({s[-2] for s in sets}) == len(sets)
    assert [("--restart=false" in s) for s in sets] == [True] * (len(sets) - 1) + [False]
    assert all(
        s[3:5] == ("-n", "cilium") and len(s) in (7, 8) for s in sets
    )  # KEY VALUE: exactly two arguments


# ----------------------------------------------------------------------------- never recommend harm


def _probe_case(version: str, **config: str | None) -> Snapshot:
    objects = _helm_managed(healthy(**config))
    _set_image(objects, f"quay.io/cilium/cilium:v{version}")
    objects.append(network_policy("bookinfo", "deny-all", DENY_ALL))
    objects.append(
        cnp(
            "bookinfo",
            "web",
            {"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"fromEndpoints": [{}]}]},
        )
    )
    return build_snapshot(objects)


@pytest.mark.parametrize(
    ("version", "config", "clusterwide"),
    [
        ("1.17.4", {}, True),  # enable-non-default-deny-policies absent: agent default true
        ("1.17.4", {"enable_non_default_deny_policies": "true"}, True),
        ("1.16.3", {"enable_non_default_deny_policies": "false"}, True),  # the key exists from 1.17 only
        ("1.17.4", {"enable_non_default_deny_policies": "false"}, False),
        ("1.19.1", {"enable_non_default_deny_policies": "0"}, False),
        ("1.15.6", {}, False),  # no enableDefaultDeny before 1.16
        ("1.15.6", {"enable_policy": "always"}, True),  # every endpoint default-deny already
    ],
)
def test_clusterwide_probe_policy_only_where_enable_default_deny_is_honoured(
    version: str, config: dict[str, str], clusterwide: bool, tmp_path: Path
) -> None:
    snapshot = _probe_case(version, **config)
    assert clusterwide_probe_policy_safe(Facts(snapshot))[0] is clusterwide
    for target in TARGETS:
        for scope in SCOPES:
            rendered = render(snapshot, evaluate(snapshot), target=target, scope=scope)
            text = rendered.text()
            assert ("CiliumClusterwideNetworkPolicy" in rendered.istio) is clusterwide, text
            assert ("  enableDefaultDeny:\n" in rendered.istio) is (clusterwide and version >= "1.16"), text
            if "CIC005" in _active(snapshot):
                assert ("--type json" in rendered.istio) is (not clusterwide), text
    rendered = render(snapshot, evaluate(snapshot), target="helm")
    applied = apply_rendered(snapshot, rendered, tmp_path)
    if not clusterwide:
        patched: dict[tuple[str, str], Any] = {
            (p.kind, p.name): p.specs[0] for p in applied.snapshot.policies
        }
        web = patched[("CiliumNetworkPolicy", "web")]
        assert web["ingress"][-1] == {"fromCIDR": ["169.254.7.127/32"]}
        deny = patched[("NetworkPolicy", "deny-all")]
        assert deny["ingress"] == [{"from": [{"ipBlock": {"cidr": "169.254.7.127/32"}}]}]
    # Nothing the rendering does isolates a pod that was not isolated before: CIC018 never follows.
    assert "CIC018" not in _active(applied.snapshot)


def test_unknown_cilium_version_gets_the_per_policy_allowance() -> None:
    objects = [o for o in healthy() if o["kind"] != "DaemonSet" or o["metadata"]["name"] != "cilium"]
    objects.append(network_policy("bookinfo", "deny-all", DENY_ALL))
    snapshot = build_snapshot(objects)
    assert "CIC005" in _active(snapshot)
    rendered = render(snapshot, evaluate(snapshot), target="configmap-patch")
    assert "CiliumClusterwideNetworkPolicy" not in rendered.istio
    assert "kubectl -n bookinfo patch networkpolicy deny-all --type json" in rendered.istio
    assert "the Cilium version is unknown" in rendered.istio


def test_probe_addresses_follow_ipv6_and_istio_overrides(tmp_path: Path) -> None:
    assert probe_cidrs(Facts(CASES["non-default-deny-off"]())) == ("169.254.7.127/32", PROBE_V6)
    objects = non_default_deny_off()
    _set_env(objects, "istio-cni-node", {"HOST_PROBE_SNAT_IP": "169.254.7.99"})
    snapshot = build_snapshot(objects)
    assert probe_cidrs(Facts(snapshot)) == ("169.254.7.99/32", PROBE_V6)
    rendered = render(snapshot, evaluate(snapshot), target="helm")
    applied = apply_rendered(snapshot, rendered, tmp_path)
    specs: dict[str, Any] = {p.name: p.specs[0] for p in applied.snapshot.policies}
    assert specs["frontend"]["ingress"][-1] == {"fromCIDR": ["169.254.7.99/32", PROBE_V6]}
    assert specs["deny-all"]["ingress"] == [
        {"from": [{"ipBlock": {"cidr": "169.254.7.99/32"}}, {"ipBlock": {"cidr": PROBE_V6}}]}
    ]
    v4_only = build_snapshot(_helm_managed(healthy()))
    assert probe_cidrs(Facts(v4_only)) == ("169.254.7.127/32",)


def test_policy_specs_lists_are_patched_at_their_index() -> None:
    extra = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "multi", "namespace": "bookinfo"},
        "specs": [
            {"endpointSelector": {}, "egress": [{"toEntities": ["world"]}]},
            {
                "endpointSelector": {"matchLabels": {"app": "db"}},
                "ingressDeny": [{"fromEntities": ["world"]}],
            },
        ],
    }
    objects = _helm_managed(healthy())
    _set_image(objects, "quay.io/cilium/cilium:v1.15.6")  # no enableDefaultDeny: per-policy allowances
    snapshot = build_snapshot([*objects, extra])
    rendered = render(snapshot, evaluate(snapshot), target="helm")
    assert '"path":"/specs/1/ingress"' in rendered.istio
    assert '"path":"/specs/0' not in rendered.istio


def test_bpf_masquerade_is_never_turned_off_where_the_agent_needs_it() -> None:
    snapshot = CASES["masquerade-agent"]()
    assert {"CIC010", "CIC011"} <= _active(snapshot)
    for target in TARGETS:
        for scope in SCOPES:
            rendered = render(snapshot, evaluate(snapshot), target=target, scope=scope)
            text = rendered.text()
            assert "bpf.masquerade=false" not in text and "enable-bpf-masquerade false" not in text
            assert '"enable-bpf-masquerade":"false"' not in text
            assert "hostLegacyRouting" in text or "enable-host-legacy-routing" in text
    # A pre-flight (no ztunnel yet): the full scope would set every value, but not this one.
    preflight = build_snapshot(without(masquerade_agent(), "DaemonSet", "ztunnel"))
    text = render(preflight, evaluate(preflight), target="helm", scope="full").text()
    assert "bpf.masquerade=false" not in text
    assert (
        "# Not written: enable-bpf-masquerade=false (CIC010): the agent does not start with it beside "
        "enable-ip-masq-agent=true."
    ) in text


def test_peer_authentication_api_follows_the_istio_version() -> None:
    old = render(CASES["old-istio"](), evaluate(CASES["old-istio"]()), target="helm", scope="full")
    assert "apiVersion: security.istio.io/v1beta1" in old.istio
    new = render(CASES["compatible"](), evaluate(CASES["compatible"]()), target="helm", scope="full")
    assert "apiVersion: security.istio.io/v1\n" in new.istio


def test_findings_addressed_lists_only_what_the_target_changes() -> None:
    snapshot = CASES["canonical-charmed-istio"]()
    report = evaluate(snapshot)
    by_target = {t: render(snapshot, report, target=t) for t in TARGETS}
    assert by_target["canonical-k8s"].addressed == ("CIC001", "CIC003", "CIC004")
    # Only Canonical targets change Istio's platform; none fixes the readiness symptom itself.
    for target in ("cilium-cli", "configmap-patch"):
        assert "CIC004" in by_target[target].not_addressed
        assert "CIC004" not in by_target[target].addressed
    assert by_target["helm"].apply == by_target["canonical-k8s"].apply  # k8sd: rendered for canonical-k8s
    example = load_snapshot([EXAMPLES / "canonical-k8s-1.36-charmed-istio"])
    for target in TARGETS:  # none fixes the readiness symptom itself
        assert "CIC019" in render(example, evaluate(example), target=target).not_addressed


# ----------------------------------------------------------------------------- API


def test_auto_target() -> None:
    assert resolve_target(CASES["canonical-defaults"](), "auto") == "canonical-k8s"
    assert resolve_target(CASES["helm-exclusive-nodeconfig"](), "auto") == "helm"
    assert resolve_target(CASES["plain-cilium-namespace"](), "auto") == "cilium-cli"
    annotated_only = healthy()
    annotated_only[0] = configmap(annotated_only[0]["data"], annotations={"meta.helm.sh/release-name": "x"})
    assert resolve_target(build_snapshot(annotated_only), "auto") == "helm"
    snapshot = CASES["canonical-defaults"]()
    assert render(snapshot, evaluate(snapshot)).target == "canonical-k8s"
    assert resolve_target(snapshot, "configmap-patch") == "configmap-patch"
    assert resolve_target(snapshot, "helm") == "canonical-k8s"


@pytest.mark.parametrize(("target", "scope"), [("kubectl", "changes"), ("helm", "all"), ("", "full")])
def test_invalid_parameters(target: str, scope: str) -> None:
    snapshot = CASES["compatible"]()
    with pytest.raises(ValueError, match=r"unknown (target|scope)"):
        render(snapshot, evaluate(snapshot), target=target, scope=scope)
    if target not in TARGETS and target != "auto":
        with pytest.raises(ValueError, match="choose one of"):
            resolve_target(snapshot, target)


@pytest.mark.parametrize("target", TARGETS)
def test_nothing_to_change(target: str) -> None:
    _, rendered = _rendered("compatible", target, "changes")
    assert rendered.nothing_to_change
    assert (rendered.config, rendered.apply, rendered.istio) == ("", "", "")
    assert "# Nothing to change: " in rendered.text()
    assert not _rendered("compatible", target, "full")[1].nothing_to_change


def test_findings_the_renderer_does_not_fix_are_named() -> None:
    objects = healthy()
    objects.append(
        cnp(
            "bookinfo",
            "l7",
            {
                "endpointSelector": {},
                "ingress": [
                    {
                        "fromCIDR": ["169.254.7.127/32"],
                        "toPorts": [{"ports": [{"port": "80"}], "rules": {"http": [{"method": "GET"}]}}],
                    }
                ],
            },
        )
    )
    snapshot = build_snapshot(objects)
    rendered = render(snapshot, evaluate(snapshot), target="helm")
    assert "CIC006" in _active(snapshot)
    assert rendered.nothing_to_change and "CIC006" in rendered.not_addressed
    assert (
        "# Not addressed here (see `istio-cilium-compat check` for their fixes):\n#   - CIC006: "
        in rendered.text()
    )


def test_importing_the_renderer_does_not_import_jinja2() -> None:
    code = "import sys, istio_cilium_compat.render; sys.exit('jinja2' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0


def test_no_command_is_built_in_the_rules() -> None:
    """render.py and its templates are the only place that spells commands."""
    package = ROOT / "src" / "istio_cilium_compat"
    assert not (package / "rules" / "fixes.py").exists()
    for path in [*(package / "rules").glob("*.py"), package / "plan.py", package / "remedy.py"]:
        text = path.read_text()
        changing = ("kubectl patch", "kubectl apply", "rollout restart", "helm upgrade", "cilium config set")
        for word in (*changing, "juju config", "k8s set", "juju exec"):
            assert word not in text, f"{path.name}: {word!r}"


def test_remedies_merge_without_duplicates() -> None:
    from istio_cilium_compat import remedy as r

    merged = r.merge(
        [r.Remedy(cilium=(r.HOSTNS_ONLY,), restart_agents=True), r.Remedy(cilium=(r.HOSTNS_ONLY,))]
    )
    assert merged.cilium == (r.HOSTNS_ONLY,) and merged.restart_agents
    ref = PolicyRef("NetworkPolicy", "a", "b")
    assert r.merge([Remedy(isolating=(ref,)), Remedy(isolating=(ref,))]).isolating == (ref,)


# ----------------------------------------------------------------------------- hostile names

HOSTILE = "x'y\"z $(touch pwned) `touch pwned2` ;a|b&c<d>e\\f #g\nh\u2028i\x85j"


def hostile_cluster(canonical: bool, release: str) -> Snapshot:
    """Every cluster-supplied name that reaches a command holds quotes, substitutions and newlines."""
    ns, ds, nc, root = f"ns {HOSTILE}", f"ds {HOSTILE}", f"nc {HOSTILE}", f"istio {HOSTILE}"
    data = {
        **healthy()[0]["data"],
        "bpf-lb-sock-hostns-only": "false",
        "cni-exclusive": "true",
        "enable-non-default-deny-policies": "false",  # per-policy probe allowances, with the names in them
    }
    annotations = {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": f"rns {HOSTILE}"}
    objects = [
        configmap(data, namespace=ns, labels=HELM_LABELS, annotations=annotations),
        daemonset(
            ds,
            ns,
            {"k8s-app": "cilium"},
            "quay.io/cilium/cilium:v1.17.4",
            {"etc-cni-netd": f"/etc/cni/{HOSTILE}", "cni-path": "/opt/cni/bin"},
        ),
        node_config(
            nc, {"enable-host-legacy-routing": "false", "enable-ipv4-masquerade": "false"}, namespace=ns
        ),
        ztunnel(namespace=root),
        istio_cni(namespace=root, conf="/var/snap/microk8s/current/args/cni-network"),
        namespace(root, mode=None),
        namespace(f"app {HOSTILE}"),
        network_policy(f"app {HOSTILE}", f"deny {HOSTILE}", DENY_ALL),
    ]
    if canonical:
        objects.append(configmap({}, name="k8sd-config"))
    return build_snapshot(objects)


HOSTILE_CASES = [
    ("helm-managed", False, f"rel {HOSTILE}"),
    ("dash-release", False, f"--post-renderer=$(touch pwned3) {HOSTILE}"),
    ("canonical", True, f"rel {HOSTILE}"),
]


@pytest.mark.parametrize(("name", "canonical", "release"), HOSTILE_CASES)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("scope", SCOPES)
def test_hostile_names_stay_quoted(
    name: str, canonical: bool, release: str, target: str, scope: str, tmp_path: Path
) -> None:
    snapshot = hostile_cluster(canonical, release)
    config = snapshot.cilium_config
    assert config is not None and snapshot.cilium_namespace == f"ns {HOSTILE}"
    rendered = render(snapshot, evaluate(snapshot), target=target, scope=scope)
    ns, ds, nc = f"ns {HOSTILE}", f"ds {HOSTILE}", f"nc {HOSTILE}"
    release_ns = f"rns {HOSTILE}"
    text = rendered.text()
    bash_syntax_ok(text)
    # A name cannot end a `#` comment or a quoted word early: the header stays comments, each command one line
    # (a `juju exec` script spans lines of its own, and a heredoc its body).
    assert all(line.startswith("#") for line in rendered.header.splitlines())
    calls = run_script(text, tmp_path)
    argvs = [c.argv for c in calls]
    assert not [a for a in argvs if a[0] in ("touch", "NOT-FOUND")], argvs
    assert not list(tmp_path.glob("pwned*"))
    commands = [a[2:] if a[:2] == ("sudo", "k8s") else a for a in argvs if a[:2] != ("juju", "exec")]

    node_patch = ("kubectl", "-n", ns, "patch", f"ciliumnodeconfig/{nc}", "--type", "merge", "-p")
    patches = [a for a in commands if a[: len(node_patch)] == node_patch]
    assert [json.loads(a[-1]) for a in patches] == [
        {"spec": {"defaults": {"enable-host-legacy-routing": "true"}}}
    ]
    resolved = rendered.target
    assert (
        "kubectl",
        "-n",
        ns,
        "rollout",
        "restart",
        f"daemonset/{ds}",
    ) in commands or resolved == "cilium-cli"
    deny = [a for a in commands if "networkpolicy" in a]
    assert [a[:6] for a in deny] == [
        ("kubectl", "-n", f"app {HOSTILE}", "patch", "networkpolicy", f"deny {HOSTILE}")
    ]

    upgrades = [a for a in commands if a[:2] == ("helm", "upgrade")]
    if resolved in ("helm", "canonical-k8s", "canonical-k8s-charm"):
        (upgrade,) = upgrades
        assert positional(upgrade, HELM_VALUE_FLAGS) == [
            release,
            "cilium" if resolved == "helm" else CK_CHART,
        ]
        assert option(upgrade, "-n") == [release_ns] and "--reuse-values" in upgrade
        assert upgrade.index("--") == len(upgrade) - 3 if release.startswith("-") else "--" not in upgrade
        expected = {"socketLB.hostNamespaceOnly=true"} | (
            {"cni.exclusive=false"} if resolved == "helm" else set()
        )
        if scope == "full":
            expected |= {"bpf.masquerade=false", "bpf.hostLegacyRouting=true"}
        assert set(option(upgrade, "--set")) == expected
    if resolved == "helm":
        assert option(upgrades[0], "--version") == [CHART_VERSION]
    elif resolved == "cilium-cli":
        sets = [a for a in commands if a[:3] == ("cilium", "config", "set")]
        assert sets and all(a[3:5] == ("-n", ns) for a in sets)
        assert [("--restart=false" in a) for a in sets] == [True] * (len(sets) - 1) + [False]
        if scope == "changes":
            assert [a[-2:] for a in sets] == [("bpf-lb-sock-hostns-only", "true"), ("cni-exclusive", "false")]
    elif resolved == "configmap-patch":
        patch = [a for a in commands if a[:5] == ("kubectl", "-n", ns, "patch", "configmap")]
        assert len(patch) == 1 and patch[0][5] == "cilium-config"

    manifests = [yaml.safe_load(c.stdin) for c in calls if c.stdin]
    peer_auths = [m for m in manifests if m["kind"] == "PeerAuthentication"]
    # STRICT mTLS is offered in the full scope only: no finding asks for it since CIC002 retired.
    assert [m["metadata"]["namespace"] for m in peer_auths] == (
        [f"istio {HOSTILE}"] if scope == "full" else []
    )
    applied = apply_calls(snapshot, calls, resolved, tmp_path)
    assert not _active(applied.snapshot) & {"CIC001", "CIC003", "CIC011", "CIC022"}


def test_escaping_filters() -> None:
    from istio_cilium_compat.render import one_line, sh, to_json, yaml_str

    for value in (HOSTILE, "", "-n", "\U0001f600\U000e0001", "a\x01b"):
        printed = subprocess.run(
            ["bash", "-c", f"printf %s {sh(value)}"],
            capture_output=True,
            text=True,
            env={"LC_ALL": "C.UTF-8"},
        ).stdout
        assert printed == value
        assert "\n" not in sh(value)
        assert yaml.safe_load(yaml_str(value)) == value
        assert "\n" not in yaml_str(value) and "\n" not in one_line(value)
        assert json.loads(to_json({"k": value})) == {"k": value}
        assert to_json({"k": value}).isascii()


def test_cilium_config_missing_still_renders_full() -> None:
    snapshot = build_snapshot(without(healthy(), "ConfigMap"))
    rendered = render(snapshot, evaluate(snapshot), target="auto", scope="full")
    assert rendered.target == "cilium-cli"
    assert "cilium-config was not found" in rendered.text()
    assert "cilium config set -n kube-system" in rendered.apply


def _node_config_snapshot(defaults: dict[str, str]) -> Snapshot:
    return dataclasses.replace(
        CASES["compatible"](),
        node_configs=(NodeConfig(CILIUM_NS, "pool", "cilium.io/v2", {}, defaults),),
    )


def test_node_override_alone_patches_only_the_node_config() -> None:
    snapshot = _node_config_snapshot({"bpf-lb-sock-hostns-only": "0"})
    rendered = render(snapshot, evaluate(snapshot), target="configmap-patch")
    assert "patch configmap" not in rendered.apply
    assert "patch ciliumnodeconfig/pool" in rendered.apply
    assert '{"spec":{"defaults":{"bpf-lb-sock-hostns-only":"true"}}}' in rendered.apply
    assert "rollout restart daemonset/cilium" in rendered.apply
