"""The runtime probe against the fake API's pod proxy, its rules (CIC030-CIC032), CLI and action."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from istio_cilium_compat.assemble import build_snapshot
from istio_cilium_compat.cli import RUNTIME_MAX_PODS, main
from istio_cilium_compat.collect import KubeApi, client_from_kubeconfig, read_snapshot
from istio_cilium_compat.report import Severity, to_text
from istio_cilium_compat.rules import evaluate
from istio_cilium_compat.runtime import DEFAULT_MAX_PODS, ProbeStats, probe
from istio_cilium_compat.snapshot import ConnectionCount, RuntimeSummary, Snapshot, ZtunnelRead
from tests.clusters import ISTIO_NS, N_CHECKS, healthy, namespace, node_config
from tests.fakekube import FakeKube, PodPort
from tests.ztunnel import Conn, exposition, ztunnel_pod

REVIEWS = "reviews.bookinfo.svc.cluster.local"
NODE_A_CONNS = [
    Conn("source", ("bookinfo", "productpage"), ("bookinfo", "reviews"), REVIEWS, True, 7),
    Conn("source", ("bookinfo", "productpage"), ("bookinfo", "reviews"), None, True, 3),
    Conn("source", ("bookinfo", "productpage"), None, None, False, 1),  # egress to an unknown address
    Conn("destination", ("bookinfo", "ratings"), ("bookinfo", "reviews"), None, False, 2),
    Conn("destination", ("legacy", "curl"), ("bookinfo", "reviews"), None, False, 5),
    Conn("destination", ("bookinfo", "productpage"), ("bookinfo", "reviews"), REVIEWS, True, 9),
]
NODE_B_CONNS = [Conn("source", ("bookinfo", "ratings"), ("bookinfo", "reviews"), None, True, 4)]
PROXY = "/api/v1/namespaces/istio-system/pods/{}:15020/proxy/metrics"


def cluster(**cilium: str | None) -> list[dict[str, Any]]:
    return [
        *healthy(**cilium),
        namespace("legacy", mode=None),
        ztunnel_pod("ztunnel-a", "node-a"),
        ztunnel_pod("ztunnel-b", "node-b"),
        ztunnel_pod("ztunnel-c", "node-c", ready=False),
    ]


def serve(fake: FakeKube, pod: str, conns: list[Conn], **port: Any) -> None:
    fake.serve_pod_port(ISTIO_NS, pod, 15020, PodPort(exposition(conns).encode(), **port))


def client(fake: FakeKube, tmp_path: Path, timeout: float = 5.0) -> KubeApi:
    return client_from_kubeconfig(str(fake.write_kubeconfig(tmp_path / "kubeconfig")), None, timeout=timeout)


def run_probe(fake: FakeKube, tmp_path: Path, timeout: float = 5.0, **kwargs: Any) -> RuntimeSummary:
    return probe(client(fake, tmp_path, timeout), namespace=ISTIO_NS, timeout=timeout, **kwargs)


def with_runtime(fake: FakeKube, tmp_path: Path, timeout: float = 5.0, **kwargs: Any) -> Snapshot:
    c = client(fake, tmp_path, timeout)
    snapshot = read_snapshot(c)
    return dataclasses.replace(snapshot, runtime=probe(c, namespace=ISTIO_NS, timeout=timeout, **kwargs))


def _summary(*connections: ConnectionCount, **fields: Any) -> RuntimeSummary:
    pods = (ZtunnelRead(ISTIO_NS, "ztunnel-a", "node-a", True),)
    return RuntimeSummary(**{"pods": pods, "connections": connections, "max_pods": 100, **fields})


_BASE = build_snapshot(healthy())
_SOCKET_LB = build_snapshot(healthy(bpf_lb_sock_hostns_only=None))
_PLAIN = ConnectionCount("destination", False, "bookinfo", "a", "bookinfo", "b", "unknown", "node-a", 3)
_TO_POD = ConnectionCount("source", True, "bookinfo", "a", "bookinfo", "b", "unknown", "node-a", 5)
CASES: list[Snapshot] = [
    # Pure snapshots for the registry's both-ways test (tests/unit/test_registry.py).
    dataclasses.replace(_BASE, runtime=_summary(_PLAIN)),  # CIC030
    dataclasses.replace(_SOCKET_LB, runtime=_summary(_TO_POD)),  # CIC031 (and CIC001)
    dataclasses.replace(_BASE, runtime=_summary(_TO_POD)),  # no socket LB: CIC031 silent
    dataclasses.replace(
        _BASE, runtime=_summary(pods=(ZtunnelRead(ISTIO_NS, "z", "n", False, "x", "timeout"),))
    ),  # CIC032
    dataclasses.replace(_BASE, runtime=_summary()),  # all read, nothing counted: all silent
]


# ----------------------------------------------------------------------------- the probe


def test_probe_reads_ready_pods_and_sums_the_opened_family(tmp_path: Path) -> None:
    with FakeKube(cluster()) as fake:
        serve(fake, "ztunnel-a", NODE_A_CONNS)
        serve(fake, "ztunnel-b", NODE_B_CONNS)
        stats = ProbeStats()
        summary = run_probe(fake, tmp_path, stats=stats)
        requests = fake.requests
    assert summary.pods == (
        ZtunnelRead(ISTIO_NS, "ztunnel-a", "node-a", True),
        ZtunnelRead(ISTIO_NS, "ztunnel-b", "node-b", True),
        ZtunnelRead(
            ISTIO_NS, "ztunnel-c", "node-c", False, "not Ready (phase Pending): not read", "not-ready"
        ),
    )
    assert summary.more_pods is False and summary.list_problem is None
    assert (summary.max_pods, summary.timeout) == (DEFAULT_MAX_PODS, 5.0)
    unknown = "unknown"
    assert summary.connections == (
        ConnectionCount(
            "destination", False, "bookinfo", "ratings", "bookinfo", "reviews", unknown, "node-a", 2
        ),
        ConnectionCount("destination", False, "legacy", "curl", "bookinfo", "reviews", unknown, "node-a", 5),
        ConnectionCount(
            "destination", True, "bookinfo", "productpage", "bookinfo", "reviews", REVIEWS, "node-a", 9
        ),
        ConnectionCount("source", False, "bookinfo", "productpage", unknown, unknown, unknown, "node-a", 1),
        ConnectionCount(
            "source", True, "bookinfo", "productpage", "bookinfo", "reviews", REVIEWS, "node-a", 7
        ),
        ConnectionCount(
            "source", True, "bookinfo", "productpage", "bookinfo", "reviews", unknown, "node-a", 3
        ),
        ConnectionCount("source", True, "bookinfo", "ratings", "bookinfo", "reviews", unknown, "node-b", 4),
    )
    # One list (limit = cap + 1), one GET per Ready pod, nothing else, GET only.
    assert [(r.method, r.path, r.query) for r in requests] == [
        ("GET", "/api/v1/namespaces/istio-system/pods", {"labelSelector": ["app=ztunnel"], "limit": ["101"]}),
        ("GET", PROXY.format("ztunnel-a"), {}),
        ("GET", PROXY.format("ztunnel-b"), {}),
    ]
    assert stats.requests == 3
    assert 0 < stats.wire_bytes < stats.text_bytes  # ztunnel compresses when asked (gzip)


def test_gzip_or_not_the_counts_are_the_same(tmp_path: Path) -> None:
    with FakeKube(cluster()) as fake:
        serve(fake, "ztunnel-a", NODE_A_CONNS, gzip=False)
        serve(fake, "ztunnel-b", NODE_B_CONNS, gzip=False)
        plain = run_probe(fake, tmp_path)
        serve(fake, "ztunnel-a", NODE_A_CONNS)
        serve(fake, "ztunnel-b", NODE_B_CONNS)
        gzipped = run_probe(fake, tmp_path)
    assert plain == gzipped


def test_reading_stops_when_the_family_ends(tmp_path: Path) -> None:
    """Only the opened family matters: the (equally long) closed and bytes families are never read."""
    conns = [
        Conn("source", ("bookinfo", f"app-{i}"), ("bookinfo", "reviews"), REVIEWS, True, i + 1)
        for i in range(2000)
    ]
    body = exposition(conns).encode()
    with FakeKube(cluster()) as fake:
        fake.serve_pod_port(ISTIO_NS, "ztunnel-a", 15020, PodPort(body, gzip=False))
        stats = ProbeStats()
        summary = run_probe(fake, tmp_path, stats=stats)
    assert summary.pods[0].read is True
    assert sum(c.count for c in summary.connections) == sum(range(1, 2001))
    assert stats.text_bytes < len(body) * 0.4


def test_the_port_the_pod_declares_is_used(tmp_path: Path) -> None:
    objects = [
        *healthy(),
        ztunnel_pod("ztunnel-a", "node-a", port=15888),
        ztunnel_pod("ztunnel-b", "node-b", port=None),
    ]
    with FakeKube(objects) as fake:
        fake.serve_pod_port(ISTIO_NS, "ztunnel-a", 15888, PodPort(exposition(NODE_B_CONNS).encode()))
        summary = run_probe(fake, tmp_path)
        paths = [r.path for r in fake.requests if "/proxy/" in r.path]
    assert paths == [
        "/api/v1/namespaces/istio-system/pods/ztunnel-a:15888/proxy/metrics",
        PROXY.format("ztunnel-b"),
    ]
    assert [p.read for p in summary.pods] == [True, False]


def test_forbidden_pod_proxy_names_the_permission_and_stops(tmp_path: Path) -> None:
    with FakeKube(cluster()) as fake:
        serve(fake, "ztunnel-a", NODE_A_CONNS)
        fake.forbid("pods/proxy", verbs=("get",))
        snapshot = with_runtime(fake, tmp_path)
        proxied = [r.path for r in fake.requests if "/proxy/" in r.path]
    assert proxied == [PROXY.format("ztunnel-a")]  # RBAC refuses the others the same way
    assert snapshot.runtime is not None
    assert [(p.name, p.reason) for p in snapshot.runtime.pods] == [
        ("ztunnel-a", "forbidden"),
        ("ztunnel-b", "skipped"),
        ("ztunnel-c", "not-ready"),
    ]
    first = snapshot.runtime.pods[0].error or ""
    assert 'cannot get resource "pods/proxy" in API group "" in the namespace "istio-system"' in first
    report = evaluate(snapshot)
    assert report.ids == ["CIC032"]  # the configuration checks ran and passed
    finding = report.ordered[0]
    assert finding.severity is Severity.WARNING
    assert finding.summary == "Not permitted to read ztunnel metrics: grant get on pods/proxy in istio-system"
    assert [e.object for e in finding.evidence] == [
        "Pod istio-system/ztunnel-a on node node-a",
        "Pod istio-system/ztunnel-b on node node-b",
        "Pod istio-system/ztunnel-c on node node-c",
    ]
    assert finding.evidence[1].note == "not read: pods/proxy get is forbidden (see the first pod)"
    assert "resources: [pods/proxy], verbs: [get]" in finding.fix
    assert report.verdict.value == "compatible"


def test_forbidden_pod_list_is_a_finding(tmp_path: Path) -> None:
    with FakeKube(cluster()) as fake:
        snapshot = read_snapshot(client(fake, tmp_path))
        fake.forbid("pods", namespace=ISTIO_NS)
        summary = run_probe(fake, tmp_path)
    assert summary.pods == () and summary.list_problem is not None
    assert summary.list_problem.kind == "forbidden"
    report = evaluate(dataclasses.replace(snapshot, runtime=summary))
    assert report.ids == ["CIC032"]
    assert (
        report.ordered[0].summary
        == "Not permitted to list the ztunnel pods in namespace istio-system: no runtime evidence"
    )
    assert report.to_dict()["runtime"]["list_error"].startswith(
        'pods is forbidden: User "system:serviceaccount'
    )


def test_503_and_unserved_paths_are_per_pod_errors(tmp_path: Path) -> None:
    with FakeKube(cluster()) as fake:
        fake.serve_pod_port(ISTIO_NS, "ztunnel-a", 15020, PodPort(b"", paths=("/other",)))
        summary = run_probe(fake, tmp_path)  # ztunnel-b: nothing listens
    assert [(p.read, p.reason, p.error) for p in summary.pods[:2]] == [
        (False, "error", "HTTP 404: Not Found"),
        (
            False,
            "error",
            "HTTP 503: error trying to reach service: dial tcp 10.1.0.9:15020: connect: connection refused",
        ),
    ]


def test_upstream_error_status_is_reported(tmp_path: Path) -> None:
    with FakeKube(cluster()) as fake:
        fake.serve_pod_port(ISTIO_NS, "ztunnel-a", 15020, PodPort(b"encoder failed", status=500))
        summary = run_probe(fake, tmp_path)
    assert summary.pods[0].error == "HTTP 500: encoder failed"


def test_slow_bodies_time_out_and_three_in_a_row_stop_the_probe(tmp_path: Path) -> None:
    pods = [ztunnel_pod(f"ztunnel-{i}", f"node-{i}") for i in range(5)]
    slow = exposition(NODE_A_CONNS).encode()
    with FakeKube([*healthy(), *pods]) as fake:
        for i in range(5):
            fake.serve_pod_port(
                ISTIO_NS, f"ztunnel-{i}", 15020, PodPort(slow, gzip=False, chunk=200, pause=0.1)
            )
        summary = run_probe(fake, tmp_path, timeout=0.3)
        proxied = [r.path for r in fake.requests if "/proxy/" in r.path]
    assert [p.reason for p in summary.pods] == ["timeout", "timeout", "timeout", "skipped", "skipped"]
    assert summary.pods[0].error is not None and summary.pods[0].error.startswith("timed out after 0.3 s")
    assert (
        summary.pods[3].error == "not read: 3 pods in a row timed out (can the API server reach port 15020?)"
    )
    assert len(proxied) == 3


def test_a_stalled_pod_times_out_on_the_read_timeout(tmp_path: Path) -> None:
    with FakeKube(cluster()) as fake:
        serve(fake, "ztunnel-b", NODE_B_CONNS)
        fake.fault("ztunnel-a:15020/proxy", delay=2)
        summary = run_probe(fake, tmp_path, timeout=0.3)
    assert [p.reason for p in summary.pods] == ["timeout", "", "not-ready"]
    assert summary.pods[1].read is True


def test_oversized_metrics_are_not_counted(tmp_path: Path) -> None:
    """Families before ours larger than the cap: the pod is reported, its partial counts dropped."""
    padding = "".join(f'istio_xds_message_total{{url="type-{i}"}} 1\n' for i in range(5000))
    body = exposition(NODE_A_CONNS).replace(
        "# HELP istio_tcp_connections_opened", padding + "# HELP istio_tcp_connections_opened"
    )
    with FakeKube(cluster()) as fake:
        fake.serve_pod_port(ISTIO_NS, "ztunnel-a", 15020, PodPort(body.encode()))
        serve(fake, "ztunnel-b", NODE_B_CONNS)
        summary = run_probe(fake, tmp_path, max_bytes=64 * 1024)
    assert (summary.pods[0].read, summary.pods[0].reason) == (False, "too-large")
    assert (
        summary.pods[0].error
        == "metrics larger than 64 KiB before istio_tcp_connections_opened ended: not counted"
    )
    assert {c.node for c in summary.connections} == {"node-b"}


def test_a_reset_connection_is_a_per_pod_error(tmp_path: Path) -> None:
    with FakeKube(cluster()) as fake:
        serve(fake, "ztunnel-b", NODE_B_CONNS)
        fake.fault("ztunnel-a:15020/proxy", reset=True)
        summary = run_probe(fake, tmp_path)
    assert summary.pods[0].reason == "error"
    assert summary.pods[1].read is True


def test_unreachable_api_stops_the_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the list, the API goes away: the first failed connection ends the probe."""
    pods = [ztunnel_pod(f"ztunnel-{i}", f"node-{i}") for i in range(3)]
    with FakeKube([*healthy(), *pods]) as fake:
        c = client(fake, tmp_path)
        original = c.client.list

        def list_then_stop(*args: Any, **kwargs: Any) -> Any:
            found = list(original(*args, **kwargs))
            fake.stop()
            return iter(found)

        monkeypatch.setattr(c.client, "list", list_then_stop)
        summary = probe(c, namespace=ISTIO_NS)
    assert [p.reason for p in summary.pods] == ["error", "skipped", "skipped"]
    assert (summary.pods[0].error or "").startswith("Kubernetes API unreachable: ConnectError")
    assert summary.pods[1].error == "not read: Kubernetes API unreachable (ConnectError)"


