"""The renderer: golden outputs per target and scope, and that what it prints really fixes the cluster.

Shell output is run through bash with the cluster tools (helm, kubectl, cilium, juju,
sudo) replaced by functions that record their argv and stdin: the recorded calls are
what a user's shell would run. Applying those calls to the snapshot and re-running
the rules must clear the findings the change is meant to fix.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from istio_cilium_compat.assemble import build_snapshot
from istio_cilium_compat.manifests import load_snapshot
from istio_cilium_compat.render import TARGETS, Rendered, render, resolve_target
from istio_cilium_compat.report import Severity
from istio_cilium_compat.rules import evaluate
from istio_cilium_compat.snapshot import DaemonSetInfo, NodeConfig, PeerAuthentication, Policy, Snapshot
from tests.clusters import (
    CILIUM_NS,
    ISTIO_NS,
    T0,
    T1,
    Obj,
    cilium_agent,
    cilium_pod,
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
CK_IMAGE = "ghcr.io/canonical/cilium:1.19.4-ck1"
DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress"]}


# ----------------------------------------------------------------------------- clusters


def _set_image(objects: list[Obj], image: str) -> None:
    for obj in objects:
        if obj["kind"] == "DaemonSet" and obj["metadata"]["name"] == "cilium":
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = image


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
    objects = healthy(cni_exclusive="true")
    objects[0] = configmap(
        objects[0]["data"],
        labels=HELM_LABELS,
        annotations={"meta.helm.sh/release-name": "cilium", "meta.helm.sh/release-namespace": CILIUM_NS},
    )
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


def _from_objects(factory: Callable[[], list[Obj]]) -> Callable[[], Snapshot]:
    return lambda: build_snapshot(factory(), source=f"test: {factory.__name__}")


def _example(folder: Path) -> Callable[[], Snapshot]:
    return lambda: load_snapshot([folder])


CASES: dict[str, Callable[[], Snapshot]] = {
    "canonical-defaults": _from_objects(canonical_defaults),
    "canonical-charmed-istio": _from_objects(canonical_charmed_istio),
    "helm-exclusive-nodeconfig": _from_objects(helm_exclusive_nodeconfig),
    "plain-cilium-namespace": _from_objects(plain_cilium_namespace),
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
__n=0
__rec() {
  local f
  f="$__OUT/$(printf %04d "$__n")"
  __n=$((__n + 1))
  printf '%s\0' "$@" > "$f.argv"
  cat > "$f.stdin"
}
helm() { __rec helm "$@"; }
kubectl() { __rec kubectl "$@"; }
cilium() { __rec cilium "$@"; }
juju() { __rec juju "$@"; }
sudo() { __rec sudo "$@"; }
touch() { __rec touch "$@"; }
command_not_found_handle() { __rec NOT-FOUND "$@"; return 127; }
"""


@dataclasses.dataclass(frozen=True)
class Call:
    """One command the script ran, with what it read on stdin (a heredoc)."""

    argv: tuple[str, ...]
    stdin: str


