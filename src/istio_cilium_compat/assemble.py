"""Turn raw Kubernetes objects (dicts) into a `Snapshot`: the only code that does.

The collector and the manifest loader both end here, so a live cluster and its
saved YAML give the same snapshot. Cluster data is untrusted, and one bad object
must not blind the check to the others: each object is read on its own, and one
whose fields have the wrong shape (an object or list where the schema has a
scalar, or the other way round, such as a DaemonSet whose `spec.template` is a
string or a NetworkPolicy with `spec: 5`) is left out and becomes a `ReadProblem`
of kind "invalid" naming it, while the rest of its list is used. Missing fields
and scalars of another type (`true` for `"true"`, as hand-written YAML has them)
are read leniently, the way Kubernetes would have stored them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from .snapshot import (
    CiliumConfig,
    DaemonSetInfo,
    IstioObject,
    NamespaceInfo,
    NodeConfig,
    PeerAuthentication,
    PodInfo,
    Policy,
    ReadProblem,
    Snapshot,
    Workload,
)

CILIUM_CONFIG = "cilium-config"
CANONICAL_K8S_CONFIG = ("kube-system", "k8sd-config")
CILIUM_AGENT_LABEL = ("k8s-app", "cilium")
ZTUNNEL_LABEL = ("app", "ztunnel")
"""On ztunnel's pods and in its DaemonSet's selector, not on the DaemonSet itself: Istio's charts
(manifests/charts/ztunnel/templates/daemonset.yaml, 1.21 to 1.29) label the DaemonSet with
`app.kubernetes.io/name` (1.23+) or nothing at all (1.21, 1.22)."""
ZTUNNEL_NAME = "ztunnel"
"""The DaemonSet's name in every Istio chart (1.24+ lets `resourceName` change it)."""
ISTIO_CNI_LABEL = ("k8s-app", "istio-cni-node")
DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode"
USE_WAYPOINT_LABEL = "istio.io/use-waypoint"

POLICY_KINDS = ("NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute")
KINDS = (
    "ConfigMap",
    "DaemonSet",
    "Pod",
    "Service",
    "Namespace",
    *POLICY_KINDS,
    "CiliumNodeConfig",
    "PeerAuthentication",
    "AuthorizationPolicy",
    *ROUTE_KINDS,
    "Gateway",
)
CLUSTER_SCOPED = frozenset({"Namespace", "CiliumClusterwideNetworkPolicy"})

T = TypeVar("T")


# --------------------------------------------------------------------------- lenient accessors


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


# --------------------------------------------------------------------------- strict accessors


class Malformed(ValueError):
    """A field has a shape no API server would store: the object is left out."""

    def __init__(self, path: str, expected: str, value: object) -> None:
        super().__init__(f"{path}: expected {expected}, got {_type_name(value)}")