def test_the_pod_cap_reads_the_first_n_and_says_more_exist(tmp_path: Path) -> None:
    pods = [ztunnel_pod(f"ztunnel-{i}", f"node-{i}") for i in range(4)]
    with FakeKube([*healthy(), *pods]) as fake:
        for i in range(4):
            serve(fake, f"ztunnel-{i}", NODE_B_CONNS)
        snapshot = with_runtime(fake, tmp_path, max_pods=2)
        lists = [r.query for r in fake.requests if r.path.endswith("/pods")]
    assert snapshot.runtime is not None
    assert [p.name for p in snapshot.runtime.pods] == ["ztunnel-0", "ztunnel-1"]
    assert snapshot.runtime.more_pods is True
    assert lists[-1] == {"labelSelector": ["app=ztunnel"], "limit": ["3"]}
    report = evaluate(snapshot)
    assert report.ids == ["CIC032"]
    assert report.ordered[0].summary == "Only the first 2 ztunnel pods were read (--runtime-max-pods)"


def test_no_ztunnel_pods_gives_an_empty_summary(tmp_path: Path) -> None:
    with FakeKube(healthy()) as fake:
        summary = run_probe(fake, tmp_path)
    assert summary == RuntimeSummary(max_pods=DEFAULT_MAX_PODS, max_bytes=summary.max_bytes, timeout=5.0)


