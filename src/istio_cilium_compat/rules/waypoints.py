"""CIC022: what socket LB silently takes away — the waypoint-bound Services and their L7 policy.

ztunnel looks for a *service* waypoint only when the connection was addressed to a Service
(istio/ztunnel `src/proxy/outbound.rs` `build_request`). Socket LB hands ztunnel a backend
pod IP instead, so for pod-to-Service traffic a Service's waypoint (`istio.io/waypoint-for:
service`, the default, or `all`) is skipped. A workload waypoint (`workload`/`all`, bound by
the pod's or its namespace's `istio.io/use-waypoint`) still gets the connection, but in its
"direct pod" chains, where only policies attached to the waypoint itself apply — not those
attached to the Service, nor routes (istio/istio `pilot/pkg/networking/core/listener_waypoint.go`).
Istio 1.21 had no service waypoints (`istio.io/use-waypoint` arrived in 1.22): nothing to skip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import remedy as r
from ..assemble import as_list, as_map, as_str
from ..report import Evidence, Severity
from ..snapshot import IstioObject
from .effective import socket_lb_bypasses
from .facts import Facts, capped, object_name
from .registry import Hit, rule

USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
WAYPOINT_FOR = "istio.io/waypoint-for"
WAYPOINT_CLASS = "istio-waypoint"
SERVICE_KINDS = frozenset({"Service"})
"""`targetRefs`/`parentRefs` kinds that name a Kubernetes Service (group "" or "core")."""
GATEWAY_GROUP = "gateway.networking.k8s.io"


@dataclass(frozen=True)
class Waypoint:
    """A waypoint a namespace or Service is bound to, and whether it serves Service traffic."""

    namespace: str
    name: str
    serves: str
    """`service`, `workload`, `all`, `none`, or `service` (default) when the Gateway was not seen."""
    seen: bool


def _waypoints(facts: Facts) -> dict[tuple[str, str], IstioObject]:
    return {
        (g.namespace, g.name): g
        for g in facts.snapshot.gateways
        if as_str(g.spec.get("gatewayClassName")) == WAYPOINT_CLASS
    }


def _binding(
    labels: Mapping[str, str], namespace: str, gateways: Mapping[tuple[str, str], IstioObject]
) -> Waypoint | None:
    """The waypoint named by `istio.io/use-waypoint` (None when unset or `none`)."""
    name = labels.get(USE_WAYPOINT, "")
    if not name or name == "none":
        return None
    where = labels.get(USE_WAYPOINT_NAMESPACE) or namespace
    gateway = gateways.get((where, name))
    serves = (gateway.labels.get(WAYPOINT_FOR) if gateway else None) or "service"
    return Waypoint(where, name, serves, gateway is not None)


def _skipped(waypoint: Waypoint) -> bool:
    """Socket LB takes Service traffic away from a waypoint that serves Services."""
    return waypoint.serves in ("service", "all")


def _note(waypoint: Waypoint, pods_bound: bool) -> str:
    """`pods_bound`: the pods behind the Service are bound to the same waypoint (namespace label)."""
    gateway = object_name("Gateway", waypoint.namespace, waypoint.name)
    seen = "" if waypoint.seen else " (not found: Istio's default waypoint-for=service assumed)"
    if waypoint.serves == "all" and pods_bound:
        return (
            f"waypoint {gateway} (waypoint-for=all){seen}: gets the traffic as direct pod traffic; "
            "Service-attached policies and routes do not apply"
        )
    return f"waypoint {gateway} (waypoint-for={waypoint.serves}){seen}: skipped for pod-to-Service traffic"


def _refs(spec: Mapping[str, Any], plural: str, singular: str) -> Iterable[Mapping[str, Any]]:
    yield from (as_map(ref) for ref in as_list(spec.get(plural)))
    if singular and isinstance(spec.get(singular), Mapping):
        yield as_map(spec.get(singular))


def _names_service(ref: Mapping[str, Any]) -> bool:
    return as_str(ref.get("kind")) in SERVICE_KINDS and as_str(ref.get("group")) in ("", "core")


def _names_gateway(ref: Mapping[str, Any]) -> bool:
    return as_str(ref.get("kind")) == "Gateway" and as_str(ref.get("group")) in ("", GATEWAY_GROUP)


class _Bindings:
    """Which Services and waypoints of the ambient mesh socket LB takes Service traffic from."""

    def __init__(self, facts: Facts) -> None:
        self.gateways = _waypoints(facts)
        self.ambient = facts.ambient_set
        self.namespaces = {ns.name: ns.labels for ns in facts.snapshot.namespaces}
        self.services = {
            (w.namespace, w.name): w.labels for w in facts.snapshot.workloads if w.kind == "Service"
        }

    def service(self, namespace: str, name: str) -> Waypoint | None:
        """The waypoint of a Service: its own label wins over its namespace's (`none` opts out)."""
        own = self.services.get((namespace, name))
        if own is not None and USE_WAYPOINT in own:
            return _binding(own, namespace, self.gateways)
        return self.namespace(namespace)

    def namespace(self, namespace: str) -> Waypoint | None:
        """The waypoint an ambient namespace's Services use by default."""
        if namespace not in self.ambient:
            return None
        return _binding(self.namespaces.get(namespace, {}), namespace, self.gateways)


