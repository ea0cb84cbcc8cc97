"""CIC030-CIC032: what ztunnel's own counters say (`check --runtime`), judged without I/O.

The probe (`runtime.py`) leaves `istio_tcp_connections_opened_total` summed per
reporter, mTLS or not, source, destination, Service and node in
`Snapshot.runtime`; these rules read nothing else from the cluster. The counters
are cumulative since each ztunnel started, and count connections when they open,
before authorization (istio/ztunnel `src/proxy/metrics.rs`
`ConnectionResultBuilder::build`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ..report import Evidence, Severity
from ..snapshot import ConnectionCount, RuntimeSummary, ZtunnelRead
from .effective import Bypass, socket_lb_bypasses
from .facts import DATAPLANE_MODE_LABEL, Facts, capped, object_name
from .registry import Hit, rule

UNKNOWN = "unknown"
COUNTER = "istio_tcp_connections_opened_total"
METRIC_SOURCES = (
    "istio/ztunnel src/proxy/metrics.rs (tcp_connections_opened, CommonTrafficLabels, SecurityPolicy)",
    "istio/ztunnel src/metrics.rs (istio_ prefix; DefaultedUnknown encodes absent values as unknown)",
    "istio/ztunnel src/metrics/server.rs (/metrics on the stats port, 15020 in src/config.rs)",
)


def _inbound(summary: RuntimeSummary) -> Iterable[ConnectionCount]:
    return (c for c in summary.connections if c.reporter == "destination")


def _outbound(summary: RuntimeSummary) -> Iterable[ConnectionCount]:
    return (c for c in summary.connections if c.reporter == "source")


def _ambient_plaintext(facts: Facts, summary: RuntimeSummary) -> list[ConnectionCount]:
    """Inbound plaintext whose source workload is in an ambient namespace."""
    ambient = facts.ambient_set
    return [c for c in _inbound(summary) if not c.mutual_tls and c.source_namespace in ambient]


def _to_pod(c: ConnectionCount) -> bool:
    """Addressed to a pod ztunnel knows, not to a Service (what socket LB makes of Service traffic)."""
    return c.destination_service == UNKNOWN and c.destination_workload != UNKNOWN


def runtime_context(facts: Facts) -> dict[str, object] | None:
    """The report's `runtime` object (JSON/YAML), or None when no probe ran."""
    summary = facts.snapshot.runtime
    if summary is None:
        return None
    inbound = list(_inbound(summary))
    outbound = list(_outbound(summary))
    return {
        "pods": [
            {"namespace": p.namespace, "name": p.name, "node": p.node, "read": p.read, "error": p.error}
            for p in summary.pods
        ],
        "inbound": {
            "mutual_tls": sum(c.count for c in inbound if c.mutual_tls),
            "plaintext": sum(c.count for c in inbound if not c.mutual_tls),
            "plaintext_from_ambient": sum(c.count for c in _ambient_plaintext(facts, summary)),
        },
        "outbound": {
            "with_service": sum(c.count for c in outbound if c.destination_service != UNKNOWN),
            "without_service": sum(c.count for c in outbound if c.destination_service == UNKNOWN),
            "without_service_to_pod": sum(c.count for c in outbound if _to_pod(c)),
        },
        "more_pods": summary.more_pods,
        "list_error": summary.list_problem.message if summary.list_problem else None,
    }


def _pod_on(summary: RuntimeSummary, node: str) -> str:
    for pod in summary.pods:
        if pod.node == node and pod.read:
            return f"ztunnel Pod {pod.namespace}/{pod.name} on node {node}"
    return f"ztunnel on node {node}"


def _pods(n: int) -> str:
    return f"{n} ztunnel pod" if n == 1 else f"{n} ztunnel pods"