# ----------------------------------------------------------------------------- rules and report


def test_runtime_rules_and_json_with_socket_lb(tmp_path: Path) -> None:
    with FakeKube(cluster(bpf_lb_sock_hostns_only=None)) as fake:
        serve(fake, "ztunnel-a", NODE_A_CONNS)
        serve(fake, "ztunnel-b", NODE_B_CONNS)
        report = evaluate(with_runtime(fake, tmp_path))
    assert report.ids == ["CIC001", "CIC030", "CIC032", "CIC031"]
    assert report.checks == tuple(sorted(report.checks)) and {"CIC030", "CIC031", "CIC032"} <= set(
        report.checks
    )
    plaintext = report.ordered[1]
    assert (
        plaintext.summary
        == "ztunnel counted 2 plaintext connections from ambient workloads to ambient workloads"
    )
    assert [str(e) for e in plaintext.evidence] == [
        'istio_tcp_connections_opened_total{reporter="destination",connection_security_policy!="mutual_tls"} = "2" '
        "in ztunnel Pod istio-system/ztunnel-a on node node-a (plaintext bookinfo/ratings -> bookinfo/reviews)"
    ]
    socket_lb = report.ordered[3]
    assert socket_lb.severity is Severity.INFO
    assert socket_lb.summary == (
        "Measured: 47% of outbound connections from ambient pods reached ztunnel as pod IPs, "
        "without their Service (7 of 15)"
    )
    assert [(e.object, e.value) for e in socket_lb.evidence] == [
        ("the counters of 2 ztunnel pods", "15"),
        ("bookinfo/ratings -> bookinfo/reviews", "4"),
        ("bookinfo/productpage -> bookinfo/reviews", "3"),
    ]
    assert "StatefulSet peers" in socket_lb.detail
    assert report.to_dict()["runtime"] == {
        "pods": [
            {"namespace": ISTIO_NS, "name": "ztunnel-a", "node": "node-a", "read": True, "error": None},
            {"namespace": ISTIO_NS, "name": "ztunnel-b", "node": "node-b", "read": True, "error": None},
            {
                "namespace": ISTIO_NS,
                "name": "ztunnel-c",
                "node": "node-c",
                "read": False,
                "error": "not Ready (phase Pending): not read",
            },
        ],
        "inbound": {"mutual_tls": 9, "plaintext": 7, "plaintext_from_ambient": 2},
        "outbound": {"with_service": 7, "without_service": 8, "without_service_to_pod": 7},
        "more_pods": False,
        "list_error": None,
    }
    text = to_text(report)
    assert (
        "Runtime (ztunnel's counters, cumulative since each ztunnel started):\n  2 of 3 ztunnel pods read\n"
        in text
    )
    assert "  inbound connections:  9 mTLS, 7 plaintext (2 from ambient namespaces)" in text
    assert "  outbound connections: 7 to a Service, 8 without one (7 to a pod IP)" in text


