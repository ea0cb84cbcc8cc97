"""Builders for small, complete Kubernetes objects used by table-driven tests."""

from __future__ import annotations

from typing import Any

from istio_cilium_compat.rules import registered

Obj = dict[str, Any]

CILIUM_NS = "kube-system"
N_CHECKS = len([r for r in registered() if "runtime" not in r.reads])
"""How many checks a status line counts: the registry's, less the runtime ones (they need a probe)."""
ISTIO_NS = "istio-system"
T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-02T00:00:00Z"


def meta(name: str, namespace: str | None = None, **extra: Any) -> Obj:
    m: Obj = {"name": name, "uid": f"uid-{namespace}-{name}", "resourceVersion": "1", "creationTimestamp": T0}
    if namespace is not None:
        m["namespace"] = namespace
    m.update({k: v for k, v in extra.items() if v is not None})
    return m


def configmap(
    data: dict[str, str],
    namespace: str = CILIUM_NS,
    name: str = "cilium-config",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    written: dict[str, str] | None = None,
) -> Obj:
    """`written`: key -> time, as managedFields entries."""
    managed = [
        {
            "manager": "helm",
            "operation": "Update",
            "apiVersion": "v1",
            "time": when,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {f"f:{key}": {}}},
        }
        for key, when in (written or {}).items()
    ]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(
            name, namespace, labels=labels, annotations=annotations, managedFields=managed or None
        ),
        "data": data,
    }


def daemonset(
    name: str,
    namespace: str,
    labels: dict[str, str],
    image: str,
    host_paths: dict[str, str] | None = None,
) -> Obj:
    volumes = [
        {"name": k, "hostPath": {"path": v, "type": "DirectoryOrCreate"}}
        for k, v in (host_paths or {}).items()
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta(name, namespace, labels=labels),
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": image}], "volumes": volumes},
            },
        },
        "status": {
            "currentNumberScheduled": 2,
            "desiredNumberScheduled": 2,
            "numberMisscheduled": 0,
            "numberReady": 2,
        },
    }


def cilium_agent(
    namespace: str = CILIUM_NS,
    image: str = "quay.io/cilium/cilium:v1.17.4@sha256:abc",
    conf: str = "/etc/cni/net.d",
    bin_dir: str = "/opt/cni/bin",
) -> Obj:
    return daemonset(
        "cilium", namespace, {"k8s-app": "cilium"}, image, {"etc-cni-netd": conf, "cni-path": bin_dir}
    )


def cilium_pod(name: str, start: str, namespace: str = CILIUM_NS) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, namespace, labels={"k8s-app": "cilium"}),
        "spec": {"nodeName": f"node-{name}", "containers": [{"name": "cilium-agent", "image": "cilium"}]},
        "status": {"phase": "Running", "startTime": start},
    }


def ztunnel(namespace: str = ISTIO_NS) -> Obj:
    return daemonset("ztunnel", namespace, {"app": "ztunnel"}, "docker.io/istio/ztunnel:1.26.1")


def istio_cni(namespace: str = ISTIO_NS, conf: str = "/etc/cni/net.d", bin_dir: str = "/opt/cni/bin") -> Obj:
    return daemonset(
        "istio-cni-node",
        namespace,
        {"k8s-app": "istio-cni-node"},
        "docker.io/istio/install-cni:1.26.1",
        {"cni-net-dir": conf, "cni-bin-dir": bin_dir},
    )


def namespace(name: str, mode: str | None = "ambient") -> Obj:
    labels = {"kubernetes.io/metadata.name": name}
    if mode is not None:
        labels["istio.io/dataplane-mode"] = mode
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta(name, labels=labels)}


def peer_auth(
    namespace: str,
    name: str = "default",
    mode: str | None = "STRICT",
    selector: dict[str, str] | None = None,
    ports: dict[str, str] | None = None,
    created: str = T0,
    version: str = "v1",
) -> Obj:
    spec: Obj = {}
    if mode is not None:
        spec["mtls"] = {"mode": mode}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = {p: {"mode": m} for p, m in ports.items()}
    obj = {
        "apiVersion": f"security.istio.io/{version}",
        "kind": "PeerAuthentication",
        "metadata": meta(name, namespace),
        "spec": spec,
    }
    obj["metadata"]["creationTimestamp"] = created
    return obj