def _workload(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


@rule(
    "CIC030",
    Severity.ERROR,
    "Runtime: plaintext from ambient workloads reached ambient workloads (ztunnel counters)",
    sources=(
        *METRIC_SOURCES,
        "istio/ztunnel src/proxy/inbound_passthrough.rs (reporter=destination, connection_security_policy=unknown)",
        "istio/ztunnel src/proxy/outbound.rs (conn_metrics_from_request: ambient sources send HBONE, mutual_tls)",
        "istio/ztunnel src/proxy/inbound.rs (HBONE inbound: reporter=destination, mutual_tls)",
    ),
    reads=("runtime", "namespaces", "workloads"),
)
def ambient_plaintext(facts: Facts) -> Hit | None:
    """CIC030: an ambient source's traffic arrived without HBONE, so it skipped its own ztunnel."""
    summary = facts.snapshot.runtime
    if summary is None:
        return None
    flows = _ambient_plaintext(facts, summary)
    if not flows:
        return None
    total = sum(c.count for c in flows)
    opted_out = {
        w.namespace
        for w in facts.snapshot.workloads
        if w.kind == "Pod" and w.labels.get(DATAPLANE_MODE_LABEL) == "none"
    }
    evidence = []
    for c in sorted(flows, key=lambda c: (-c.count, c.source_namespace, c.source_workload, c.node)):
        note = (
            f"plaintext {_workload(c.source_namespace, c.source_workload)} -> "
            f"{_workload(c.destination_namespace, c.destination_workload)}"
        )
        if c.source_namespace in opted_out:
            note += f" (namespace {c.source_namespace} has pods opted out with {DATAPLANE_MODE_LABEL}=none)"
        evidence.append(
            Evidence(
                object=_pod_on(summary, c.node),
                key=f'{COUNTER}{{reporter="destination",connection_security_policy!="mutual_tls"}}',
                value=str(c.count),
                note=note,
            )
        )
    return Hit(
        summary=f"ztunnel counted {total} plaintext connections from ambient workloads to ambient workloads",
        detail=(
            "A pod in an ambient namespace sends through its own ztunnel, which speaks HBONE (mTLS) to "
            "ambient destinations. These connections arrived at the destination's ztunnel in plaintext: "
            "either the source pod was not captured by its ztunnel, or its ztunnel took the destination for "
            "a pod outside the mesh. They were not encrypted and carried no workload identity. Under "
            "PERMISSIVE mTLS they were served; under STRICT they were refused (the counter counts "
            "connections when they open, before authorization). Counters are cumulative since each "
            "ztunnel started."
        ),
        evidence=capped(evidence, "more source/destination pairs"),
        fix=(
            "Find why the source pods are not captured: is istio-cni ready on their node (CIC004, "
            "CIC019), was the pod started before its namespace was enrolled (restart it), or is it "
            f"opted out ({DATAPLANE_MODE_LABEL}=none) or on the host network? "
            "`istioctl ztunnel-config workloads` shows each pod's protocol (HBONE when captured). "
            "Enforce STRICT mTLS (a PeerAuthentication in the Istio root namespace) so such traffic is "
            "refused instead of served in plaintext."
        ),
    )


@rule(
    "CIC031",
    Severity.INFO,
    "Runtime: with socket LB, ambient pods' outbound connections carry no Service (ztunnel counters)",
    sources=(
        *METRIC_SOURCES,
        "istio/ztunnel src/proxy/outbound.rs (conn_metrics_from_request: destination_service = the Service addressed)",
        "istio/ztunnel src/state.rs (find_upstream: a pod-IP destination has no Service)",
        "cilium/cilium bpf/bpf_sock.c (cgroup connect hook: Service VIP rewritten to a backend before the SYN)",
        "istio/istio#49149",
    ),
    reads=("runtime", "cilium_configs", "node_configs"),
)
def socket_lb_seen(facts: Facts) -> Hit | None:
    """CIC031: measure what CIC001 predicts, with the caveat that direct pod-IP clients look the same.

    INFO, not WARNING: CIC001 already carries the severity and the fix for the setting, and this
    signal alone cannot tell socket LB's translation from clients that dial pod IPs on purpose.
    """
    summary = facts.snapshot.runtime
    bypasses = socket_lb_bypasses(facts)
    if summary is None or not bypasses:
        return None
    outbound = list(_outbound(summary))
    total = sum(c.count for c in outbound)
    to_pod = [c for c in outbound if _to_pod(c)]
    pod_count = sum(c.count for c in to_pod)
    if not pod_count:
        return None
    with_service = sum(c.count for c in outbound if c.destination_service != UNKNOWN)
    share = pod_count / total
    pairs: Counter[tuple[str, str]] = Counter()
    for c in to_pod:
        pairs[
            (
                _workload(c.source_namespace, c.source_workload),
                _workload(c.destination_namespace, c.destination_workload),
            )
        ] += c.count
    evidence = [
        Evidence(
            object=f"the counters of {_pods(sum(1 for p in summary.pods if p.read))}",
            key=f'{COUNTER}{{reporter="source"}}',
            value=str(total),
            note=(
                f"{pod_count} ({share:.0%}) addressed to a pod IP (destination_service=unknown, "
                f"destination_workload known); {with_service} addressed to a Service"
            ),
        ),
        *(
            Evidence(object=f"{source} -> {destination}", key=COUNTER, value=str(count), note="no Service")
            for (source, destination), count in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        ),
    ]
    return Hit(
        summary=(
            f"Measured: {share:.0%} of outbound connections from ambient pods reached ztunnel "
            f"as pod IPs, without their Service ({pod_count} of {total})"
        ),
        detail=(
            "Socket LB is in effect for pods (CIC001): Cilium rewrites a connection to a Service into one to "
            "a backend pod before ztunnel sees it, so ztunnel counts it with destination_service=unknown. "
            "Clients that dial pod IPs themselves (StatefulSet peers, headless Services, clients that read "
            "endpoints) look the same: a share close to all traffic while your clients use Service names is "
            "the translation. Counters are cumulative since each ztunnel started."
            + _only_some_nodes(bypasses)
        ),
        evidence=capped(evidence, "more source/destination pairs"),
        fix="Fix CIC001 (bpf-lb-sock-hostns-only=true); after the agents restart, new connections carry their Service.",
    )


def _only_some_nodes(bypasses: Iterable[Bypass]) -> str:
    """Node labels are not read, so the share cannot be split by node: say so when it should be."""
    labels = [b.view.label for b in bypasses]
    if "all nodes" in labels:
        return ""
    return (
        f" Socket LB is in effect only on {', '.join(labels)}; the share counts every ztunnel read, "
        "including nodes where Service connections keep their Service."
    )


_WHY = {
    "forbidden": "permission denied",
    "error": "error",
    "timeout": "timed out",
    "too-large": "too large",
    "not-ready": "not Ready",
    "skipped": "not attempted",
}


def _unread(summary: RuntimeSummary) -> list[ZtunnelRead]:
    return [p for p in summary.pods if not p.read]


@rule(
    "CIC032",
    Severity.WARNING,
    "Runtime: ztunnel pods whose metrics could not be read (counts cover the others only)",
    sources=(
        "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources",
        "istio/ztunnel src/metrics/server.rs (/metrics on the stats port)",
        "istio/istio manifests/charts/ztunnel/templates/daemonset.yaml (containerPort 15020 ztunnel-stats)",
    ),
    reads=("runtime",),
)
def unread_pods(facts: Facts) -> Hit | None:
    """CIC032: say which ztunnels were not measured and why, so an absent count is not read as zero."""
    summary = facts.snapshot.runtime
    if summary is None:
        return None
    problem = summary.list_problem
    unread = _unread(summary)
    if problem is None and not unread and not summary.more_pods:
        return None
    where = f" in namespace {problem.namespace}" if problem and problem.namespace else ""
    if problem is not None:
        forbidden = problem.kind == "forbidden"
        return Hit(
            summary=(
                f"Not permitted to list the ztunnel pods{where}: no runtime evidence"
                if forbidden
                else f"Could not list the ztunnel pods{where}: no runtime evidence"
            ),
            detail="The configuration checks ran; ztunnel's counters were not read.",
            evidence=(
                Evidence(
                    object=f"pods (label app=ztunnel){where}", note=f"{problem.kind}: {problem.message}"
                ),
            ),
            fix="Grant list on pods and get on pods/proxy (README, RBAC)." if forbidden else "Check again.",
        )
    reasons = Counter(p.reason or "error" for p in unread)
    forbidden = [p for p in unread if p.reason == "forbidden"]
    namespaces = sorted({p.namespace for p in forbidden})
    evidence = [
        Evidence(
            object=object_name("Pod", p.namespace, p.name) + (f" on node {p.node}" if p.node else ""),
            note=p.error or _WHY.get(p.reason, p.reason),
        )
        for p in unread
    ]
    if summary.more_pods:
        evidence.append(
            Evidence(
                object=f"ztunnel pods beyond the first {summary.max_pods}",
                note="not read: raise --runtime-max-pods to read more",
            )
        )
    read = sum(1 for p in summary.pods if p.read)
    if forbidden:
        head = f"Not permitted to read ztunnel metrics: grant get on pods/proxy in {', '.join(namespaces)}"
    elif unread:
        counts = ", ".join(f"{n} {_WHY.get(r, r)}" for r, n in sorted(reasons.items()))
        head = f"{len(unread)} of {len(summary.pods)} ztunnel pods could not be read ({counts})"
    else:
        head = f"Only the first {summary.max_pods} ztunnel pods were read (--runtime-max-pods)"
    fixes = []
    if forbidden:
        fixes.append(
            "Grant get on pods/proxy where ztunnel runs, e.g. a Role with "
            '{apiGroups: [""], resources: [pods/proxy], verbs: [get]} (README, RBAC).'
        )
    if reasons.get("timeout") or reasons.get("error"):
        fixes.append(
            "Check that the API server can reach the ztunnel pods on port 15020 (a host firewall or a "
            "policy selecting the ztunnel pods can block it), then check again."
        )
    if reasons.get("not-ready"):
        fixes.append("See CIC019 for the ztunnel pods that are not Ready.")
    if reasons.get("too-large"):
        fixes.append("Read those nodes' ztunnel metrics directly (port 15020, /metrics).")
    return Hit(
        summary=head,
        detail=(
            f"{read} of {len(summary.pods)} ztunnel pods were read; the runtime counts cover only those, "
            "and the configuration checks ran regardless."
        ),
        evidence=capped(evidence, "more pods"),
        fix=" ".join(fixes) or "Check again.",
    )