def test_no_socket_lb_finding_when_hostns_only(tmp_path: Path) -> None:
    with FakeKube(cluster()) as fake:
        serve(fake, "ztunnel-a", NODE_A_CONNS)
        serve(fake, "ztunnel-b", NODE_B_CONNS)
        report = evaluate(with_runtime(fake, tmp_path))
    assert report.ids == ["CIC030", "CIC032"]


def test_opted_out_pods_are_named_in_the_plaintext_evidence() -> None:
    from istio_cilium_compat.snapshot import NamespaceInfo, Workload

    flow = ConnectionCount(
        "destination", False, "bookinfo", "batch", "bookinfo", "reviews", "unknown", "n1", 4
    )
    snapshot = Snapshot(
        namespaces=(NamespaceInfo("bookinfo", {"istio.io/dataplane-mode": "ambient"}),),
        workloads=(Workload("Pod", "bookinfo", "batch-1", {"istio.io/dataplane-mode": "none"}),),
        runtime=RuntimeSummary(pods=(ZtunnelRead(ISTIO_NS, "z", "n1", True),), connections=(flow,)),
    )
    finding = next(f for f in evaluate(snapshot).findings if f.id == "CIC030")
    assert finding.evidence[0].note == (
        "plaintext bookinfo/batch -> bookinfo/reviews "
        "(namespace bookinfo has pods opted out with istio.io/dataplane-mode=none)"
    )


