"""Property tests: whatever the cluster holds, the engine answers and never raises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charm import Hints, status_message
from istio_cilium_compat.assemble import build_snapshot
from istio_cilium_compat.cli import main
from istio_cilium_compat.render import with_fixes
from istio_cilium_compat.report import Severity, Verdict, to_json, to_text, to_yaml
from istio_cilium_compat.rules import evaluate
from tests.clusters import ISTIO_NS, Obj, ccnp, cnp, healthy, network_policy, peer_auth
from tests.properties import tried

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(
        ["true", "false", "True", "1", "0", "STRICT", "PERMISSIVE", "ambient", "169.254.7.127/32", "15008"]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
cilium_keys = st.sampled_from(
    [
        "kube-proxy-replacement",
        "bpf-lb-sock",
        "bpf-lb-sock-hostns-only",
        "enable-host-reachable-services",
        "cni-exclusive",
        "enable-bpf-masquerade",
        "enable-host-legacy-routing",
        "enable-ztunnel",
        "enable-policy",
    ]
)


def check_report(objects: list[Any]) -> None:
    snapshot = build_snapshot(objects)
    report = with_fixes(snapshot, evaluate(snapshot))
    assert report.verdict in set(Verdict)
    for finding in report.findings:
        assert finding.evidence and finding.fix and finding.summary
        assert finding.severity in set(Severity)
    line = status_message(report, Hints(app="a" * 50, unit="a" * 50 + "/10"))
    assert len(line) <= 120 and "\n" not in line
    json.loads(to_json(report))
    to_text(report)
    to_yaml(report)


@SETTINGS
@given(st.dictionaries(st.one_of(cilium_keys, st.text(max_size=30)), st.text(max_size=200), max_size=12))
def test_any_cilium_config_data(data: dict[str, str]) -> None:
    tried("cilium-config data")
    objects = healthy()
    objects[0]["data"] = data
    check_report(objects)


@SETTINGS
@given(st.dictionaries(cilium_keys, st.text(min_size=1000, max_size=5000), max_size=3))
def test_huge_values(data: dict[str, str]) -> None:
    tried("huge values")
    objects = healthy()
    objects[0]["data"] = data
    check_report(objects)


PATHS = [
    ("metadata",),
    ("metadata", "labels"),
    ("metadata", "annotations"),
    ("metadata", "managedFields"),
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("data",),
    ("spec",),
    ("spec", "template"),
    ("spec", "template", "spec"),
    ("spec", "template", "spec", "volumes"),
    ("spec", "template", "spec", "containers"),
    ("status",),
    ("status", "startTime"),
    ("spec", "mtls"),
    ("spec", "selector"),
    ("spec", "portLevelMtls"),
    ("kind",),
]


def set_path(obj: Obj, path: tuple[str, ...], value: Any) -> None:
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value


def all_objects() -> list[Obj]:
    return [
        *healthy(bpf_lb_sock_hostns_only=None),
        peer_auth("bookinfo", "w", "PERMISSIVE", {"app": "x"}, {"80": "DISABLE"}),
        network_policy("bookinfo", "np", {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}),
        cnp(
            "bookinfo",
            "cnp",
            {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80"}]}]}]},
        ),
        ccnp("ccnp", {"endpointSelector": {}, "ingress": [{"fromCIDR": ["169.254.7.127/32"]}]}),
    ]


@SETTINGS
@given(st.data())
def test_wrongly_typed_fields(data: st.DataObject) -> None:
    tried("wrongly typed fields")
    objects = all_objects()
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        target = data.draw(st.sampled_from(objects))
        set_path(target, data.draw(st.sampled_from(PATHS)), data.draw(json_values))
    check_report(objects)


@SETTINGS
@given(st.lists(json_values, max_size=8))
def test_arbitrary_documents(docs: list[Any]) -> None:
    tried("arbitrary documents")
    check_report([*healthy(), *docs])


policy_specs = st.dictionaries(
    st.sampled_from(
        [
            "podSelector",
            "endpointSelector",
            "policyTypes",
            "ingress",
            "egress",
            "ingressDeny",
            "enableDefaultDeny",
            "nodeSelector",
        ]
    ),
    json_values,
    max_size=5,
)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["np", "cnp", "ccnp"]), policy_specs), max_size=5))
def test_any_policy_shapes(policies: list[tuple[str, dict[str, Any]]]) -> None:
    tried("policy shapes")
    objects = healthy()
    for i, (kind, spec) in enumerate(policies):
        name = f"p{i}"
        if kind == "np":
            objects.append(network_policy("bookinfo", name, spec))
        elif kind == "cnp":
            objects.append(cnp("bookinfo", name, spec))
        else:
            objects.append(ccnp(name, spec))
    check_report(objects)


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from([ISTIO_NS, "bookinfo", "other"]),
            st.one_of(
                st.none(), st.text(max_size=12), st.sampled_from(["STRICT", "PERMISSIVE", "DISABLE", "UNSET"])
            ),
            st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)),
        ),
        max_size=6,
    )
)
def test_any_peer_authentications(pas: list[tuple[str, str | None, dict[str, str] | None]]) -> None:
    tried("peer authentications")
    objects = [o for o in healthy(bpf_lb_sock_hostns_only=None) if o["kind"] != "PeerAuthentication"]
    objects += [peer_auth(ns, f"pa{i}", mode, sel) for i, (ns, mode, sel) in enumerate(pas)]
    check_report(objects)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_cli_any_file(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    tried("CLI on arbitrary files")
    folder: Path = tmp_path_factory.mktemp("m")
    (folder / "x.yaml").write_bytes(content)
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", "--manifests", str(folder), "-o", "json"])
    assert code in (0, 1, 2)
    assert "Traceback" not in err.getvalue()
    assert "internal error" not in err.getvalue()
    if code in (0, 1):
        json.loads(out.getvalue())
    else:
        assert err.getvalue().count("\n") == 1


names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=24
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(namespace_name=names, release=names, agent=names)
def test_rendered_output_keeps_cluster_strings_quoted(
    tmp_path_factory: pytest.TempPathFactory, namespace_name: str, release: str, agent: str
) -> None:
    """Whatever the names, every script parses and runs the commands with the names as single words."""
    from istio_cilium_compat.render import TARGETS, render
    from tests.clusters import cilium_agent, configmap
    from tests.unit.test_render import bash_syntax_ok, run_script

    tried("render with arbitrary names")
    objects = [
        o for o in healthy(bpf_lb_sock_hostns_only=None) if o["kind"] not in ("ConfigMap", "DaemonSet")
    ]
    agent_ds = cilium_agent(namespace=namespace_name)
    agent_ds["metadata"]["name"] = agent
    data = {**healthy()[0]["data"], "bpf-lb-sock-hostns-only": "false"}
    annotations = {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace_name}
    objects += [
        configmap(
            data,
            namespace=namespace_name,
            labels={"app.kubernetes.io/managed-by": "Helm"},
            annotations=annotations,
        ),
        agent_ds,
        *[o for o in healthy() if o["kind"] == "DaemonSet" and o["metadata"]["name"] != "cilium"],
    ]
    snapshot = build_snapshot(objects)
    report = evaluate(snapshot)
    workdir = tmp_path_factory.mktemp("render")
    for target in TARGETS:
        rendered = render(snapshot, report, target=target, scope="changes")
        bash_syntax_ok(rendered.apply)
        calls = [c.argv for c in run_script(rendered.apply, workdir / target)]
        assert not [a for a in calls if a[0] in ("touch", "NOT-FOUND")], calls
        if target in ("configmap-patch", "helm"):
            namespaced = [a for a in calls if a[0] == "kubectl"]
            assert namespaced and all(a[1:3] == ("-n", namespace_name) for a in namespaced), calls
            assert ("rollout", "restart", f"daemonset/{agent}") in {tuple(a[3:6]) for a in namespaced}
        if target == "helm":
            helm = next(a for a in calls if a[0] == "helm")
            assert release in helm and namespace_name in helm, helm
