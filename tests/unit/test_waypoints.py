"""CIC022: the waypoint-bound namespaces, Services, policies and routes socket LB bypasses."""

from __future__ import annotations

from dataclasses import replace

import pytest

from istio_cilium_compat.assemble import build_snapshot
from istio_cilium_compat.report import Severity
from istio_cilium_compat.rules import evaluate
from istio_cilium_compat.snapshot import IstioObject, NamespaceInfo, Snapshot, Workload
from tests.clusters import healthy, without, ztunnel

BOOKINFO = "bookinfo"
GW = "gateway.networking.k8s.io/v1"


def gateway(name: str, namespace: str = BOOKINFO, waypoint_for: str | None = None) -> IstioObject:
    labels = {"istio.io/waypoint-for": waypoint_for} if waypoint_for else {}
    return IstioObject("Gateway", GW, namespace, name, labels, {"gatewayClassName": "istio-waypoint"})


def service(name: str, waypoint: str, namespace: str = BOOKINFO) -> Workload:
    return Workload("Service", namespace, name, {"istio.io/use-waypoint": waypoint})


def authz(name: str, ref: dict[str, str], namespace: str = BOOKINFO, key: str = "targetRefs") -> IstioObject:
    spec: dict[str, object] = {key: [ref] if key == "targetRefs" else ref, "rules": [{}]}
    return IstioObject("AuthorizationPolicy", "security.istio.io/v1", namespace, name, {}, spec)


def route(name: str, ref: dict[str, str], namespace: str = BOOKINFO) -> IstioObject:
    return IstioObject("HTTPRoute", GW, namespace, name, {}, {"parentRefs": [ref]})


def cluster(
    *,
    hostns_only: str | None = None,
    namespace_waypoint: str | None = "waypoint",
    gateways: tuple[IstioObject, ...] = (),
    workloads: tuple[Workload, ...] = (),
    policies: tuple[IstioObject, ...] = (),
    routes: tuple[IstioObject, ...] = (),
    istio_image: str | None = None,
) -> Snapshot:
    objects = healthy(bpf_lb_sock_hostns_only=hostns_only)
    if istio_image:
        zt = ztunnel()
        zt["spec"]["template"]["spec"]["containers"][0]["image"] = istio_image
        objects = [*without(objects, "DaemonSet", "ztunnel"), zt]
    snapshot = build_snapshot(objects)
    labels = {"istio.io/dataplane-mode": "ambient"}
    if namespace_waypoint:
        labels["istio.io/use-waypoint"] = namespace_waypoint
    others = [n for n in snapshot.namespaces if n.name != BOOKINFO]
    namespaces = (*others, NamespaceInfo(BOOKINFO, labels))
    return replace(
        snapshot,
        namespaces=namespaces,
        gateways=gateways,
        workloads=workloads,
        authorization_policies=policies,
        routes=routes,
    )


def cic022(snapshot: Snapshot) -> list[tuple[str, str | None, str]]:
    findings = [f for f in evaluate(snapshot).findings if f.id == "CIC022"]
    if not findings:
        return []
    (finding,) = findings
    assert finding.severity is Severity.ERROR
    assert finding.remedy is not None and [s.key for s in finding.remedy.cilium] == [
        "bpf-lb-sock-hostns-only"
    ]
    return [(e.object, e.value, e.note) for e in finding.evidence]


SKIPPED = "skipped for pod-to-Service traffic"


def test_namespace_bound_to_a_service_waypoint() -> None:
    assert cic022(cluster(gateways=(gateway("waypoint"),))) == [
        (
            "Namespace bookinfo",
            "waypoint",
            f"waypoint Gateway bookinfo/waypoint (waypoint-for=service): {SKIPPED}",
        )
    ]


def test_unseen_waypoint_assumes_istios_default() -> None:
    ((_, _, note),) = cic022(cluster())
    assert note == (
        "waypoint Gateway bookinfo/waypoint (waypoint-for=service) (not found: Istio's default "
        f"waypoint-for=service assumed): {SKIPPED}"
    )


def test_waypoint_for_all_still_sees_pod_traffic_but_not_service_policy() -> None:
    ((obj, _, note),) = cic022(cluster(gateways=(gateway("waypoint", waypoint_for="all"),)))
    assert obj == "Namespace bookinfo"
    assert note.endswith(
        "gets the traffic as direct pod traffic; Service-attached policies and routes do not apply"
    )