def test_registry_cases_fire_as_labelled() -> None:
    assert [sorted({f.id for f in evaluate(s).findings} & {"CIC030", "CIC031", "CIC032"}) for s in CASES] == [
        ["CIC030"],
        ["CIC031"],
        [],
        ["CIC032"],
        [],
    ]


def test_without_a_probe_no_runtime_rule_runs_and_no_runtime_key() -> None:
    report = evaluate(Snapshot())
    assert not {"CIC030", "CIC031", "CIC032"} & set(report.checks)
    assert "runtime" not in report.to_dict()
    assert "Runtime" not in to_text(report)


# ----------------------------------------------------------------------------- CLI


def test_cli_runtime_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeKube(cluster()) as fake:
        serve(fake, "ztunnel-a", NODE_A_CONNS)
        serve(fake, "ztunnel-b", NODE_B_CONNS)
        kubeconfig = str(fake.write_kubeconfig(tmp_path / "kubeconfig"))
        code = main(
            ["check", "--kubeconfig", kubeconfig, "--runtime", "--runtime-max-pods", "1", "-o", "json"]
        )
    data = json.loads(capsys.readouterr().out)
    assert code == 1  # CIC030 is an error
    assert [p["name"] for p in data["runtime"]["pods"]] == ["ztunnel-a"]
    assert data["runtime"]["more_pods"] is True
    assert [f["id"] for f in data["findings"]] == ["CIC030", "CIC032"]


