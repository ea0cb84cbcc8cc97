"""assemble.build_snapshot: raw objects to a Snapshot, one malformed object at a time."""

from __future__ import annotations

from typing import Any

import pytest

from istio_cilium_compat.assemble import build_snapshot, object_ref
from istio_cilium_compat.snapshot import ReadProblem
from tests.clusters import (
    ISTIO_NS,
    cilium_agent,
    cnp,
    configmap,
    healthy,
    istio_cni,
    namespace,
    network_policy,
    peer_auth,
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