def network_policy(namespace: str, name: str, spec: Obj) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(name, namespace),
        "spec": spec,
    }


def cnp(namespace: str, name: str, spec: Obj) -> Obj:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": meta(name, namespace),
        "spec": spec,
    }


def ccnp(name: str, spec: Obj) -> Obj:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": meta(name),
        "spec": spec,
    }


def node_config(name: str, defaults: dict[str, str], namespace: str = CILIUM_NS, version: str = "v2") -> Obj:
    return {
        "apiVersion": f"cilium.io/{version}",
        "kind": "CiliumNodeConfig",
        "metadata": meta(name, namespace),
        "spec": {"nodeSelector": {"matchLabels": {"pool": name}}, "defaults": defaults},
    }


GOOD_CILIUM = {
    "kube-proxy-replacement": "true",
    "bpf-lb-sock": "true",
    "bpf-lb-sock-hostns-only": "true",
    "cni-exclusive": "false",
    "enable-host-legacy-routing": "true",
    "enable-bpf-masquerade": "false",
    "enable-policy": "default",
    "enable-ipv4": "true",
    "enable-ipv6": "false",
    "enable-ipv4-masquerade": "true",
}


def cilium_data(**overrides: str | None) -> dict[str, str]:
    """The healthy cilium-config data with overrides (`a_b=` sets key `a-b`; None removes it)."""
    data = dict(GOOD_CILIUM)
    for key, value in overrides.items():
        key = key.replace("_", "-")
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def healthy(**overrides: str | None) -> list[Obj]:
    """A compatible cluster; keyword overrides change cilium-config (None removes a key)."""
    return [
        configmap(cilium_data(**overrides)),
        cilium_agent(),
        cilium_pod("cilium-a", T1),
        ztunnel(),
        istio_cni(),
        namespace(ISTIO_NS, mode=None),
        namespace("bookinfo"),
        peer_auth(ISTIO_NS, mode="STRICT"),
    ]


def app_pod(ns: str, name: str, labels: dict[str, str]) -> Obj:
    """An application pod as the API returns it (enough for the label-selected reads)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, ns, labels=labels),
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running"},
    }


def without(objects: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objects if not (o["kind"] == kind and (name is None or o["metadata"]["name"] == name))]


GATEWAY_API = "gateway.networking.k8s.io"


def service(name: str, namespace: str, labels: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, namespace, labels=labels),
        "spec": {
            "selector": {"app": name},
            "ports": [{"port": 9080, "protocol": "TCP"}],
            "type": "ClusterIP",
        },
    }


def istio_pod(name: str, namespace: str, labels: dict[str, str], node: str = "node-1") -> Obj:
    """An application pod carrying Istio labels of its own."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, namespace, labels={"app": name, **labels}),
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "registry.example/app:1"}]},
        "status": {"phase": "Running", "startTime": T1},
    }


def waypoint(name: str = "waypoint", namespace: str = "bookinfo", waypoint_for: str | None = None) -> Obj:
    """A waypoint as `istioctl waypoint apply` creates it: a Gateway of class istio-waypoint."""
    labels = {"istio.io/waypoint-for": waypoint_for} if waypoint_for else None
    return {
        "apiVersion": f"{GATEWAY_API}/v1",
        "kind": "Gateway",
        "metadata": meta(name, namespace, labels=labels),
        "spec": {
            "gatewayClassName": "istio-waypoint",
            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
        },
    }


def authorization_policy(
    name: str, namespace: str, target: dict[str, str], version: str = "v1", action: str = "DENY"
) -> Obj:
    return {
        "apiVersion": f"security.istio.io/{version}",
        "kind": "AuthorizationPolicy",
        "metadata": meta(name, namespace),
        "spec": {
            "targetRefs": [target],
            "action": action,
            "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}],
        },
    }


def http_route(
    name: str, namespace: str, parent: dict[str, str], kind: str = "HTTPRoute", version: str = "v1"
) -> Obj:
    return {
        "apiVersion": f"{GATEWAY_API}/{version}",
        "kind": kind,
        "metadata": meta(name, namespace),
        "spec": {
            "parentRefs": [parent],
            "rules": [{"backendRefs": [{"name": parent["name"], "port": 9080}]}],
        },
    }


def service_ref(name: str) -> dict[str, str]:
    return {"group": "", "kind": "Service", "name": name}
