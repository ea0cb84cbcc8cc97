"""CIC030-CIC032 and the report's `runtime` object, on pure snapshots: exact findings and counts.

`test_runtime.py` drives the probe through the fake API (seconds); these cases need no I/O,
so `tox -e mutation` runs them against every mutant of `rules/runtime.py` (README,
"Mutation testing"). Each asserts ids, severities, the object each evidence line names and
the numbers in the summary, on both sides of every filter the rules apply.
"""

from __future__ import annotations

import dataclasses

from istio_cilium_compat.assemble import build_snapshot
from istio_cilium_compat.report import Finding, Report, Severity
from istio_cilium_compat.rules import evaluate
from istio_cilium_compat.rules.facts import Facts
from istio_cilium_compat.rules.runtime import runtime_context
from istio_cilium_compat.snapshot import (
    ConnectionCount,
    ReadProblem,
    RuntimeSummary,
    Snapshot,
    Workload,
    ZtunnelRead,
)
from tests.clusters import ISTIO_NS, healthy, namespace, node_config

RUNTIME = ("CIC030", "CIC031", "CIC032")
U = "unknown"
SVC = "reviews.bookinfo.svc.cluster.local"
PLAIN_KEY = (
    'istio_tcp_connections_opened_total{reporter="destination",connection_security_policy!="mutual_tls"}'
)
OUT_KEY = 'istio_tcp_connections_opened_total{reporter="source"}'
POD_A = ZtunnelRead(ISTIO_NS, "ztunnel-a", "node-a", True)
POD_B = ZtunnelRead(ISTIO_NS, "ztunnel-b", "node-b", True)

# healthy(): bookinfo is ambient, istio-system is not; "legacy" is added outside the mesh.
_BASE = build_snapshot([*healthy(), namespace("legacy", mode=None)])
_SOCKET_LB = build_snapshot([*healthy(bpf_lb_sock_hostns_only=None), namespace("legacy", mode=None)])


def conn(
    reporter: str,
    mtls: bool,
    src: tuple[str, str],
    dst: tuple[str, str] = (U, U),
    service: str = U,
    node: str = "node-a",
    count: int = 1,
) -> ConnectionCount:
    return ConnectionCount(reporter, mtls, *src, *dst, service, node, count)


def summary(
    *connections: ConnectionCount, pods: tuple[ZtunnelRead, ...] = (POD_A,), **kw: object
) -> RuntimeSummary:
    return RuntimeSummary(pods=pods, connections=connections, max_pods=100, **kw)  # type: ignore[arg-type]


def run(runtime: RuntimeSummary, base: Snapshot = _BASE) -> Report:
    return evaluate(dataclasses.replace(base, runtime=runtime))


def finding(report: Report, rule_id: str) -> Finding:
    return next(f for f in report.findings if f.id == rule_id)


def fired(report: Report) -> list[str]:
    return sorted({f.id for f in report.findings} & set(RUNTIME))


def evidence(f: Finding) -> list[tuple[str, str | None, str | None, str]]:
    return [(e.object, e.key, e.value, e.note) for e in f.evidence]


# --------------------------------------------------------------------------- CIC030


def test_plaintext_counts_only_inbound_plaintext_from_ambient_sources() -> None:
    flows = (
        conn("destination", False, ("bookinfo", "ratings"), ("bookinfo", "reviews"), count=2),
        conn("destination", True, ("bookinfo", "productpage"), ("bookinfo", "reviews"), count=9),  # mTLS
        conn("destination", False, ("legacy", "curl"), ("bookinfo", "reviews"), count=5),  # not ambient
        conn("source", False, ("bookinfo", "ratings"), ("legacy", "db"), count=7),  # outbound
    )
    report = run(summary(*flows))
    assert fired(report) == ["CIC030"]
    f = finding(report, "CIC030")
    assert f.severity is Severity.ERROR
    assert f.summary == "ztunnel counted 2 plaintext connections from ambient workloads to ambient workloads"
    assert evidence(f) == [
        (
            "ztunnel Pod istio-system/ztunnel-a on node node-a",
            PLAIN_KEY,
            "2",
            "plaintext bookinfo/ratings -> bookinfo/reviews",
        )
    ]
    assert "STRICT" in f.fix and "CIC004" in f.fix


