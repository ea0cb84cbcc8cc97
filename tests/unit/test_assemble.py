"""assemble.build_snapshot: raw objects to a Snapshot, one malformed object at a time."""

from __future__ import annotations

from typing import Any

import pytest

from istio_cilium_compat.assemble import build_snapshot, object_ref
from istio_cilium_compat.snapshot import ReadProblem
from tests.clusters import (
    ISTIO_NS,
    authorization_policy,
    cilium_agent,
    cnp,
    configmap,
    healthy,
    http_route,
    istio_cni,
    istio_pod,
    namespace,
    network_policy,
    peer_auth,
    service,
    service_ref,
    waypoint,
    ztunnel,
)


def invalid(resource: str, message: str) -> ReadProblem:
    return ReadProblem(resource=resource, kind="invalid", message=message)


def set_path(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    target: Any = obj
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return obj


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("spec.template", "cilium", "spec.template: expected an object, got a string"),
        ("spec", 5, "spec: expected an object, got a number"),
        ("spec.template.spec", [], "spec.template.spec: expected an object, got a list"),
        (
            "spec.template.spec.containers",
            {},
            "spec.template.spec.containers: expected a list, got an object",
        ),
        (
            "spec.template.spec.containers.0",
            "cilium",
            "spec.template.spec.containers[0]: expected an object, got a string",
        ),
        (
            "spec.template.spec.containers.0.image",
            ["a"],
            "spec.template.spec.containers.image: expected a string, got a list",
        ),
        (
            "spec.template.spec.volumes.0.hostPath",
            "/etc",
            "spec.template.spec.volumes.hostPath: expected an object, got a string",
        ),
        ("metadata.labels", ["k8s-app=cilium"], "metadata.labels: expected an object, got a list"),
        ("metadata.labels.k8s-app", {"a": "b"}, "metadata.labels.k8s-app: expected a string, got an object"),
        ("status", "ready", "status: expected an object, got a string"),
    ],
)
def test_a_malformed_daemonset_is_named_and_left_out(path: str, value: Any, message: str) -> None:
    broken = set_path(cilium_agent(), path, value)
    snapshot = build_snapshot([broken, ztunnel(), istio_cni()])
    assert snapshot.problems == (invalid("DaemonSet kube-system/cilium", message),)
    assert snapshot.cilium_agents == ()
    assert [d.name for d in (*snapshot.ztunnels, *snapshot.istio_cni)] == ["ztunnel", "istio-cni-node"]


def test_missing_fields_and_scalars_are_read_leniently() -> None:
    agent = cilium_agent()
    del agent["spec"]["template"]
    del agent["status"]
    cm = configmap({"enable-policy": "default"})
    cm["data"]["mtu"] = 1450
    cm["data"]["bpf-lb-sock"] = True
    snapshot = build_snapshot([agent, cm])
    assert snapshot.problems == ()
    (read,) = snapshot.cilium_agents
    assert (read.images, read.host_paths, read.desired) == ((), {}, 0)
    assert snapshot.cilium_config is not None
    assert snapshot.cilium_config.data == {"enable-policy": "default", "mtu": "1450", "bpf-lb-sock": "true"}


def test_the_rest_of_a_list_is_used() -> None:
    policies = [
        network_policy("a", "one", {"podSelector": {}}),
        set_path(network_policy("b", "two", {}), "spec", 5),
        network_policy("c", "three", {"podSelector": {}}),
        set_path(cnp("d", "four", {}), "spec", "x"),
        set_path(cnp("e", "five", {}), "specs", [{}, 3]),
    ]
    snapshot = build_snapshot(policies)
    assert [(p.kind, p.namespace, p.name) for p in snapshot.policies] == [
        ("NetworkPolicy", "a", "one"),
        ("NetworkPolicy", "c", "three"),
    ]
    assert snapshot.problems == (
        invalid("CiliumNetworkPolicy d/four", "spec: expected an object, got a string"),
        invalid("CiliumNetworkPolicy e/five", "specs[1]: expected an object, got a number"),
        invalid("NetworkPolicy b/two", "spec: expected an object, got a number"),
    )


def test_read_problems_come_first_then_malformed_objects() -> None:
    earlier = ReadProblem("pods", "forbidden", "no")
    broken = set_path(namespace("bookinfo"), "metadata.labels", "istio.io/dataplane-mode=ambient")
    snapshot = build_snapshot([broken], problems=[earlier])
    assert snapshot.problems == (
        earlier,
        invalid("Namespace bookinfo", "metadata.labels: expected an object, got a string"),
    )


def test_peer_authentication_shapes() -> None:
    good = peer_auth(ISTIO_NS, ports={"8080": "DISABLE"})
    bad_ports = set_path(peer_auth("bookinfo", ports={"80": "STRICT"}), "spec.portLevelMtls.80", "STRICT")
    snapshot = build_snapshot([good, bad_ports])
    assert [(p.namespace, p.mode, dict(p.port_modes)) for p in snapshot.peer_authentications] == [
        (ISTIO_NS, "STRICT", {"8080": "DISABLE"})
    ]
    assert snapshot.problems == (
        invalid(
            "PeerAuthentication bookinfo/default", "spec.portLevelMtls.80: expected an object, got a string"
        ),
    )