def _type_name(value: object) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def field_map(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """`parent[key]` as an object: absent or null is empty, anything else is malformed."""
    value = parent.get(key)
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise Malformed(_join(path, key), "an object", value)


def field_list(parent: Mapping[str, Any], key: str, path: str) -> Sequence[Any]:
    """`parent[key]` as a list: absent or null is empty, anything else is malformed."""
    value = parent.get(key)
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return value
    raise Malformed(_join(path, key), "a list", value)


def field_str(parent: Mapping[str, Any], key: str, path: str) -> str:
    """`parent[key]` as a string: scalars are rendered, objects and lists are malformed."""
    value = parent.get(key)
    if isinstance(value, Mapping | list | tuple):
        raise Malformed(_join(path, key), "a string", value)
    return as_str(value)


def field_str_map(parent: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    """A map of strings (labels, annotations, data): an object whose values are scalars."""
    where = _join(path, key)
    out: dict[str, str] = {}
    for k, v in field_map(parent, key, path).items():
        if isinstance(v, Mapping | list | tuple):
            raise Malformed(f"{where}.{k}", "a string", v)
        out[str(k)] = as_str(v)
    return out


def items_of(parent: Mapping[str, Any], key: str, path: str) -> list[Mapping[str, Any]]:
    """A list whose every item must be an object (containers, volumes, env, specs)."""
    where = _join(path, key)
    out: list[Mapping[str, Any]] = []
    for index, item in enumerate(field_list(parent, key, path)):
        if not isinstance(item, Mapping):
            raise Malformed(f"{where}[{index}]", "an object", item)
        out.append(item)
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --------------------------------------------------------------------------- grouping


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


def object_ref(obj: Mapping[str, Any]) -> str:
    """`Kind namespace/name` (or `Kind name`), readable even when the metadata is malformed."""
    kind = as_str(obj.get("kind")) or "object"
    meta = as_map(obj.get("metadata"))
    name = as_str(meta.get("name")) or "(no name)"
    namespace = as_str(meta.get("namespace"))
    if kind in CLUSTER_SCOPED or not namespace:
        return f"{kind} {name}"
    return f"{kind} {namespace}/{name}"


class _Reader:
    """Reads objects one at a time, turning a malformed one into a problem."""

    def __init__(self) -> None:
        self.problems: list[ReadProblem] = []

    def each(self, objects: Iterable[Mapping[str, Any]], read: Callable[[Mapping[str, Any]], T]) -> list[T]:
        out: list[T] = []
        for obj in objects:
            try:
                out.append(read(obj))
            except Malformed as exc:
                problem = ReadProblem(resource=object_ref(obj), kind="invalid", message=str(exc))
                if problem not in self.problems:  # a pod may be routed to two readers
                    self.problems.append(problem)
        return out


# --------------------------------------------------------------------------- per kind


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return field_map(obj, "metadata", "")


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _metadata(obj)
    return field_str(meta, "namespace", "metadata"), field_str(meta, "name", "metadata")


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return field_str_map(_metadata(obj), "labels", "metadata")


def _route_labels(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The labels that decide whether an object is read at all; None when they are malformed.

    A malformed object is routed to its reader (which reports it) rather than dropped
    unseen: whether it was one of ours cannot be told.
    """
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None if meta is None else []
    if labels is None:
        return {}
    if not isinstance(labels, Mapping) or any(isinstance(v, Mapping | list | tuple) for v in labels.values()):
        return None
    return labels


def _has_label(obj: Mapping[str, Any], label: tuple[str, str]) -> bool:
    labels = _route_labels(obj)
    return labels is None or as_str(labels.get(label[0])) == label[1]


def _is_ztunnel(obj: Mapping[str, Any]) -> bool:
    """The DaemonSet of ztunnel: it selects `app=ztunnel` pods (or, hand-made, carries the label)."""
    selector = as_map(as_map(as_map(obj.get("spec")).get("selector")).get("matchLabels"))
    return as_str(selector.get(ZTUNNEL_LABEL[0])) == ZTUNNEL_LABEL[1] or _has_label(obj, ZTUNNEL_LABEL)


def _has_key(obj: Mapping[str, Any], keys: Iterable[str]) -> bool:
    labels = _route_labels(obj)
    return labels is None or any(key in labels for key in keys)


def _key_times(meta: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Newest `managedFields` entry owning each `data` key: its time and manager.

    The time is the entry's, i.e. when that manager last changed *some* field it owns.
    Read leniently: the API server writes `managedFields`, and they only date keys.
    """
    times: dict[str, str] = {}
    owners: dict[str, str] = {}
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
                    owners[key] = as_str(entry.get("manager"))
    return times, owners


def cilium_config(obj: Mapping[str, Any]) -> CiliumConfig:
    """Build a `CiliumConfig` from a ConfigMap object."""
    meta = _metadata(obj)
    times, owners = _key_times(meta)
    return CiliumConfig(
        namespace=field_str(meta, "namespace", "metadata"),
        data=field_str_map(obj, "data", ""),
        labels=_labels(obj),
        annotations=field_str_map(meta, "annotations", "metadata"),
        key_times=times,
        key_owners=owners,
    )


def daemonset_info(obj: Mapping[str, Any]) -> DaemonSetInfo:
    """Build a `DaemonSetInfo` from a DaemonSet object."""
    namespace, name = _meta(obj)
    template = field_map(field_map(obj, "spec", ""), "template", "spec")
    pod_spec = field_map(template, "spec", "spec.template")
    where = "spec.template.spec"
    init = items_of(pod_spec, "initContainers", where)
    main = items_of(pod_spec, "containers", where)
    images = tuple(image for c in (*init, *main) if (image := field_str(c, "image", f"{where}.containers")))
    env: dict[str, str] = {}
    for container in (*init, *main):  # the main containers' values win
        for var in items_of(container, "env", f"{where}.containers"):
            if var.get("valueFrom") is None:
                env_name = field_str(var, "name", f"{where}.containers.env")
                if env_name:
                    env[env_name] = field_str(var, "value", f"{where}.containers.env")
    host_paths: dict[str, str] = {}
    for volume in items_of(pod_spec, "volumes", where):
        host_path = field_map(volume, "hostPath", f"{where}.volumes")
        if host_path:
            volume_name = field_str(volume, "name", f"{where}.volumes")
            host_paths[volume_name] = field_str(host_path, "path", f"{where}.volumes.hostPath")
    status = field_map(obj, "status", "")
    return DaemonSetInfo(
        namespace=namespace,
        name=name,
        labels=_labels(obj),
        images=images,
        host_paths=host_paths,
        desired=_int(status.get("desiredNumberScheduled")),
        ready=_int(status.get("numberReady")),
        host_network=pod_spec.get("hostNetwork") is True,
        dns_policy=field_str(pod_spec, "dnsPolicy", where),
        env=env,
    )


def _pod(obj: Mapping[str, Any]) -> PodInfo:
    namespace, name = _meta(obj)
    _labels(obj)  # routed here by its labels: malformed ones make it unusable
    start = field_str(field_map(obj, "status", ""), "startTime", "status")
    return PodInfo(
        namespace=namespace,
        name=name,
        node=field_str(field_map(obj, "spec", ""), "nodeName", "spec"),
        start_time=start or None,
    )


def _workload(obj: Mapping[str, Any]) -> Workload:
    namespace, name = _meta(obj)
    pod = obj.get("kind") == "Pod"
    spec = field_map(obj, "spec", "")
    return Workload(
        kind="Pod" if pod else "Service",
        namespace=namespace,
        name=name,
        labels=_labels(obj),
        node=field_str(spec, "nodeName", "spec") if pod else "",
    )


def _namespace(obj: Mapping[str, Any]) -> NamespaceInfo:
    return NamespaceInfo(name=_meta(obj)[1], labels=_labels(obj))


def _node_config(obj: Mapping[str, Any]) -> NodeConfig:
    namespace, name = _meta(obj)
    spec = field_map(obj, "spec", "")
    return NodeConfig(
        namespace=namespace,
        name=name,
        api_version=field_str(obj, "apiVersion", ""),
        node_selector=dict(field_map(spec, "nodeSelector", "spec")),
        defaults=field_str_map(spec, "defaults", "spec"),
    )


def _peer_authentication(obj: Mapping[str, Any]) -> PeerAuthentication:
    namespace, name = _meta(obj)
    spec = field_map(obj, "spec", "")
    selector = field_str_map(field_map(spec, "selector", "spec"), "matchLabels", "spec.selector")
    # Modes are kept as written: Istio's enum is case-sensitive, so "strict" is not STRICT.
    port_modes = {
        str(port): field_str(
            field_map(field_map(spec, "portLevelMtls", "spec"), str(port), "spec.portLevelMtls"),
            "mode",
            f"spec.portLevelMtls.{port}",
        )
        or "UNSET"
        for port in field_map(spec, "portLevelMtls", "spec")
    }
    return PeerAuthentication(
        namespace=namespace,
        name=name,
        selector=selector or None,
        mode=field_str(field_map(spec, "mtls", "spec"), "mode", "spec.mtls") or "UNSET",
        port_modes=port_modes,
        creation_timestamp=field_str(_metadata(obj), "creationTimestamp", "metadata"),
    )


def _policy(obj: Mapping[str, Any]) -> Policy:
    kind = as_str(obj.get("kind"))
    namespace, name = _meta(obj)
    specs: list[Mapping[str, object]] = []
    paths: list[str] = []
    spec = field_map(obj, "spec", "")
    if spec or obj.get("spec") is not None:
        specs.append(spec)
        paths.append("/spec")
    elif kind == "NetworkPolicy":
        specs.append({})  # the API server stores a null spec as {}: selects every pod, isolates ingress
        paths.append("/spec")
    for index, item in enumerate(items_of(obj, "specs", "")):
        specs.append(item)
        paths.append(f"/specs/{index}")
    return Policy(
        kind=kind,
        namespace=None if kind == "CiliumClusterwideNetworkPolicy" else namespace,
        name=name,
        specs=tuple(specs),
        paths=tuple(paths),
    )


def _istio_object(obj: Mapping[str, Any]) -> IstioObject:
    namespace, name = _meta(obj)
    return IstioObject(
        kind=as_str(obj.get("kind")),
        api_version=field_str(obj, "apiVersion", ""),
        namespace=namespace,
        name=name,
        labels=_labels(obj),
        spec=dict(field_map(obj, "spec", "")),
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


def _unique(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One object per kind/namespace/name: a pod read by two selectors counts once (the first read)."""
    seen: set[str] = set()
    out: list[Mapping[str, Any]] = []
    for obj in objects:
        ref = object_ref(obj)
        if ref not in seen:
            seen.add(ref)
            out.append(obj)
    return out


def _by_name(item: IstioObject) -> tuple[str, str, str]:
    return (item.kind, item.namespace, item.name)


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
    kinds = {kind: _unique(found) for kind, found in group_by_kind(objects).items()}
    reader = _Reader()

    cilium_config_maps = [
        o for o in kinds["ConfigMap"] if as_map(o.get("metadata")).get("name") == CILIUM_CONFIG
    ]
    configs = sorted(reader.each(cilium_config_maps, cilium_config), key=lambda c: c.namespace)
    canonical = any(
        (as_map(o.get("metadata")).get("namespace"), as_map(o.get("metadata")).get("name"))
        == CANONICAL_K8S_CONFIG
        for o in kinds["ConfigMap"]
    )

    wanted_daemonsets = [
        o
        for o in kinds["DaemonSet"]
        if _is_ztunnel(o) or any(_has_label(o, label) for label in (CILIUM_AGENT_LABEL, ISTIO_CNI_LABEL))
    ]
    ztunnel_keys = {
        (as_str(as_map(o.get("metadata")).get("namespace")), as_str(as_map(o.get("metadata")).get("name")))
        for o in wanted_daemonsets
        if _is_ztunnel(o)
    }  # lenient: a malformed DaemonSet is reported by reader.each, never raised here
    daemonsets = sorted(reader.each(wanted_daemonsets, daemonset_info), key=lambda d: (d.namespace, d.name))
    agents = tuple(d for d in daemonsets if d.labels.get(CILIUM_AGENT_LABEL[0]) == CILIUM_AGENT_LABEL[1])
    ztunnels = tuple(d for d in daemonsets if (d.namespace, d.name) in ztunnel_keys)
    istio_cni = tuple(d for d in daemonsets if d.labels.get(ISTIO_CNI_LABEL[0]) == ISTIO_CNI_LABEL[1])

    chosen = _choose_cilium_namespace(configs, agents, cilium_namespace)
    agent_pods = [o for o in kinds["Pod"] if _has_label(o, CILIUM_AGENT_LABEL)]
    pods = sorted(reader.each(agent_pods, _pod), key=lambda p: (p.namespace, p.name))
    node_configs = sorted(
        reader.each(kinds["CiliumNodeConfig"], _node_config), key=lambda n: (n.namespace, n.name)
    )

    root, root_source = istio_namespace, istio_namespace_source if istio_namespace else ""
    if not root and ztunnels:
        # Several ztunnels (a canary revision, a leftover): the conventional root wins.
        preferred = [z for z in ztunnels if z.namespace == "istio-system"] or list(ztunnels)
        root, root_source = preferred[0].namespace, "discovered"

    istio_labels = (DATAPLANE_MODE_LABEL, USE_WAYPOINT_LABEL)
    labelled_namespaces = [o for o in kinds["Namespace"] if _has_key(o, istio_labels)]
    namespaces = sorted(reader.each(labelled_namespaces, _namespace), key=lambda n: n.name)
    labelled_pods = [o for o in kinds["Pod"] if _has_key(o, istio_labels)]
    waypoint_services = [o for o in kinds["Service"] if _has_key(o, (USE_WAYPOINT_LABEL,))]
    workloads = sorted(
        reader.each([*labelled_pods, *waypoint_services], _workload),
        key=lambda w: (w.kind, w.namespace, w.name),
    )
    peer_auths = sorted(
        reader.each(kinds["PeerAuthentication"], _peer_authentication),
        key=lambda p: (p.namespace, p.creation_timestamp, p.name),
    )
    authorization_policies = sorted(reader.each(kinds["AuthorizationPolicy"], _istio_object), key=_by_name)
    routes = sorted(
        reader.each([o for kind in ROUTE_KINDS for o in kinds[kind]], _istio_object), key=_by_name
    )
    gateways = sorted(reader.each(kinds["Gateway"], _istio_object), key=_by_name)
    policies = sorted(
        reader.each([o for kind in POLICY_KINDS for o in kinds[kind]], _policy),
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
        workloads=tuple(workloads),
        authorization_policies=tuple(authorization_policies),
        routes=tuple(routes),
        gateways=tuple(gateways),
        policies=tuple(policies),
        problems=(*problems, *sorted(reader.problems, key=lambda p: p.resource)),
    )