def test_plaintext_evidence_is_sorted_by_count_then_source_then_node_and_summed() -> None:
    flows = (
        conn("destination", False, ("bookinfo", "b"), ("bookinfo", "x"), node="node-b", count=3),
        conn("destination", False, ("bookinfo", "a"), ("bookinfo", "x"), node="node-b", count=3),
        conn("destination", False, ("bookinfo", "a"), ("bookinfo", "x"), node="node-a", count=3),
        conn("destination", False, ("bookinfo", "z"), ("bookinfo", "x"), node="node-c", count=8),
    )
    f = finding(run(summary(*flows, pods=(POD_A, POD_B))), "CIC030")
    assert f.summary.startswith("ztunnel counted 17 plaintext connections")
    assert [(e.object, e.value, e.note.split(" -> ")[0]) for e in f.evidence] == [
        ("ztunnel on node node-c", "8", "plaintext bookinfo/z"),  # no pod read on node-c
        ("ztunnel Pod istio-system/ztunnel-a on node node-a", "3", "plaintext bookinfo/a"),
        ("ztunnel Pod istio-system/ztunnel-b on node node-b", "3", "plaintext bookinfo/a"),
        ("ztunnel Pod istio-system/ztunnel-b on node node-b", "3", "plaintext bookinfo/b"),
    ]


def test_an_unread_pod_on_the_node_is_not_named_as_the_counter() -> None:
    unread = ZtunnelRead(ISTIO_NS, "ztunnel-old", "node-a", False, "timed out", "timeout")
    flow = conn("destination", False, ("bookinfo", "a"), ("bookinfo", "b"))
    f = finding(run(summary(flow, pods=(unread, POD_A))), "CIC030")
    assert f.evidence[0].object == "ztunnel Pod istio-system/ztunnel-a on node node-a"
    f = finding(run(summary(flow, pods=(unread,))), "CIC030")
    assert f.evidence[0].object == "ztunnel on node node-a"


def test_opted_out_note_needs_a_pod_labelled_none_in_the_source_namespace() -> None:
    flow = conn("destination", False, ("bookinfo", "batch"), ("bookinfo", "reviews"), count=4)
    plain = "plaintext bookinfo/batch -> bookinfo/reviews"
    opted = f"{plain} (namespace bookinfo has pods opted out with istio.io/dataplane-mode=none)"
    label = {"istio.io/dataplane-mode": "none"}
    cases = [
        ((Workload("Pod", "bookinfo", "batch-1", label),), opted),
        ((Workload("Service", "bookinfo", "batch", label),), plain),  # a Service is not a pod
        ((Workload("Pod", "bookinfo", "batch-1", {"istio.io/dataplane-mode": "ambient"}),), plain),
        ((Workload("Pod", "legacy", "batch-1", label),), plain),  # another namespace
    ]
    for workloads, expected in cases:
        snapshot = dataclasses.replace(_BASE, workloads=workloads)
        assert finding(run(summary(flow), snapshot), "CIC030").evidence[0].note == expected


def test_plaintext_silent_without_a_probe_or_without_ambient_plaintext() -> None:
    assert fired(evaluate(_BASE)) == []
    mtls = conn("destination", True, ("bookinfo", "a"), ("bookinfo", "b"))
    assert fired(run(summary(mtls))) == []


# --------------------------------------------------------------------------- CIC031


def test_socket_lb_share_counts_pod_ip_destinations_among_outbound() -> None:
    flows = (
        conn("source", True, ("bookinfo", "productpage"), ("bookinfo", "reviews"), SVC, count=7),
        conn("source", True, ("bookinfo", "productpage"), ("bookinfo", "reviews"), count=3),
        conn("source", True, ("bookinfo", "ratings"), ("bookinfo", "reviews"), node="node-b", count=4),
        conn("source", False, ("bookinfo", "productpage"), count=1),  # unknown destination: not to a pod
        conn("destination", True, ("bookinfo", "x"), ("bookinfo", "y"), count=50),  # inbound: ignored
    )
    report = run(summary(*flows, pods=(POD_A, POD_B)), _SOCKET_LB)
    assert fired(report) == ["CIC031"]
    f = finding(report, "CIC031")
    assert f.severity is Severity.INFO
    assert f.summary == (
        "Measured: 47% of outbound connections from ambient pods reached ztunnel as pod IPs, "
        "without their Service (7 of 15)"
    )
    assert evidence(f) == [
        (
            "the counters of 2 ztunnel pods",
            OUT_KEY,
            "15",
            "7 (47%) addressed to a pod IP (destination_service=unknown, destination_workload known); "
            "7 addressed to a Service",
        ),
        ("bookinfo/ratings -> bookinfo/reviews", "istio_tcp_connections_opened_total", "4", "no Service"),
        ("bookinfo/productpage -> bookinfo/reviews", "istio_tcp_connections_opened_total", "3", "no Service"),
    ]
    assert f.fix.startswith("Fix CIC001")


