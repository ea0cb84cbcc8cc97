"""The live collector: lightkube over real HTTP against the fake API server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from istio_cilium_compat.cli import main
from istio_cilium_compat.collect import CHUNK, Reads, client_from_kubeconfig, collect, read_snapshot
from istio_cilium_compat.manifests import load_snapshot
from istio_cilium_compat.rules import evaluate
from tests.bigcluster import big_cluster
from tests.bigcluster import pod as bigpod
from tests.clusters import (
    authorization_policy,
    healthy,
    http_route,
    istio_pod,
    node_config,
    peer_auth,
    service,
    service_ref,
    waypoint,
)
from tests.fakekube import FakeKube

GW = "gateway.networking.k8s.io"

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_DIRS = sorted(p for p in EXAMPLES.iterdir() if p.is_dir())


def client(fake: FakeKube, tmp_path: Path, timeout: float = 5.0):
    return client_from_kubeconfig(str(fake.write_kubeconfig(tmp_path / "kubeconfig")), None, timeout=timeout)


def comparable(report) -> dict:
    data = report.to_dict()
    data.pop("source")
    return data


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=[p.name for p in EXAMPLE_DIRS])
def test_collector_matches_manifests(folder: Path, tmp_path: Path) -> None:
    with FakeKube.from_paths(folder) as fake:
        live = evaluate(read_snapshot(client(fake, tmp_path)))
        assert {r.method for r in fake.requests} == {"GET"}
    offline = evaluate(load_snapshot([folder]))
    assert comparable(live) == comparable(offline)
    assert live.source.startswith("cluster: http://127.0.0.1:")


def run_collect(objects: list, tmp_path: Path) -> tuple[Reads, list]:
    with FakeKube(objects) as fake:
        reads = collect(client(fake, tmp_path))
        return reads, list(fake.requests)


READS = 19
"""First pages per check: 11 Cilium and mesh reads, plus 8 for waypoints, workloads and L7 policy."""


def test_request_count_is_constant(tmp_path: Path) -> None:
    small, small_requests = run_collect(big_cluster(10, cilium_policies=20), tmp_path)
    large, large_requests = run_collect(
        big_cluster(5000, pods_per_namespace=1, cilium_policies=200), tmp_path
    )
    assert small.requests == len(small_requests) == READS
    assert large.requests == len(large_requests)
    first_pages = [(r.path, sorted(r.query.items())) for r in small_requests]
    assert [
        (r.path, sorted(r.query.items())) for r in large_requests if "continue" not in r.query
    ] == first_pages
    # Only the lists that grow with the cluster are paged, in pages of CHUNK.
    continued = [r for r in large_requests if "continue" in r.query]
    assert {r.path for r in continued} == {"/api/v1/namespaces", "/apis/networking.k8s.io/v1/networkpolicies"}
    assert all(r.query["limit"] == [str(CHUNK)] for r in continued)
    assert len([r for r in continued if "networkpolicies" in r.path]) == 5000 // CHUNK - 1
    # Never every pod: each pod list selects by label (the Cilium agents, or Istio's labels).
    pod_selectors = [r.query["labelSelector"] for r in large_requests if r.path.endswith("/pods")]
    assert pod_selectors == [["k8s-app=cilium"], ["istio.io/dataplane-mode"], ["istio.io/use-waypoint"]]


def test_only_get_and_no_secrets(tmp_path: Path) -> None:
    _, requests = run_collect(healthy(), tmp_path)
    assert {r.method for r in requests} == {"GET"}
    assert not [r for r in requests if "secret" in r.path]


def test_forbidden_resource_gives_finding_and_rest_of_report(tmp_path: Path) -> None:
    with FakeKube(healthy(bpf_lb_sock_hostns_only=None, cni_exclusive="true")) as fake:
        fake.forbid("ciliumnetworkpolicies", group="cilium.io")
        report = evaluate(read_snapshot(client(fake, tmp_path)))
    assert report.ids == ["CIC001", "CIC003", "CIC014"]
    assert "ciliumnetworkpolicies.cilium.io" in report.ordered[2].summary
    assert report.ordered[2].fix == "Grant get/list on ciliumnetworkpolicies.cilium.io (README, RBAC)."
    assert "juju" not in report.ordered[2].fix  # the engine knows nothing of Juju
    assert report.verdict.value == "incompatible"


def test_forbidden_configmaps_gives_unknown(tmp_path: Path) -> None:
    with FakeKube(healthy()) as fake:
        fake.forbid("configmaps")
        report = evaluate(read_snapshot(client(fake, tmp_path)))
    assert report.ids == ["CIC007", "CIC014"]
    assert report.verdict.value == "unknown"


CRDS = [
    ("cilium.io", "v2", "ciliumnodeconfigs"),
    ("cilium.io", "v2alpha1", "ciliumnodeconfigs"),
    ("cilium.io", "v2", "ciliumnetworkpolicies"),
    ("cilium.io", "v2", "ciliumclusterwidenetworkpolicies"),
    *[
        ("security.istio.io", v, p)
        for p in ("peerauthentications", "authorizationpolicies")
        for v in ("v1", "v1beta1")
    ],
    *[(GW, v, p) for p in ("gateways", "httproutes") for v in ("v1", "v1beta1")],
    (GW, "v1", "grpcroutes"),
    (GW, "v1alpha2", "grpcroutes"),
]


@pytest.mark.parametrize("body", ["text", "status"])
def test_missing_crds_mean_not_installed(tmp_path: Path, body: str) -> None:
    objects = [o for o in healthy() if o["kind"] != "PeerAuthentication"]
    with FakeKube(objects, not_found_body=body) as fake:  # type: ignore[arg-type]
        for version, plural in [
            ("v2", "ciliumnodeconfigs"),
            ("v2alpha1", "ciliumnodeconfigs"),
            ("v2", "ciliumnetworkpolicies"),
            ("v2", "ciliumclusterwidenetworkpolicies"),
        ]:
            fake.uninstall("cilium.io", version, plural)
        for group, version, plural in CRDS:
            fake.uninstall(group, version, plural)
        snapshot = read_snapshot(client(fake, tmp_path))
        paths = [(r.path, str(sorted(r.query.items()))) for r in fake.requests]
    assert snapshot.problems == ()
    assert evaluate(snapshot).ids == []
    # Each version asked for once: six CRDs have an older version to try after a 404.
    assert len(paths) == READS + 6
    assert len(set(paths)) == len(paths)


def test_older_crd_versions_are_read(tmp_path: Path) -> None:
    objects = [
        *[o for o in healthy() if o["kind"] != "PeerAuthentication"],
        peer_auth("istio-system", mode="PERMISSIVE", version="v1beta1"),
        node_config("pool-a", {"bpf-lb-sock-hostns-only": "false"}, version="v2alpha1"),
        waypoint(),
        authorization_policy("deny", "bookinfo", service_ref("reviews"), version="v1beta1"),
        http_route("grpc", "bookinfo", service_ref("reviews"), kind="GRPCRoute", version="v1alpha2"),
    ]
    with FakeKube(objects) as fake:
        for group, version, plural in [
            ("cilium.io", "v2", "ciliumnodeconfigs"),
            ("security.istio.io", "v1", "peerauthentications"),
            ("security.istio.io", "v1", "authorizationpolicies"),
            (GW, "v1", "grpcroutes"),
            (GW, "v1", "gateways"),
        ]:
            fake.uninstall(group, version, plural)
        snapshot = read_snapshot(client(fake, tmp_path))
        paths = [r.path for r in fake.requests]
    assert evaluate(snapshot).ids == ["CIC001"]
    assert snapshot.problems == ()
    assert any("/v2alpha1/" in p for p in paths) and any("/v1beta1/" in p for p in paths)
    assert [
        (o.kind, o.api_version)
        for o in (*snapshot.authorization_policies, *snapshot.routes, *snapshot.gateways)
    ] == [
        ("AuthorizationPolicy", "security.istio.io/v1beta1"),
        ("GRPCRoute", f"{GW}/v1alpha2"),
        ("Gateway", f"{GW}/v1beta1"),
    ]


def test_workloads_are_read_by_label_across_namespaces_and_paged(tmp_path: Path) -> None:
    pods = [
        istio_pod(f"app-{i:04d}", f"ns-{i % 7}", {"istio.io/dataplane-mode": "ambient"}) for i in range(1200)
    ]
    bound = [
        istio_pod(
            "bound", "shop", {"istio.io/use-waypoint": "waypoint", "istio.io/dataplane-mode": "ambient"}
        )
    ]
    services = [
        service("reviews", "bookinfo", {"istio.io/use-waypoint": "waypoint"}),
        service("plain", "bookinfo"),
    ]
    with FakeKube([*healthy(), *pods, *bound, *services, bigpod("unlabelled", "shop")]) as fake:
        reads = collect(client(fake, tmp_path))
        requests = fake.requests
    snapshot = reads.snapshot()
    assert len([w for w in snapshot.workloads if w.kind == "Pod"]) == 1201
    assert [(w.kind, w.name) for w in snapshot.workloads if w.kind == "Service"] == [("Service", "reviews")]
    # Read by both selectors, kept once (also in what `dump` writes).
    assert len([o for o in reads.objects if o["metadata"]["name"] == "bound"]) == 1
    assert "unlabelled" not in [o["metadata"]["name"] for o in reads.objects]
    pod_pages = [r for r in requests if r.path == "/api/v1/pods"]
    assert [r.query["labelSelector"] for r in pod_pages] == [["istio.io/dataplane-mode"]] * 3 + [
        ["istio.io/use-waypoint"]
    ]
    assert all(r.query["limit"] == [str(CHUNK)] for r in pod_pages)


def test_forbidden_new_reads_are_named(tmp_path: Path) -> None:
    with FakeKube(healthy()) as fake:
        fake.forbid("services")
        fake.forbid("gateways", group=GW)
        snapshot = read_snapshot(client(fake, tmp_path))
    assert [(p.resource, p.kind) for p in snapshot.problems] == [
        ("services", "forbidden"),
        (f"gateways.{GW}", "forbidden"),
    ]
    assert evaluate(snapshot).ids == ["CIC014"]


def test_slow_server_gives_unknown_within_the_timeout(tmp_path: Path) -> None:
    with FakeKube(healthy()) as fake:
        fake.fault("/", delay=5)
        start = time.monotonic()
        snapshot = read_snapshot(client(fake, tmp_path, timeout=0.5))
        elapsed = time.monotonic() - start
        requests = len(fake.requests)
    report = evaluate(snapshot)
    assert elapsed < 2
    assert requests == 1  # stops after the first timeout instead of waiting once per resource
    assert report.verdict.value == "unknown"
    assert "CIC015" in report.ids


def test_closed_port_is_unreachable(tmp_path: Path) -> None:
    fake = FakeKube(healthy())
    fake.start()
    path = fake.write_kubeconfig(tmp_path / "kubeconfig")
    fake.stop()
    snapshot = read_snapshot(client_from_kubeconfig(str(path), None, timeout=1))
    assert [p.kind for p in snapshot.problems] == ["unreachable"]


@pytest.mark.parametrize(
    ("fault", "kind"),
    [({"status": 500}, "error"), ({"reset": True}, "error"), ({"truncate": True}, "error")],
)
def test_one_broken_resource(tmp_path: Path, fault: dict, kind: str) -> None:
    with FakeKube(healthy(bpf_lb_sock_hostns_only=None)) as fake:
        fake.fault("/networkpolicies", **fault)
        snapshot = read_snapshot(client(fake, tmp_path))
    assert [(p.resource, p.kind) for p in snapshot.problems] == [("networkpolicies.networking.k8s.io", kind)]
    assert evaluate(snapshot).ids == ["CIC001", "CIC015"]


def test_an_answer_that_is_not_json_is_an_error_not_a_malformed_object(tmp_path: Path) -> None:
    """A proxy's HTML page where a list belongs: the read failed, no object is to blame."""
    with FakeKube(healthy(bpf_lb_sock_hostns_only=None)) as fake:
        fake.fault("/networkpolicies", body=b"<html><body>Proxy login required</body></html>")
        snapshot = read_snapshot(client(fake, tmp_path))
    [problem] = snapshot.problems
    assert (problem.resource, problem.kind) == ("networkpolicies.networking.k8s.io", "error")
    assert problem.message == (
        "the answer is not a Kubernetes object: DecodeError: JSON is malformed: invalid character (byte 0)"
    )
    report = evaluate(snapshot)
    assert report.ids == ["CIC001", "CIC015"]
    [finding] = [f for f in report.findings if f.id == "CIC015"]
    assert finding.fix == "Check the API server and network. Then check again."