@pytest.mark.parametrize("waypoint_for", ["workload", "none"])
def test_workload_waypoints_are_not_affected(waypoint_for: str) -> None:
    assert cic022(cluster(gateways=(gateway("waypoint", waypoint_for=waypoint_for),))) == []


def test_socket_lb_limited_to_host_namespace_means_nothing_is_skipped() -> None:
    assert cic022(cluster(hostns_only="true", gateways=(gateway("waypoint"),))) == []


def test_istio_1_21_had_no_service_waypoints() -> None:
    snapshot = cluster(istio_image="docker.io/istio/ztunnel:1.21.6")
    assert cic022(snapshot) == []
    assert cic022(cluster(istio_image="docker.io/istio/ztunnel:1.22.0")) != []


def test_service_label_only_with_waypoint_for_all_is_skipped_entirely() -> None:
    """A Service's label does not bind its pods: the waypoint never sees pod-addressed traffic."""
    snapshot = cluster(
        namespace_waypoint=None,
        gateways=(gateway("reviews-wp", waypoint_for="all"),),
        workloads=(service("reviews", "reviews-wp"),),
    )
    assert cic022(snapshot) == [
        (
            "Service bookinfo/reviews",
            "reviews-wp",
            f"waypoint Gateway bookinfo/reviews-wp (waypoint-for=all): {SKIPPED}",
        )
    ]


def test_service_opts_out_with_none() -> None:
    snapshot = cluster(gateways=(gateway("waypoint"),), workloads=(service("ratings", "none"),))
    assert [o for o, _, _ in cic022(snapshot)] == ["Namespace bookinfo"]


def test_policies_and_routes_attached_to_services_and_waypoints() -> None:
    svc_ref = {"group": "", "kind": "Service", "name": "productpage"}
    snapshot = cluster(
        gateways=(gateway("waypoint"),),
        policies=(
            authz("productpage-viewer", svc_ref),
            authz("waypoint-l7", {"group": GW.split("/")[0], "kind": "Gateway", "name": "waypoint"}),
            authz("legacy-single-ref", svc_ref, key="targetRef"),
            authz("other-ns", {"kind": "Service", "name": "x"}, namespace="default"),
            authz("not-a-waypoint", {"kind": "Gateway", "name": "ingress"}),
        ),
        routes=(
            route("reviews-split", {"group": "", "kind": "Service", "name": "reviews", "port": "9080"}),
            route("ingress-route", {"kind": "Gateway", "name": "ingress"}),
        ),
    )
    assert cic022(snapshot) == [
        (
            "Namespace bookinfo",
            "waypoint",
            f"waypoint Gateway bookinfo/waypoint (waypoint-for=service): {SKIPPED}",
        ),
        (
            "AuthorizationPolicy bookinfo/productpage-viewer",
            None,
            "targets Service bookinfo/productpage: not applied to pod-to-Service traffic",
        ),
        (
            "AuthorizationPolicy bookinfo/waypoint-l7",
            None,
            "targets waypoint bookinfo/waypoint (waypoint-for=service): skipped by socket LB",
        ),
        (
            "AuthorizationPolicy bookinfo/legacy-single-ref",
            None,
            "targets Service bookinfo/productpage: not applied to pod-to-Service traffic",
        ),
        (
            "HTTPRoute bookinfo/reviews-split",
            None,
            "routes Service bookinfo/reviews: not applied to pod-to-Service traffic",
        ),
    ]


def test_silent_without_waypoints() -> None:
    assert cic022(cluster(namespace_waypoint=None)) == []
    ids = evaluate(cluster(namespace_waypoint=None)).ids
    assert ids == ["CIC001"]


# ----------------------------------------------------------------------------- exact outcomes the mutation run asked for

SVC = {"group": "", "kind": "Service"}
GWG = GW.split("/")[0]
BOUND_NS = (
    "Namespace bookinfo",
    "waypoint",
    f"waypoint Gateway bookinfo/waypoint (waypoint-for=service): {SKIPPED}",
)


def authz_refs(name: str, *refs: dict[str, str]) -> IstioObject:
    spec: dict[str, object] = {"targetRefs": list(refs), "rules": [{}]}
    return IstioObject("AuthorizationPolicy", "security.istio.io/v1", BOOKINFO, name, {}, spec)