def test_socket_lb_pairs_are_summed_across_nodes_and_ties_sorted_by_name() -> None:
    flows = (
        conn("source", True, ("bookinfo", "b"), ("bookinfo", "x"), node="node-a", count=2),
        conn("source", True, ("bookinfo", "b"), ("bookinfo", "x"), node="node-b", count=2),
        conn("source", True, ("bookinfo", "a"), ("bookinfo", "x"), count=4),
    )
    unread = ZtunnelRead(ISTIO_NS, "ztunnel-c", "node-c", False, "x", "error")
    f = finding(run(summary(*flows, pods=(POD_A, unread)), _SOCKET_LB), "CIC031")
    assert f.summary.endswith("(8 of 8)") and "100%" in f.summary
    assert [(e.object, e.value) for e in f.evidence] == [
        ("the counters of 1 ztunnel pod", "8"),  # only the pods read
        ("bookinfo/a -> bookinfo/x", "4"),
        ("bookinfo/b -> bookinfo/x", "4"),
    ]


def test_socket_lb_silent_without_socket_lb_or_without_pod_ip_traffic() -> None:
    to_pod = conn("source", True, ("bookinfo", "a"), ("bookinfo", "b"), count=5)
    assert fired(run(summary(to_pod))) == []  # hostns-only: CIC001 does not apply
    to_service = conn("source", True, ("bookinfo", "a"), ("bookinfo", "b"), SVC, count=5)
    unknown_dst = conn("source", True, ("bookinfo", "a"), count=5)
    assert fired(run(summary(to_service, unknown_dst), _SOCKET_LB)) == []
    assert fired(run(summary(), _SOCKET_LB)) == []


# --------------------------------------------------------------------------- CIC032


def test_list_forbidden_names_the_namespace_and_the_grant() -> None:
    problem = ReadProblem("pods", "forbidden", "pods is forbidden", ISTIO_NS)
    f = finding(run(summary(pods=(), list_problem=problem)), "CIC032")
    assert f.severity is Severity.WARNING
    assert (
        f.summary == "Not permitted to list the ztunnel pods in namespace istio-system: no runtime evidence"
    )
    assert evidence(f) == [
        ("pods (label app=ztunnel) in namespace istio-system", None, None, "forbidden: pods is forbidden")
    ]
    assert f.fix == "Grant list on pods and get on pods/proxy (README, RBAC)."


def test_list_error_without_namespace_says_check_again() -> None:
    problem = ReadProblem("pods", "error", "HTTP 500")
    f = finding(run(summary(pods=(), list_problem=problem)), "CIC032")
    assert f.summary == "Could not list the ztunnel pods: no runtime evidence"
    assert evidence(f) == [("pods (label app=ztunnel)", None, None, "error: HTTP 500")]
    assert f.fix == "Check again."


