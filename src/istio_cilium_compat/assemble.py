"""Turn raw Kubernetes objects (dicts) into a `Snapshot`.

The collector and the manifest loader both end here, so a live cluster and its
saved YAML give the same snapshot. Cluster data is untrusted: every accessor
tolerates a missing or wrongly typed field instead of raising.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .snapshot import (
    CiliumConfig,
    DaemonSetInfo,
    NamespaceInfo,
    NodeConfig,
    PeerAuthentication,
    PodInfo,
    Policy,
    ReadProblem,
    Snapshot,
)

CILIUM_CONFIG = "cilium-config"
CANONICAL_K8S_CONFIG = ("kube-system", "k8sd-config")
CILIUM_AGENT_LABEL = ("k8s-app", "cilium")
ZTUNNEL_LABEL = ("app", "ztunnel")
ISTIO_CNI_LABEL = ("k8s-app", "istio-cni-node")
DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode"

KINDS = (
    "ConfigMap",
    "DaemonSet",
    "Pod",
    "Namespace",
    "NetworkPolicy",
    "CiliumNetworkPolicy",
    "CiliumClusterwideNetworkPolicy",
    "CiliumNodeConfig",
    "PeerAuthentication",
)


def as_map(value: object) -> Mapping[str, Any]:
    """Return `value` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: object) -> Sequence[Any]:
    """Return `value` if it is a list, else an empty one."""
    return value if isinstance(value, list | tuple) else ()