def _bound(facts: Facts, bindings: _Bindings) -> list[Evidence]:
    evidence = []
    for ns in facts.ambient_namespaces:
        waypoint = bindings.namespace(ns)
        if waypoint is not None and _skipped(waypoint):
            evidence.append(
                Evidence(
                    object=f"Namespace {ns}",
                    key=f"label {USE_WAYPOINT}",
                    value=waypoint.name,
                    note=_note(waypoint, pods_bound=True),
                )
            )
    for workload in facts.snapshot.workloads:
        if workload.kind != "Service" or USE_WAYPOINT not in workload.labels:
            continue
        waypoint = bindings.service(workload.namespace, workload.name)
        if waypoint is not None and _skipped(waypoint) and _in_mesh(facts, workload.namespace):
            evidence.append(
                Evidence(
                    object=object_name("Service", workload.namespace, workload.name),
                    key=f"label {USE_WAYPOINT}",
                    value=waypoint.name,
                    note=_note(waypoint, pods_bound=waypoint == bindings.namespace(workload.namespace)),
                )
            )
    return evidence


def _in_mesh(facts: Facts, namespace: str) -> bool:
    """A Service's waypoint is used when its clients are ambient; its own namespace is the best hint."""
    return namespace in facts.ambient_set or any(
        p.namespace == namespace for p in facts.snapshot.workloads if p.kind == "Pod"
    )


def _attached(facts: Facts, bindings: _Bindings) -> list[Evidence]:
    """L7 AuthorizationPolicies and routes attached to a Service or to a service waypoint."""
    evidence = []
    for policy in facts.snapshot.authorization_policies:
        for ref in _refs(policy.spec, "targetRefs", "targetRef"):
            target_ns = as_str(ref.get("namespace")) or policy.namespace
            target = as_str(ref.get("name"))
            if _names_service(ref):
                waypoint = bindings.service(target_ns, target)
                if waypoint is None or not _skipped(waypoint):
                    continue
                why = f"targets Service {target_ns}/{target}: not applied to pod-to-Service traffic"
            elif _names_gateway(ref):
                gateway = bindings.gateways.get((target_ns, target))
                if gateway is None or (gateway.labels.get(WAYPOINT_FOR) or "service") != "service":
                    continue
                why = f"targets waypoint {target_ns}/{target} (waypoint-for=service): skipped by socket LB"
            else:
                continue
            evidence.append(
                Evidence(object=object_name("AuthorizationPolicy", policy.namespace, policy.name), note=why)
            )
            break
    for route in facts.snapshot.routes:
        for ref in _refs(route.spec, "parentRefs", ""):
            parent_ns = as_str(ref.get("namespace")) or route.namespace
            parent = as_str(ref.get("name"))
            waypoint = bindings.service(parent_ns, parent) if _names_service(ref) else None
            if waypoint is None or not _skipped(waypoint):
                continue
            evidence.append(
                Evidence(
                    object=object_name(route.kind, route.namespace, route.name),
                    note=f"routes Service {parent_ns}/{parent}: not applied to pod-to-Service traffic",
                )
            )
            break
    return evidence


@rule(
    "CIC022",
    Severity.ERROR,
    "Socket LB skips waypoints: L7 AuthorizationPolicies and routes bound to Services are not applied",
    sources=(
        "istio/ztunnel src/proxy/outbound.rs (build_request: a service waypoint only for Service-addressed traffic)",
        "istio/istio pilot/pkg/serviceregistry/kube/controller/ambient/waypoints.go (use-waypoint, waypoint-for; "
        "release-1.22–1.29, pilot/pkg/serviceregistry/ambient/ from 1.30)",
        "istio/istio pilot/pkg/networking/core/listener_waypoint.go (direct pod chains: no Service policies)",
        "istio/istio pilot/pkg/serviceregistry/kube/controller/ambient/authorization.go (targetRefs: waypoint only; "
        "release-1.22–1.29, pilot/pkg/serviceregistry/ambient/ from 1.30)",
        "istio/istio#49149",
        "istio/istio#55481",
        "https://istio.io/latest/docs/ambient/usage/waypoint/",
        "https://istio.io/latest/docs/ambient/usage/l7-features/",
    ),
    reads=(
        "cilium_configs",
        "node_configs",
        "namespaces",
        "workloads",
        "gateways",
        "authorization_policies",
        "routes",
    ),
    remedy=r.Remedy(cilium=(r.HOSTNS_ONLY,), restart_agents=True),
)
def waypoints_bypassed(facts: Facts) -> Hit | None:
    """CIC022: name what socket LB silently bypasses, so CIC001's consequence is concrete."""
    if not socket_lb_bypasses(facts) or facts.istio_before(1, 22):  # 1.21: workload waypoints only
        return None
    bindings = _Bindings(facts)
    evidence = _bound(facts, bindings) + _attached(facts, bindings)
    if not evidence:
        return None
    return Hit(
        summary="Socket LB skips waypoints: their L7 policies and routes do not apply to pod-to-Service traffic",
        detail=(
            "These namespaces and Services send their Service traffic through a waypoint, and these "
            "policies and routes are attached to a Service or a service waypoint. Socket LB turns a "
            "connection to the Service into one to a pod IP before ztunnel sees it, so ztunnel sends it "
            "straight to the pod (still mTLS): L7 authorization, request authentication and HTTP routing "
            "are silently not applied to it. Fix CIC001."
        ),
        evidence=capped(evidence, "more objects"),
    )