def test_cli_against_a_live_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeKube.from_paths(EXAMPLES / "canonical-k8s-1.36-charmed-istio") as fake:
        kubeconfig = str(fake.write_kubeconfig(tmp_path / "kubeconfig"))
        assert main(["check", "--kubeconfig", kubeconfig, "-o", "json"]) == 1
        data = json.loads(capsys.readouterr().out)
        assert [f["id"] for f in data["findings"]] == ["CIC001", "CIC004", "CIC022", "CIC019"]
    with FakeKube.from_paths(EXAMPLES / "canonical-k8s-1.36-recommended") as fake:
        kubeconfig = str(fake.write_kubeconfig(tmp_path / "kubeconfig2"))
        assert main(["check", "--kubeconfig", kubeconfig]) == 0
        assert "Verdict: compatible" in capsys.readouterr().out
    assert main(["check", "--kubeconfig", kubeconfig, "--timeout", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Kubernetes API") and err.count("\n") == 1


def test_cli_uses_kubeconfig_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeKube(healthy()) as fake:
        monkeypatch.setenv("KUBECONFIG", str(fake.write_kubeconfig(tmp_path / "kc")))
        assert main(["check", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "compatible"


def test_cli_accepts_a_kubeconfig_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeKube(healthy()) as fake:
        real = fake.write_kubeconfig(tmp_path / "kc")
        monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{real}")
        assert main(["check", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "compatible"


def test_dump_then_check_offline_gives_the_same_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dump` saves what `check` read; `check --manifests` on it judges the same."""
    with FakeKube.from_paths(EXAMPLES / "canonical-k8s-1.36-charmed-istio") as fake:
        kubeconfig = str(fake.write_kubeconfig(tmp_path / "kubeconfig"))
        assert main(["check", "--kubeconfig", kubeconfig, "-o", "json"]) == 1
        live = json.loads(capsys.readouterr().out)
        assert main(["dump", str(tmp_path / "dump"), "--kubeconfig", kubeconfig]) == 0
        assert {r.method for r in fake.requests} == {"GET"}
        assert not [r for r in fake.requests if "secret" in r.path]
    out = capsys.readouterr().out
    assert out.startswith("wrote ") and str(tmp_path / "dump") in out
    assert main(["check", "--manifests", str(tmp_path / "dump"), "-o", "json"]) == 1
    offline = json.loads(capsys.readouterr().out)
    for report in (live, offline):
        report.pop("source")
    assert offline == live


def test_dump_unreachable_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeKube(healthy())
    fake.start()
    kubeconfig = str(fake.write_kubeconfig(tmp_path / "kubeconfig"))
    fake.stop()
    assert main(["dump", str(tmp_path / "dump"), "--kubeconfig", kubeconfig, "--timeout", "0.5"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot reach the Kubernetes API")
    assert not (tmp_path / "dump").exists()


def test_reads_are_raw_dicts_through_lightkube_generic_resources(tmp_path: Path) -> None:
    """No typed models: a malformed object reaches assemble as it came, with its kind and apiVersion."""
    from lightkube.generic_resource import GenericGlobalResource, GenericNamespacedResource

    from istio_cilium_compat import collect as module

    kinds = [v for v in vars(module).values() if isinstance(v, module.Kind)]
    assert len(kinds) >= 9
    for kind in kinds:
        for _, res in kind.classes():
            assert issubclass(res, (GenericNamespacedResource, GenericGlobalResource)), kind
    broken = healthy()
    broken[1]["spec"]["template"] = "not an object"
    reads, _ = run_collect(broken, tmp_path)
    assert all(type(o) is dict for o in reads.objects)
    (agent,) = [o for o in reads.objects if o["metadata"]["name"] == "cilium" and o["kind"] == "DaemonSet"]
    assert (agent["apiVersion"], agent["spec"]["template"]) == ("apps/v1", "not an object")
    assert reads.problems == ()  # reading is not judging: assemble names the object


def test_no_private_lightkube_access() -> None:
    source = (Path(__file__).resolve().parents[2] / "src" / "istio_cilium_compat" / "collect.py").read_text()
    assert "._client" not in source


@pytest.mark.parametrize(
    "labels",
    [{}, {"app.kubernetes.io/name": "ztunnel", "app.kubernetes.io/part-of": "istio"}],
    ids=["istio-1.21-1.22", "istio-1.23-1.29"],
)
def test_ztunnel_is_found_as_istio_charts_label_it(labels: dict, tmp_path: Path) -> None:
    """Istio's charts put app=ztunnel on ztunnel's pods and selector, never on its DaemonSet."""
    objects = healthy()
    [ds] = [o for o in objects if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "ztunnel"]
    ds["metadata"]["labels"] = labels
    # A DaemonSet that only selects other pods is not ztunnel, wherever it runs.
    other = json.loads(json.dumps(ds))
    other["metadata"]["name"] = "node-exporter"
    other["spec"]["selector"] = {"matchLabels": {"app": "node-exporter"}}
    objects.append(other)
    with FakeKube(objects) as fake:
        live = read_snapshot(client(fake, tmp_path))
    offline = Reads(objects=tuple(objects), problems=(), requests=0, source="test").snapshot()
    for snapshot in (live, offline):
        assert [(z.namespace, z.name) for z in snapshot.ztunnels] == [("istio-system", "ztunnel")]
        assert snapshot.istio_root_namespace == "istio-system"
        assert "CIC008" not in [f.id for f in evaluate(snapshot).findings]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("clusters: [unclosed", "not a kubeconfig: "),
        ("- a list\n", "not a kubeconfig: not a YAML mapping"),
        ("{}", ""),
    ],
)
def test_a_broken_kubeconfig_is_one_collect_error(tmp_path: Path, text: str, reason: str) -> None:
    from istio_cilium_compat.collect import CollectError

    path = tmp_path / "kubeconfig"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CollectError, match=f"cannot load kubeconfig {path}: {reason}"):
        client_from_kubeconfig(str(path), None)