def route_refs(name: str, *refs: dict[str, str]) -> IstioObject:
    return IstioObject("HTTPRoute", GW, BOOKINFO, name, {}, {"parentRefs": list(refs)})


def test_a_gateway_of_another_class_is_no_waypoint_whatever_its_name_sorts_as() -> None:
    kong = IstioObject(
        "Gateway",
        GW,
        BOOKINFO,
        "waypoint",
        {"istio.io/waypoint-for": "workload"},
        {"gatewayClassName": "kong"},
    )
    ((obj, _, note),) = cic022(cluster(gateways=(kong,)))
    assert obj == "Namespace bookinfo" and "(not found: Istio's default waypoint-for=service assumed)" in note


@pytest.mark.parametrize(("pod_namespace", "named"), [("shop", True), ("aaa", False), ("zzz", False)])
def test_a_service_outside_ambient_namespaces_counts_only_with_pods_beside_it(
    pod_namespace: str, named: bool
) -> None:
    snapshot = cluster(
        namespace_waypoint=None,
        gateways=(gateway("wp", namespace="shop"),),
        workloads=(
            Workload("Service", "shop", "api", {"istio.io/use-waypoint": "wp"}),
            Workload("Pod", pod_namespace, "client", {"istio.io/dataplane-mode": "ambient"}),
        ),
    )
    expected = ("Service shop/api", "wp", f"waypoint Gateway shop/wp (waypoint-for=service): {SKIPPED}")
    assert cic022(snapshot) == ([expected] if named else [])


def test_a_pod_labelled_with_a_waypoint_is_not_named_as_a_service() -> None:
    pod = Workload("Pod", BOOKINFO, "reviews-v1", {"istio.io/use-waypoint": "waypoint"})
    assert cic022(cluster(gateways=(gateway("waypoint"),), workloads=(pod,))) == [BOUND_NS]


def test_a_policy_is_named_once_for_its_first_bypassed_target_after_others() -> None:
    others = (
        {"group": "networking.istio.io", "kind": "ServiceEntry", "name": "ext"},  # neither kind
        {"group": GWG, "kind": "Gateway", "name": "ingress"},  # no such waypoint
        {**SVC, "name": "ratings"},  # opted out of the waypoint
    )
    snapshot = cluster(
        gateways=(gateway("waypoint"),),
        workloads=(service("ratings", "none"),),
        policies=(
            authz_refs("late", *others, {**SVC, "name": "productpage"}),
            authz_refs("twice", {**SVC, "name": "productpage"}, {**SVC, "name": "reviews"}),
        ),
    )
    svc_note = "targets Service bookinfo/{}: not applied to pod-to-Service traffic"
    assert cic022(snapshot) == [
        BOUND_NS,
        ("AuthorizationPolicy bookinfo/late", None, svc_note.format("productpage")),
        ("AuthorizationPolicy bookinfo/twice", None, svc_note.format("productpage")),
    ]


@pytest.mark.parametrize(
    "ref",
    [
        {
            "group": GWG,
            "kind": "Gateway",
            "name": "all-wp",
        },  # waypoint-for=all sees pod traffic: its policies apply
        {"group": GWG, "kind": "GatewayClass", "name": "waypoint"},  # a class, not the waypoint
        {"name": "waypoint"},  # no kind: neither a Service nor a Gateway
    ],
)
def test_policies_on_an_all_waypoint_or_a_gateway_class_are_not_named(ref: dict[str, str]) -> None:
    snapshot = cluster(
        gateways=(gateway("waypoint"), gateway("all-wp", waypoint_for="all")),
        policies=(authz_refs("p", ref),),
    )
    assert cic022(snapshot) == [BOUND_NS]


def test_a_route_is_named_once_for_its_first_bypassed_parent_after_others() -> None:
    snapshot = cluster(
        gateways=(gateway("waypoint"),),
        workloads=(service("ratings", "none"),),
        routes=(
            route_refs("late", {**SVC, "name": "ratings"}, {**SVC, "name": "reviews"}),
            route_refs("twice", {**SVC, "name": "reviews"}, {**SVC, "name": "details"}),
        ),
    )
    route_note = "routes Service bookinfo/{}: not applied to pod-to-Service traffic"
    assert cic022(snapshot) == [
        BOUND_NS,
        ("HTTPRoute bookinfo/late", None, route_note.format("reviews")),
        ("HTTPRoute bookinfo/twice", None, route_note.format("reviews")),
    ]