def test_unread_pods_are_counted_by_reason_with_a_fix_per_reason() -> None:
    pods = (
        POD_A,
        ZtunnelRead(ISTIO_NS, "z-t", "node-t", False, None, "timeout"),
        ZtunnelRead(ISTIO_NS, "z-e", "", False, "HTTP 502", ""),  # no reason: counted as error
        ZtunnelRead(ISTIO_NS, "z-n", "node-n", False, None, "not-ready"),
        ZtunnelRead(ISTIO_NS, "z-l", "node-l", False, None, "too-large"),
        ZtunnelRead(ISTIO_NS, "z-s", "node-s", False, None, "skipped"),
    )
    f = finding(run(summary(pods=pods)), "CIC032")
    assert f.summary == (
        "5 of 6 ztunnel pods could not be read "
        "(1 error, 1 not Ready, 1 not attempted, 1 timed out, 1 too large)"
    )
    assert evidence(f) == [
        ("Pod istio-system/z-t on node node-t", None, None, "timed out"),
        ("Pod istio-system/z-e", None, None, "HTTP 502"),
        ("Pod istio-system/z-n on node node-n", None, None, "not Ready"),
        ("Pod istio-system/z-l on node node-l", None, None, "too large"),
        ("Pod istio-system/z-s on node node-s", None, None, "not attempted"),
    ]
    assert f.detail.startswith("1 of 6 ztunnel pods were read;")
    assert f.fix == (
        "Check that the API server can reach the ztunnel pods on port 15020 (a host firewall or a "
        "policy selecting the ztunnel pods can block it), then check again. "
        "See CIC019 for the ztunnel pods that are not Ready. "
        "Read those nodes' ztunnel metrics directly (port 15020, /metrics)."
    )


def test_each_reason_alone_brings_only_its_own_fix() -> None:
    fixes = {}
    for reason in ("timeout", "error", "not-ready", "too-large", "skipped"):
        pod = ZtunnelRead(ISTIO_NS, "z", "n", False, "e", reason)  # type: ignore[arg-type]
        fixes[reason] = finding(run(summary(pods=(POD_A, pod))), "CIC032").fix
    reach = fixes["error"]
    assert reach.startswith("Check that the API server can reach") and reach.endswith("then check again.")
    assert fixes["timeout"] == reach
    assert fixes["not-ready"] == "See CIC019 for the ztunnel pods that are not Ready."
    assert fixes["too-large"] == "Read those nodes' ztunnel metrics directly (port 15020, /metrics)."
    assert fixes["skipped"] == "Check again."


def test_forbidden_pods_name_their_namespaces_and_the_role() -> None:
    pods = (
        ZtunnelRead("ns-b", "z1", "n1", False, "403", "forbidden"),
        ZtunnelRead("ns-a", "z2", "n2", False, "403", "forbidden"),
        ZtunnelRead("ns-a", "z3", "n3", False, None, "timeout"),
    )
    f = finding(run(summary(pods=pods)), "CIC032")
    assert f.summary == "Not permitted to read ztunnel metrics: grant get on pods/proxy in ns-a, ns-b"
    assert f.fix.startswith(
        'Grant get on pods/proxy where ztunnel runs, e.g. a Role with {apiGroups: [""], resources: '
        "[pods/proxy], verbs: [get]} (README, RBAC). Check that the API server can reach"
    )
    assert f.detail.startswith("0 of 3 ztunnel pods were read;")


def test_more_pods_than_the_cap_is_its_own_evidence() -> None:
    f = finding(run(summary(pods=(POD_A,), more_pods=True)), "CIC032")
    assert f.summary == "Only the first 100 ztunnel pods were read (--runtime-max-pods)"
    assert evidence(f) == [
        ("ztunnel pods beyond the first 100", None, None, "not read: raise --runtime-max-pods to read more")
    ]
    assert f.fix == "Check again."
    unread = ZtunnelRead(ISTIO_NS, "z", "n", False, None, "timeout")
    f = finding(run(summary(pods=(POD_A, unread), more_pods=True)), "CIC032")
    assert f.summary.startswith("1 of 2 ztunnel pods could not be read")
    assert [e.object for e in f.evidence] == [
        "Pod istio-system/z on node n",
        "ztunnel pods beyond the first 100",
    ]


def test_unread_silent_when_every_pod_was_read() -> None:
    assert fired(run(summary(pods=(POD_A, POD_B)))) == []


# --------------------------------------------------------------------------- the report's object