def run_script(script: str, workdir: Path) -> list[Call]:
    """Run `script` in bash with the cluster tools stubbed; return their calls in order."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "calls"
    out.mkdir(exist_ok=True)
    (workdir / "script.sh").write_text(script)
    result = subprocess.run(
        ["bash", "-c", STUBS + "\nset -e\n. ./script.sh\n"],
        cwd=workdir,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "__OUT": str(out), "LC_ALL": "C.UTF-8"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    calls = []
    for argv_file in sorted(out.glob("*.argv")):
        raw = argv_file.read_bytes().decode()
        argv = tuple(raw.split("\0")[:-1])
        stdin = argv_file.with_suffix(".stdin").read_text()
        calls.append(Call(argv, stdin))
    for f in out.iterdir():
        f.unlink()
    return calls


def bash_syntax_ok(script: str) -> None:
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"bash -n: {result.stderr}\n{script}"


HEREDOC = re.compile(r"<<'(\w+)'\s*$")


def heredocs(script: str) -> list[str]:
    """The bodies of the quoted heredocs in `script`."""
    bodies: list[str] = []
    lines = script.split("\n")
    i = 0
    while i < len(lines):
        match = HEREDOC.search(lines[i])
        i += 1
        if match:
            body = []
            while lines[i] != match[1]:
                body.append(lines[i])
                i += 1
            bodies.append("\n".join(body) + "\n")
            i += 1
    return bodies


def shell_commands(script: str) -> list[tuple[str, ...]]:
    """Each command of `script` as shlex reads it: heredoc bodies and redirections dropped."""
    kept: list[str] = []
    lines = script.split("\n")
    i = 0
    while i < len(lines):
        kept.append(lines[i])
        match = HEREDOC.search(lines[i])
        i += 1
        if match:
            while lines[i] != match[1]:
                i += 1
            i += 1
    lexer = shlex.shlex("\n".join(kept), posix=True, punctuation_chars="\n<>")
    lexer.whitespace = " \t"
    lexer.whitespace_split = True
    commands: list[tuple[str, ...]] = []
    current: list[str] = []
    tokens = iter(lexer)
    for token in tokens:
        if token == "\n":
            if current:
                commands.append(tuple(current))
            current = []
        elif token in ("<<", ">"):
            next(tokens)  # the heredoc word or the file name
        else:
            current.append(token)
    if current:
        commands.append(tuple(current))
    return commands


def remote_argv(call: Call) -> tuple[str, ...]:
    """The command a `juju exec|ssh ... -- COMMAND` runs on the unit, as its shell splits it."""
    assert call.argv[0] == "juju" and call.argv[1] in ("exec", "ssh"), call.argv
    dashdash = call.argv.index("--")
    assert len(call.argv) == dashdash + 2, f"the remote command must be one word: {call.argv}"
    return tuple(shlex.split(call.argv[dashdash + 1]))


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


# ----------------------------------------------------------------------------- applying a rendering


@dataclasses.dataclass
class Applied:
    """The snapshot after the rendered commands, and what they did."""

    snapshot: Snapshot
    restarted: bool = False
    calls: list[tuple[str, ...]] = dataclasses.field(default_factory=list)


def _interpret(argv: tuple[str, ...], stdin: str, workdir: Path, state: dict[str, Any]) -> None:
    """Apply one recorded command to the simulated cluster in `state`."""
    state["calls"].append(argv)
    if argv[:2] == ("sudo", "k8s"):
        argv = argv[2:]
        if argv[0] in ("helm", "kubectl"):
            _interpret(argv, stdin, workdir, state)
            return
        assert argv[:1] == ("set",), argv
        assert argv[1:] == ("annotations=k8sd/v1alpha1/cilium/cni-exclusive=-",), argv
        state["data"]["cni-exclusive"] = "false"  # k8sd re-renders ck-network without it
        return
    tool = argv[0]
    if tool == "juju":
        if argv[1] in ("exec", "ssh"):
            assert argv[2:4] in (("--unit", "k8s/leader"), ("k8s/leader", "--")), argv
            _interpret(remote_argv(Call(argv, stdin)), stdin, workdir, state)
        elif argv[1:3] == ("config", "k8s"):
            assert argv[3:] == ("cluster-annotations=k8sd/v1alpha1/cilium/cni-exclusive=-",), argv
            state["data"]["cni-exclusive"] = "false"
        elif argv[1:3] == ("config", "istio-k8s"):
            assert argv[3:] == ("platform=",), argv
            state["platform_fixed"] = True
        else:
            raise AssertionError(f"unexpected juju call {argv}")
    elif tool == "helm":
        assert argv[1] == "upgrade", argv
        assert "--reuse-values" in argv, argv
        for values_file in option(argv, "-f", "--values"):
            state["data"].update(helm_overlay(yaml.safe_load((workdir / values_file).read_text())))
        for pair in option(argv, "--set"):
            path, value = pair.split("=", 1)
            state["data"].update(helm_overlay({path: yaml.safe_load(value)}))
    elif tool == "cilium":
        assert argv[1:3] == ("config", "set"), argv
        key, value = argv[-2:]
        state["data"][key] = value
        if "--restart=false" not in argv:
            state["restarted"] = True
    elif tool == "kubectl":
        namespace = option(argv, "-n", "--namespace")
        verb_at = 3 if argv[1] in ("-n", "--namespace") else 1
        verb = argv[verb_at]
        if verb == "patch":
            target = argv[verb_at + 1]
            patch = json.loads(option(argv, "-p", "--patch")[0])
            assert option(argv, "--type") == ["merge"], argv
            if target in ("configmap", "cm"):
                assert argv[verb_at + 2] == "cilium-config"
                assert namespace == [state["cilium_ns"]], argv
                state["data"].update(patch["data"])
            else:
                kind, name = target.split("/", 1)
                assert kind == "ciliumnodeconfig", argv
                state["node_patches"][(namespace[0], name)] = patch["spec"]["defaults"]
        elif verb == "rollout":
            assert argv[verb_at + 1] == "restart", argv
            state["restarted"] = True
        elif verb == "apply":
            assert argv[verb_at + 1 :] == ("-f", "-"), argv
            state["applied"].extend(d for d in yaml.safe_load_all(stdin) if d)
        else:
            raise AssertionError(f"unexpected kubectl call {argv}")
    else:
        raise AssertionError(f"unexpected command {argv}")


def apply_rendered(snapshot: Snapshot, rendered: Rendered, workdir: Path) -> Applied:
    """Run the rendered commands (stubbed) and apply their effect to the snapshot."""
    config = snapshot.cilium_config
    state: dict[str, Any] = {
        "data": dict(config.data) if config else {},
        "cilium_ns": snapshot.cilium_namespace,
        "node_patches": {},
        "applied": [],
        "platform_fixed": False,
        "restarted": False,
        "calls": [],
    }
    for script in (rendered.apply, rendered.istio):
        for call in run_script(script, workdir):
            _interpret(call.argv, call.stdin, workdir, state)
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
    policies = list(snapshot.policies)
    peer_auths = list(snapshot.peer_authentications)
    for doc in state["applied"]:
        meta = doc["metadata"]
        if doc["kind"] == "CiliumClusterwideNetworkPolicy":
            policies.append(Policy(doc["kind"], None, meta["name"], (doc["spec"],)))
        elif doc["kind"] == "PeerAuthentication":
            mode = doc["spec"]["mtls"]["mode"]
            peer_auths.insert(0, PeerAuthentication(meta["namespace"], meta["name"], None, mode))
        else:
            raise AssertionError(f"unexpected manifest {doc['kind']}")
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
    )
    return Applied(after, restarted=state["restarted"], calls=state["calls"])


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
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "l7", "namespace": "bookinfo"},
            "spec": {
                "endpointSelector": {},
                "ingress": [
                    {
                        "fromCIDR": ["169.254.7.127/32"],
                        "toPorts": [{"ports": [{"port": "80"}], "rules": {"http": [{"method": "GET"}]}}],
                    }
                ],
            },
        }
    )
    snapshot = build_snapshot(objects)
    rendered = render(snapshot, evaluate(snapshot), target="helm")
    assert "CIC006" in _active(snapshot)
    assert rendered.nothing_to_change
    assert "Not addressed here (see `istio-cilium-compat check` for their fixes): CIC006" in rendered.text()


def test_importing_the_renderer_does_not_import_jinja2() -> None:
    code = "import sys, istio_cilium_compat.render; sys.exit('jinja2' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0


def test_old_cilium_gets_no_standalone_probe_policy() -> None:
    objects = healthy()
    objects.append(network_policy("bookinfo", "deny-all", DENY_ALL))
    _set_image(objects, "quay.io/cilium/cilium:v1.15.6")
    snapshot = build_snapshot(objects)
    rendered = render(snapshot, evaluate(snapshot), target="helm")
    assert "CIC005" in _active(snapshot)
    assert "CiliumClusterwideNetworkPolicy" not in rendered.istio
    assert "fromCIDR" in rendered.istio and "default-deny" in rendered.istio


# ----------------------------------------------------------------------------- outputs are valid and work


@pytest.mark.parametrize(("case", "target", "scope"), COMBOS)
def test_yaml_outputs_parse(case: str, target: str, scope: str) -> None:
    _, rendered = _rendered(case, target, scope)
    if target in ("helm", "canonical-k8s", "canonical-k8s-charm") and rendered.config:
        values = yaml.safe_load(rendered.config)
        helm_overlay(values or {})
    if target == "configmap-patch" and rendered.config:
        assert set(json.loads(rendered.config)) == {"data"}
    for body in heredocs(rendered.apply) + heredocs(rendered.istio):
        for doc in yaml.safe_load_all(body):
            assert isinstance(doc, dict)
            if doc.get("kind") == "CiliumClusterwideNetworkPolicy":
                assert doc["apiVersion"] == "cilium.io/v2"
                assert doc["metadata"]["name"] == "allow-ambient-hostprobes"
                assert doc["spec"]["endpointSelector"] == {}
                assert doc["spec"]["ingress"] == [{"fromCIDR": ["169.254.7.127/32"]}]
                assert doc["spec"]["enableDefaultDeny"] == {"ingress": False, "egress": False}
            elif doc.get("kind") == "PeerAuthentication":
                assert doc["apiVersion"] == "security.istio.io/v1"
                assert doc["metadata"]["name"] == "default"
                assert doc["spec"] == {"mtls": {"mode": "STRICT"}}
    if target == "helm" and rendered.config:
        assert heredocs(rendered.apply)[0] == rendered.config


@pytest.mark.parametrize(("case", "target", "scope"), COMBOS)
def test_shell_outputs_are_valid_bash(case: str, target: str, scope: str) -> None:
    _, rendered = _rendered(case, target, scope)
    for script in (rendered.apply, rendered.istio, rendered.config if target == "cilium-cli" else ""):
        bash_syntax_ok(script)


@pytest.mark.parametrize(("case", "target", "scope"), COMBOS)
def test_applying_the_rendering_fixes_the_findings(
    case: str, target: str, scope: str, tmp_path: Path
) -> None:
    snapshot, rendered = _rendered(case, target, scope)
    before = _active(snapshot)
    applied = apply_rendered(snapshot, rendered, tmp_path)
    after = _active(applied.snapshot)
    assert not after & set(CILIUM_FIXED), (
        f"still {sorted(after & set(CILIUM_FIXED))} after:\n{rendered.apply}"
    )
    assert "CIC002" not in after
    if rendered.istio and "CiliumClusterwideNetworkPolicy" in rendered.istio:
        assert "CIC005" not in after
    if target in ("canonical-k8s", "canonical-k8s-charm"):
        assert "CIC004" not in after
    if before & {*CILIUM_FIXED, "CIC009"} and snapshot.cilium_config is not None:
        assert applied.restarted, "a Cilium change without an agent restart"
    if rendered.nothing_to_change:
        assert applied.calls == []


@pytest.mark.parametrize("target", TARGETS)
def test_full_scope_sets_every_needed_value(target: str, tmp_path: Path) -> None:
    snapshot, rendered = _rendered("compatible", target, "full")
    applied = apply_rendered(snapshot, rendered, tmp_path)
    config = applied.snapshot.cilium_config
    assert config is not None
    assert config.data["bpf-lb-sock-hostns-only"] == "true"
    assert config.data["cni-exclusive"] == "false"
    assert config.data["enable-bpf-masquerade"] == "false"
    assert config.data["enable-host-legacy-routing"] == "true"
    kinds = {p.kind for p in applied.snapshot.policies}
    assert "CiliumClusterwideNetworkPolicy" in kinds


def test_canonical_fixes_exactly_as_k8sd_expects(tmp_path: Path) -> None:
    snapshot, rendered = _rendered("canonical-charmed-istio", "canonical-k8s", "changes")
    calls = apply_rendered(snapshot, rendered, tmp_path).calls
    assert ("sudo", "k8s", "set", "annotations=k8sd/v1alpha1/cilium/cni-exclusive=-") in calls
    helm = [c for c in calls if c[:4] == ("sudo", "k8s", "helm", "upgrade")]
    assert helm == [
        (
            "sudo",
            "k8s",
            "helm",
            "upgrade",
            "ck-network",
            "/snap/k8s/current/k8s/manifests/charts/cilium-*.tgz",
            "-n",
            "kube-system",
            "--reuse-values",
            "--set",
            "socketLB.hostNamespaceOnly=true",
        )
    ]
    assert "cni.exclusive" not in rendered.apply  # k8sd owns it: the annotation is the only way
    assert "keeps values it does not set" in rendered.apply
    assert 'juju config istio-k8s platform=""' in rendered.istio


def test_canonical_charm_runs_helm_on_the_leader(tmp_path: Path) -> None:
    _, rendered = _rendered("canonical-charmed-istio", "canonical-k8s-charm", "changes")
    calls = run_script(rendered.apply, tmp_path)
    argvs = [c.argv for c in calls]
    assert ("juju", "config", "k8s", "cluster-annotations=k8sd/v1alpha1/cilium/cni-exclusive=-") in argvs
    remote = [remote_argv(c) for c in calls if c.argv[:2] == ("juju", "exec")]
    assert remote[0][:4] == ("sudo", "k8s", "helm", "upgrade")
    assert remote[-1] == (
        "sudo",
        "k8s",
        "kubectl",
        "-n",
        "kube-system",
        "rollout",
        "restart",
        "daemonset/cilium",
    )


# ----------------------------------------------------------------------------- hostile names

HOSTILE = "x'y\"z $(touch pwned) `touch pwned2` ;a|b&c<d>e\\f #g\nh\u2028i\x85j"


def hostile_cluster(canonical: bool, release: str) -> Snapshot:
    """Every cluster-supplied name that reaches a command holds quotes, substitutions and newlines."""
    ns, ds, nc, root = f"ns {HOSTILE}", f"ds {HOSTILE}", f"nc {HOSTILE}", f"istio {HOSTILE}"
    data = {**healthy()[0]["data"], "bpf-lb-sock-hostns-only": "false", "cni-exclusive": "true"}
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
        namespace("bookinfo"),
        network_policy("bookinfo", "deny-all", DENY_ALL),
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
    ns, ds, nc, root = f"ns {HOSTILE}", f"ds {HOSTILE}", f"nc {HOSTILE}", f"istio {HOSTILE}"
    release_ns = f"rns {HOSTILE}"

    # A name cannot end a `#` comment early: the notes stay comment lines (the scripts are run below).
    assert all(line.startswith("#") for line in rendered.notes.splitlines())

    calls: list[Call] = []
    for script in (rendered.apply, rendered.istio):
        bash_syntax_ok(script)
        script_calls = run_script(script, tmp_path)
        # shlex reads each command as bash runs it
        expected = [c for c in shell_commands(script) if c[0] != "cat"]
        assert [c.argv for c in script_calls] == expected
        calls.extend(script_calls)
    argvs = [c.argv for c in calls]
    assert not [a for a in argvs if a[0] in ("touch", "NOT-FOUND")], argvs
    assert not list(tmp_path.glob("pwned*"))

    remote = [remote_argv(c) for c in calls if c.argv[0] == "juju" and c.argv[1] in ("exec", "ssh")]
    for c in calls:
        if c.argv[0] == "juju" and c.argv[1] in ("exec", "ssh"):
            # the unit's shell must split the remote command the same way: run it through bash too
            inner = run_script(c.argv[-1] + "\n", tmp_path / "remote")
            assert [i.argv for i in inner] == [remote_argv(c)]
    commands = [a[2:] if a[:2] == ("sudo", "k8s") else a for a in [*argvs, *remote]]

    node_patch = ("kubectl", "-n", ns, "patch", f"ciliumnodeconfig/{nc}", "--type", "merge", "-p")
    patches = [a for a in commands if a[: len(node_patch)] == node_patch]
    assert [json.loads(a[-1]) for a in patches] == [
        {"spec": {"defaults": {"enable-host-legacy-routing": "true"}}}
    ]
    assert ("kubectl", "-n", ns, "rollout", "restart", f"daemonset/{ds}") in commands or (
        target == "cilium-cli"
    )

    if target == "helm":
        helm = [a for a in commands if a[:2] == ("helm", "upgrade")]
        flags = ("-n", release_ns, "--version", "1.17.4", "--reuse-values", "-f", "values-istio-ambient.yaml")
        if release.startswith("-"):
            assert helm == [("helm", "upgrade", *flags, "--", release, "cilium/cilium")]
        else:
            assert helm == [("helm", "upgrade", release, "cilium/cilium", *flags)]
    elif target == "cilium-cli":
        sets = [a for a in commands if a[:3] == ("cilium", "config", "set")]
        assert sets and all(a[3:5] == ("-n", ns) for a in sets)
        assert [("--restart=false" in a) for a in sets] == [True] * (len(sets) - 1) + [False]
        if scope == "changes":
            assert [a[-2:] for a in sets] == [("bpf-lb-sock-hostns-only", "true"), ("cni-exclusive", "false")]
    elif target == "configmap-patch":
        patch = [a for a in commands if a[:5] == ("kubectl", "-n", ns, "patch", "configmap")]
        assert len(patch) == 1 and patch[0][5] == "cilium-config"
    else:
        helm = [a for a in commands if a[:2] == ("helm", "upgrade")]
        chart = "/snap/k8s/current/k8s/manifests/charts/cilium-*.tgz"
        sets = ("--set", "socketLB.hostNamespaceOnly=true")
        if scope == "full":
            sets = (*sets, "--set", "bpf.masquerade=false", "--set", "bpf.hostLegacyRouting=true")
        if release.startswith("-"):
            assert helm == [
                ("helm", "upgrade", "-n", release_ns, "--reuse-values", *sets, "--", release, chart)
            ]
        else:
            assert helm == [("helm", "upgrade", release, chart, "-n", release_ns, "--reuse-values", *sets)]

    manifests = [yaml.safe_load(c.stdin) for c in calls if c.stdin]
    peer_auths = [m for m in manifests if m["kind"] == "PeerAuthentication"]
    # STRICT mTLS is offered in the full scope only: no finding asks for it since CIC002 retired.
    assert [m["metadata"]["namespace"] for m in peer_auths] == ([root] if scope == "full" else [])
    applied = apply_rendered(snapshot, rendered, tmp_path / "apply")
    assert not _active(applied.snapshot) & {"CIC001", "CIC003", "CIC011", "CIC022"}


def test_escaping_filters() -> None:
    from istio_cilium_compat.render import one_line, sh, to_json, yaml_str

    for value in (HOSTILE, "", "-n", "\U0001f600\U000e0001", "a\x00b"):
        if "\x00" not in value:
            assert shlex.split(sh(value)) == [value]
        assert yaml.safe_load(yaml_str(value)) == value
        assert "\n" not in yaml_str(value) and "\n" not in one_line(value)
        assert json.loads(to_json({"k": value})) == {"k": value}
        assert to_json({"k": value}).isascii()


def test_cilium_config_missing_still_renders_full() -> None:
    snapshot = build_snapshot(without(healthy(), "ConfigMap"))
    rendered = render(snapshot, evaluate(snapshot), target="auto", scope="full")
    assert rendered.target == "cilium-cli"
    assert "cilium-config was not found" in rendered.text()
    assert "cilium config set -n kube-system" in rendered.config


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