def as_str(value: object) -> str:
    """Render a scalar the way Kubernetes would have stored it (a string)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return ""


def str_map(value: object) -> dict[str, str]:
    """A label/annotation/data map with every key and value as a string."""
    return {str(k): as_str(v) for k, v in as_map(value).items()}


def group_by_kind(objects: Iterable[object]) -> dict[str, list[Mapping[str, Any]]]:
    """Sort objects into the kinds the snapshot uses; everything else is dropped."""
    grouped: dict[str, list[Mapping[str, Any]]] = {kind: [] for kind in KINDS}
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        kind = obj.get("kind")
        if isinstance(kind, str) and kind in grouped:
            grouped[kind].append(obj)
    return grouped


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = as_map(obj.get("metadata"))
    return as_str(meta.get("namespace")), as_str(meta.get("name"))


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return str_map(as_map(obj.get("metadata")).get("labels"))


def _has_label(obj: Mapping[str, Any], label: tuple[str, str]) -> bool:
    return _labels(obj).get(label[0]) == label[1]


def _key_times(meta: Mapping[str, Any]) -> dict[str, str]:
    """Newest write time of each `data` key, from server-side field ownership."""
    times: dict[str, str] = {}
    for entry in as_list(meta.get("managedFields")):
        entry = as_map(entry)
        when = as_str(entry.get("time"))
        data = as_map(as_map(entry.get("fieldsV1")).get("f:data"))
        if not when:
            continue
        for field_name in data:
            if isinstance(field_name, str) and field_name.startswith("f:"):
                key = field_name[2:]
                if when > times.get(key, ""):
                    times[key] = when
    return times


def cilium_config(obj: Mapping[str, Any]) -> CiliumConfig:
    """Build a `CiliumConfig` from a ConfigMap object."""
    meta = as_map(obj.get("metadata"))
    return CiliumConfig(
        namespace=as_str(meta.get("namespace")),
        data=str_map(obj.get("data")),
        labels=str_map(meta.get("labels")),
        annotations=str_map(meta.get("annotations")),
        key_times=_key_times(meta),
    )


def daemonset_info(obj: Mapping[str, Any]) -> DaemonSetInfo:
    """Build a `DaemonSetInfo` from a DaemonSet object."""
    namespace, name = _meta(obj)
    pod_spec = as_map(as_map(as_map(obj.get("spec")).get("template")).get("spec"))
    images = tuple(
        as_str(as_map(c).get("image"))
        for c in (*as_list(pod_spec.get("initContainers")), *as_list(pod_spec.get("containers")))
        if as_str(as_map(c).get("image"))
    )
    host_paths = {
        as_str(as_map(v).get("name")): as_str(as_map(as_map(v).get("hostPath")).get("path"))
        for v in as_list(pod_spec.get("volumes"))
        if as_map(as_map(v).get("hostPath"))
    }
    status = as_map(obj.get("status"))
    return DaemonSetInfo(
        namespace=namespace,
        name=name,
        labels=_labels(obj),
        images=images,
        host_paths=host_paths,
        desired=_int(status.get("desiredNumberScheduled")),
        ready=_int(status.get("numberReady")),
        host_network=pod_spec.get("hostNetwork") is True,
        dns_policy=as_str(pod_spec.get("dnsPolicy")),
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _pod(obj: Mapping[str, Any]) -> PodInfo:
    namespace, name = _meta(obj)
    start = as_str(as_map(obj.get("status")).get("startTime"))
    return PodInfo(
        namespace=namespace,
        name=name,
        node=as_str(as_map(obj.get("spec")).get("nodeName")),
        start_time=start or None,
    )


def _node_config(obj: Mapping[str, Any]) -> NodeConfig:
    namespace, name = _meta(obj)
    spec = as_map(obj.get("spec"))
    return NodeConfig(
        namespace=namespace,
        name=name,
        api_version=as_str(obj.get("apiVersion")),
        node_selector=dict(as_map(spec.get("nodeSelector"))),
        defaults=str_map(spec.get("defaults")),
    )


def _peer_authentication(obj: Mapping[str, Any]) -> PeerAuthentication:
    namespace, name = _meta(obj)
    spec = as_map(obj.get("spec"))
    selector_field = spec.get("selector")
    match_labels = str_map(as_map(selector_field).get("matchLabels"))
    # Modes are kept as written: Istio's enum is case-sensitive, so "strict" is not STRICT.
    port_modes = {
        str(port): as_str(as_map(setting).get("mode")) or "UNSET"
        for port, setting in as_map(spec.get("portLevelMtls")).items()
    }
    return PeerAuthentication(
        namespace=namespace,
        name=name,
        selector=match_labels or None,
        mode=as_str(as_map(spec.get("mtls")).get("mode")) or "UNSET",
        port_modes=port_modes,
        creation_timestamp=as_str(as_map(obj.get("metadata")).get("creationTimestamp")),
    )


def _policy(obj: Mapping[str, Any], kind: str) -> Policy:
    namespace, name = _meta(obj)
    specs: list[Mapping[str, object]] = []
    if isinstance(obj.get("spec"), Mapping):
        specs.append(obj["spec"])
    elif kind == "NetworkPolicy":
        specs.append({})  # the API server stores a null spec as {}: selects every pod, isolates ingress
    specs.extend(s for s in as_list(obj.get("specs")) if isinstance(s, Mapping))
    return Policy(
        kind=kind,
        namespace=None if kind == "CiliumClusterwideNetworkPolicy" else namespace,
        name=name,
        specs=tuple(specs),
    )


def _choose_cilium_namespace(
    configs: Sequence[CiliumConfig], agents: Sequence[DaemonSetInfo], override: str | None
) -> str | None:
    """Override, else where the agent runs, else kube-system, else the first found."""
    if override:
        return override
    found = [c.namespace for c in configs]
    for agent in agents:
        if agent.namespace in found:
            return agent.namespace
    if "kube-system" in found:
        return "kube-system"
    return found[0] if found else None


def build_snapshot(
    objects: Iterable[object],
    *,
    source: str = "",
    istio_namespace: str | None = None,
    istio_namespace_source: str = "option",
    cilium_namespace: str | None = None,
    problems: Iterable[ReadProblem] = (),
) -> Snapshot:
    """Assemble a snapshot from raw objects; filters are idempotent with server-side ones."""
    kinds = group_by_kind(objects)
    configs: list[CiliumConfig] = []
    canonical = False
    for obj in kinds["ConfigMap"]:
        namespace, name = _meta(obj)
        if name == CILIUM_CONFIG:
            configs.append(cilium_config(obj))
        elif (namespace, name) == CANONICAL_K8S_CONFIG:
            canonical = True
    configs.sort(key=lambda c: c.namespace)

    daemonsets = sorted((daemonset_info(o) for o in kinds["DaemonSet"]), key=lambda d: (d.namespace, d.name))
    agents = tuple(d for d in daemonsets if d.labels.get(CILIUM_AGENT_LABEL[0]) == CILIUM_AGENT_LABEL[1])
    ztunnels = tuple(d for d in daemonsets if d.labels.get(ZTUNNEL_LABEL[0]) == ZTUNNEL_LABEL[1])
    istio_cni = tuple(d for d in daemonsets if d.labels.get(ISTIO_CNI_LABEL[0]) == ISTIO_CNI_LABEL[1])

    chosen = _choose_cilium_namespace(configs, agents, cilium_namespace)
    pods = sorted(
        (_pod(o) for o in kinds["Pod"] if _has_label(o, CILIUM_AGENT_LABEL)),
        key=lambda p: (p.namespace, p.name),
    )
    node_configs = sorted(
        (_node_config(o) for o in kinds["CiliumNodeConfig"]), key=lambda n: (n.namespace, n.name)
    )

    root, root_source = istio_namespace, istio_namespace_source if istio_namespace else ""
    if not root and ztunnels:
        # Several ztunnels (a canary revision, a leftover): the conventional root wins.
        preferred = [z for z in ztunnels if z.namespace == "istio-system"] or list(ztunnels)
        root, root_source = preferred[0].namespace, "discovered"

    namespaces = sorted(
        (
            NamespaceInfo(name=_meta(o)[1], labels=_labels(o))
            for o in kinds["Namespace"]
            if DATAPLANE_MODE_LABEL in _labels(o)
        ),
        key=lambda n: n.name,
    )
    peer_auths = sorted(
        (_peer_authentication(o) for o in kinds["PeerAuthentication"]),
        key=lambda p: (p.namespace, p.creation_timestamp, p.name),
    )
    policies = sorted(
        (
            _policy(o, kind)
            for kind in ("NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
            for o in kinds[kind]
        ),
        key=lambda p: (p.kind, p.namespace or "", p.name),
    )
    return Snapshot(
        source=source,
        cilium_configs=tuple(configs),
        cilium_namespace=chosen,
        cilium_agents=tuple(a for a in agents if chosen is None or a.namespace == chosen) or agents,
        cilium_pods=tuple(p for p in pods if chosen is None or p.namespace == chosen),
        node_configs=tuple(n for n in node_configs if chosen is None or n.namespace == chosen),
        canonical_k8s=canonical,
        istio_root_namespace=root,
        istio_root_namespace_source=root_source,
        ztunnels=ztunnels,
        istio_cni=istio_cni,
        peer_authentications=tuple(peer_auths),
        namespaces=tuple(namespaces),
        policies=tuple(policies),
        problems=tuple(problems),
    )