def test_runtime_context_sums_each_direction() -> None:
    flows = (
        conn("destination", True, ("bookinfo", "a"), ("bookinfo", "b"), SVC, count=9),
        conn("destination", False, ("bookinfo", "a"), ("bookinfo", "b"), count=2),
        conn("destination", False, ("legacy", "c"), ("bookinfo", "b"), count=5),
        conn("source", True, ("bookinfo", "a"), ("bookinfo", "b"), SVC, count=7),
        conn("source", True, ("bookinfo", "a"), ("bookinfo", "b"), count=3),
        conn("source", False, ("bookinfo", "a"), count=1),
    )
    unread = ZtunnelRead(ISTIO_NS, "z", "n", False, "timed out", "timeout")
    problem = ReadProblem("pods", "error", "partial list")
    context = runtime_context(
        Facts(dataclasses.replace(_BASE, runtime=summary(*flows, pods=(POD_A, unread), list_problem=problem)))
    )
    assert context == {
        "pods": [
            {"namespace": ISTIO_NS, "name": "ztunnel-a", "node": "node-a", "read": True, "error": None},
            {"namespace": ISTIO_NS, "name": "z", "node": "n", "read": False, "error": "timed out"},
        ],
        "inbound": {"mutual_tls": 9, "plaintext": 7, "plaintext_from_ambient": 2},
        "outbound": {"with_service": 7, "without_service": 4, "without_service_to_pod": 3},
        "more_pods": False,
        "list_error": "partial list",
    }
    assert runtime_context(Facts(_BASE)) is None
    empty = runtime_context(Facts(dataclasses.replace(_BASE, runtime=RuntimeSummary(more_pods=True))))
    assert empty is not None and (empty["more_pods"], empty["list_error"]) == (True, None)


# --------------------------------------------------------------------------- values the mutation run asked for

WEB = "web.shop.svc.cluster.local"  # sorts after "unknown": a Service all the same


def test_a_service_name_sorting_after_unknown_is_still_a_service() -> None:
    flows = (
        conn("source", True, ("bookinfo", "a"), ("bookinfo", "b"), WEB, count=6),
        conn("source", True, ("bookinfo", "a"), ("bookinfo", "b"), count=2),
    )
    context = runtime_context(Facts(dataclasses.replace(_SOCKET_LB, runtime=summary(*flows))))
    assert context is not None
    assert context["outbound"] == {"with_service": 6, "without_service": 2, "without_service_to_pod": 2}
    f = finding(run(summary(*flows), _SOCKET_LB), "CIC031")
    assert f.summary.endswith("(2 of 8)")
    assert f.evidence[0].note.endswith("; 6 addressed to a Service")


def test_the_counter_named_is_the_read_pod_on_that_very_node() -> None:
    flow = conn("destination", False, ("bookinfo", "a"), ("bookinfo", "b"), node="node-a")
    f = finding(run(summary(flow, pods=(POD_B, POD_A))), "CIC030")
    assert f.evidence[0].object == "ztunnel Pod istio-system/ztunnel-a on node node-a"


def test_only_the_none_label_opts_pods_out() -> None:
    flow = conn("destination", False, ("bookinfo", "batch"), ("bookinfo", "reviews"))
    odd = Workload("Pod", "bookinfo", "batch-1", {"istio.io/dataplane-mode": "unmanaged"})
    snapshot = dataclasses.replace(_BASE, workloads=(odd,))
    assert finding(run(summary(flow), snapshot), "CIC030").evidence[0].note == (
        "plaintext bookinfo/batch -> bookinfo/reviews"
    )


def test_an_unreachable_api_is_no_permission_problem() -> None:
    problem = ReadProblem("pods", "unreachable", "connection refused", ISTIO_NS)
    f = finding(run(summary(pods=(), list_problem=problem)), "CIC032")
    assert f.summary == "Could not list the ztunnel pods in namespace istio-system: no runtime evidence"
    assert f.fix == "Check again."


def test_socket_lb_on_some_nodes_only_says_the_share_covers_every_ztunnel() -> None:
    flow = conn("source", True, ("bookinfo", "a"), ("bookinfo", "b"), count=5)
    some = build_snapshot(
        [
            *healthy(),
            namespace("legacy", mode=None),
            node_config("pool-b", {"bpf-lb-sock-hostns-only": "false"}),
        ]
    )
    detail = finding(run(summary(flow), some), "CIC031").detail
    assert detail.endswith(
        " Socket LB is in effect only on nodes selected by CiliumNodeConfig kube-system/pool-b; the share "
        "counts every ztunnel read, including nodes where Service connections keep their Service."
    )
    everywhere = finding(run(summary(flow), _SOCKET_LB), "CIC031").detail
    assert "in effect only on" not in everywhere
    assert everywhere.endswith("Counters are cumulative since each ztunnel started.")