def test_unrelated_objects_are_not_judged() -> None:
    """Only what the collector would have selected is read: a broken unrelated DaemonSet is no problem."""
    other = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "x", "labels": {"a": "b"}},
        "spec": 5,
    }
    assert build_snapshot([*healthy(), other]).problems == ()


def test_object_ref_survives_malformed_metadata() -> None:
    assert object_ref({"kind": "Pod", "metadata": 5}) == "Pod (no name)"
    assert object_ref({"kind": "Namespace", "metadata": {"name": "a", "namespace": "b"}}) == "Namespace a"
    assert object_ref({"kind": "Pod", "metadata": {"name": "p", "namespace": "n"}}) == "Pod n/p"


def test_daemonset_env_keeps_plain_values_of_every_container() -> None:
    cni = istio_cni()
    pod_spec = cni["spec"]["template"]["spec"]
    pod_spec["initContainers"] = [
        {"name": "init", "image": "i", "env": [{"name": "SHARED", "value": "init"}]}
    ]
    pod_spec["containers"][0]["env"] = [
        {"name": "HOST_PROBE_SNAT_IP", "value": "169.254.7.127"},
        {"name": "AMBIENT_ENABLED", "value": True},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "EMPTY"},
        {"name": "SHARED", "value": "main"},
    ]
    pod_spec["containers"].append({"name": "sidecar", "image": "s", "env": [{"name": "EXTRA", "value": "1"}]})
    (read,) = build_snapshot([cni]).istio_cni
    assert dict(read.env) == {
        "SHARED": "main",
        "HOST_PROBE_SNAT_IP": "169.254.7.127",
        "AMBIENT_ENABLED": "true",
        "EMPTY": "",
        "EXTRA": "1",
    }
    assert read.images == ("i", "docker.io/istio/install-cni:1.26.1", "s")


def test_workloads_are_the_istio_labelled_pods_and_services() -> None:
    objects = [
        istio_pod("enrolled", "shop", {"istio.io/dataplane-mode": "ambient"}, node="n2"),
        istio_pod("opted-out", "shop", {"istio.io/dataplane-mode": "none"}),
        istio_pod("bound", "shop", {"istio.io/use-waypoint": "wp"}),
        istio_pod("bound", "shop", {"istio.io/use-waypoint": "wp"}),  # listed by two selectors
        istio_pod("plain", "shop", {}),
        service("reviews", "bookinfo", {"istio.io/use-waypoint": "waypoint"}),
        service(
            "plain", "bookinfo", {"istio.io/dataplane-mode": "ambient"}
        ),  # not a Service label Istio reads
        cilium_agent(),
    ]
    snapshot = build_snapshot(objects)
    assert [(w.kind, w.namespace, w.name, w.node) for w in snapshot.workloads] == [
        ("Pod", "shop", "bound", "node-1"),
        ("Pod", "shop", "enrolled", "n2"),
        ("Pod", "shop", "opted-out", "node-1"),
        ("Service", "bookinfo", "reviews", ""),
    ]
    assert snapshot.workloads[-1].labels == {"istio.io/use-waypoint": "waypoint"}
    assert snapshot.cilium_pods == ()


def test_namespaces_with_either_istio_label() -> None:
    bound = namespace("bound", mode=None)
    bound["metadata"]["labels"]["istio.io/use-waypoint"] = "wp"
    objects = [namespace("ambient"), bound, namespace("plain", mode=None)]
    snapshot = build_snapshot(objects)
    assert [n.name for n in snapshot.namespaces] == ["ambient", "bound"]


def test_istio_and_gateway_objects_keep_their_spec() -> None:
    ref = service_ref("reviews")
    objects = [
        http_route("b", "bookinfo", ref),
        http_route("a", "bookinfo", ref, kind="GRPCRoute", version="v1alpha2"),
        waypoint(waypoint_for="all"),
        authorization_policy("deny", "bookinfo", ref, version="v1beta1"),
        set_path(authorization_policy("broken", "bookinfo", ref), "spec", ["rules"]),
    ]
    snapshot = build_snapshot(objects)
    assert [(r.kind, r.api_version, r.name) for r in snapshot.routes] == [
        ("GRPCRoute", "gateway.networking.k8s.io/v1alpha2", "a"),
        ("HTTPRoute", "gateway.networking.k8s.io/v1", "b"),
    ]
    (gateway,) = snapshot.gateways
    assert (gateway.labels, gateway.spec["gatewayClassName"]) == (
        {"istio.io/waypoint-for": "all"},
        "istio-waypoint",
    )
    (policy,) = snapshot.authorization_policies
    assert (policy.api_version, policy.spec["targetRefs"]) == ("security.istio.io/v1beta1", [ref])
    assert snapshot.problems == (
        invalid("AuthorizationPolicy bookinfo/broken", "spec: expected an object, got a list"),
    )