def test_cli_without_runtime_sends_no_proxy_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeKube(cluster()) as fake:
        kubeconfig = str(fake.write_kubeconfig(tmp_path / "kubeconfig"))
        assert main(["check", "--kubeconfig", kubeconfig, "-o", "json"]) == 0
        assert not [r for r in fake.requests if "/proxy/" in r.path]
    assert "runtime" not in json.loads(capsys.readouterr().out)


def test_cli_runtime_needs_a_live_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--manifests", "examples/canonical-k8s-1.36-recommended", "--runtime"])
    out, err = capsys.readouterr()
    assert (exit_info.value.code, out) == (2, "")
    assert err.splitlines()[-1] == (
        "istio-cilium-compat check: error: --runtime needs a live cluster (it reads ztunnel's metrics "
        "through the API server): drop --manifests/--cilium-values"
    )


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_cli_runtime_max_pods_must_be_positive(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--runtime", "--runtime-max-pods", value])
    assert exit_info.value.code == 2
    assert "--runtime-max-pods: expected a whole number of at least 1" in capsys.readouterr().err


def test_cli_default_matches_the_probe() -> None:
    assert RUNTIME_MAX_PODS == DEFAULT_MAX_PODS


# ----------------------------------------------------------------------------- charm action


def test_action_runtime_parameter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from charm import IstioCiliumCompatCharm

    with FakeKube(cluster()) as fake:
        serve(fake, "ztunnel-a", NODE_A_CONNS)
        serve(fake, "ztunnel-b", NODE_B_CONNS)
        monkeypatch.setenv("KUBECONFIG", str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
        ctx = testing.Context(IstioCiliumCompatCharm)
        state = ctx.run(ctx.on.action("check-compatibility", params={"runtime": True}), testing.State())
        with_probe = dict(ctx.action_results or {})
        proxied = len([r for r in fake.requests if "/proxy/" in r.path])
        ctx.run(ctx.on.action("check-compatibility"), testing.State())
        without = dict(ctx.action_results or {})
        assert len([r for r in fake.requests if "/proxy/" in r.path]) == proxied == 2
    assert json.loads(with_probe["runtime"])["inbound"] == {
        "mutual_tls": 9,
        "plaintext": 7,
        "plaintext_from_ambient": 2,
    }
    assert with_probe["verdict"] == "incompatible"
    assert set(with_probe["findings"]) == {"cic030", "cic032"}
    assert "Runtime (ztunnel's counters" in with_probe["report"]
    # The unit status comes from the hook's configuration check, never from the probe.
    assert state.unit_status == testing.ActiveStatus(
        f"Cilium 1.17.4: compatible with Istio ambient ({N_CHECKS} checks)"
    )
    assert "runtime" not in without and without["verdict"] == "compatible"


def test_without_a_root_namespace_every_namespace_is_listed(tmp_path: Path) -> None:
    objects = [*healthy(), ztunnel_pod("ztunnel-x", "node-x", namespace="mesh")]
    with FakeKube(objects) as fake:
        fake.serve_pod_port("mesh", "ztunnel-x", 15020, PodPort(exposition(NODE_B_CONNS).encode()))
        summary = probe(client(fake, tmp_path), namespace=None)
        paths = [r.path for r in fake.requests]
    assert paths == ["/api/v1/pods", "/api/v1/namespaces/mesh/pods/ztunnel-x:15020/proxy/metrics"]
    assert [(p.namespace, p.read) for p in summary.pods] == [("mesh", True)]


def test_cli_runtime_yaml_has_the_runtime_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    with FakeKube(cluster()) as fake:
        serve(fake, "ztunnel-a", NODE_A_CONNS)
        serve(fake, "ztunnel-b", NODE_B_CONNS)
        kubeconfig = str(fake.write_kubeconfig(tmp_path / "kubeconfig"))
        main(["check", "--kubeconfig", kubeconfig, "--runtime", "-o", "yaml"])
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["runtime"]["outbound"] == {
        "with_service": 7,
        "without_service": 8,
        "without_service_to_pod": 7,
    }


@pytest.mark.parametrize(
    ("objects", "tail"),
    [
        (healthy(bpf_lb_sock_hostns_only=None), ""),
        (
            [*healthy(), node_config("pool-b", {"bpf-lb-sock-hostns-only": "false"})],
            " Socket LB is in effect only on nodes selected by CiliumNodeConfig kube-system/pool-b; the share "
            "counts every ztunnel read, including nodes where Service connections keep their Service.",
        ),
    ],
)
def test_the_share_says_when_socket_lb_holds_on_some_nodes_only(
    objects: list[dict[str, Any]], tail: str
) -> None:
    """Node labels are not read, so the share is over every node: CIC031 says so when it matters."""
    snapshot = dataclasses.replace(build_snapshot(objects), runtime=_summary(_TO_POD))
    [finding] = [f for f in evaluate(snapshot).findings if f.id == "CIC031"]
    assert finding.detail.endswith("Counters are cumulative since each ztunnel started." + tail)
