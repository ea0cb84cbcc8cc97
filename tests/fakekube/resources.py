"""Registry of the resource types the fake Kubernetes API server knows how to serve.

The fake only serves what is listed here, the way a real API server only serves
built-in types and installed CRDs; anything else answers 404 like an unknown path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

FieldErrorStyle = Literal["default", "unsupported"]
"""How kube-apiserver words a rejected field selector label for a type.

``default``: types with no registered field label conversion (ConfigMap, DaemonSet...), answered by
``runtime.DefaultMetaV1FieldSelectorConversion``: ``"x" is not a known field selector: only ...``.
``unsupported``: types with their own conversion (Pod, Secret, Namespace, Service, every custom
resource): ``field label not supported: x``.
"""


@dataclass(frozen=True)
class ResourceType:
    """One REST resource type, as kube-apiserver or a CRD serves it."""

    group: str
    """API group, "" for the core group served under /api."""
    versions: tuple[str, ...]
    """Versions served, the preferred (storage) version first."""
    kind: str
    plural: str
    namespaced: bool
    builtin: bool = False
    """Compiled into kube-apiserver (not a CRD): list items drop apiVersion/kind, 404s differ."""
    field_labels: tuple[str, ...] = ()
    """Selectable fields besides metadata.name (and metadata.namespace where accepted)."""
    field_error: FieldErrorStyle = "default"
    subresources: tuple[str, ...] = ()
    """Subresources whose GET returns the whole object (only "status" is meaningful here)."""

    @property
    def group_resource(self) -> str:
        """``plural`` or ``plural.group``, the spelling used in Status messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def api_version(self, version: str) -> str:
        """The apiVersion string for ``version`` of this type's group."""
        return f"{self.group}/{version}" if self.group else version

    def accepts_field(self, label: str) -> bool:
        """Whether kube-apiserver's field label conversion accepts ``label`` for this type."""
        if label == "metadata.name" or label in self.field_labels:
            return True
        if label == "metadata.namespace":
            # The default conversion accepts it even for cluster-scoped types; the custom ones
            # (Namespace, Node, custom resources) only for namespaced types.
            return self.namespaced or self.field_error == "default"
        return False

    def field_error_message(self, label: str) -> str:
        """The message kube-apiserver puts in the 400 Status for an unsupported field label."""
        if self.field_error == "default":
            return f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'
        return f"field label not supported: {label}"


_POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)

DEFAULT_RESOURCES: tuple[ResourceType, ...] = (
    # core/v1
    ResourceType(
        "",
        ("v1",),
        "Namespace",
        "namespaces",
        namespaced=False,
        builtin=True,
        field_labels=("status.phase",),
        field_error="unsupported",
        subresources=("status",),
    ),
    ResourceType(
        "",
        ("v1",),
        "Node",
        "nodes",
        namespaced=False,
        builtin=True,
        field_labels=("spec.unschedulable",),
        field_error="unsupported",
        subresources=("status",),
    ),
    ResourceType("", ("v1",), "ConfigMap", "configmaps", namespaced=True, builtin=True),
    ResourceType(
        "",
        ("v1",),
        "Pod",
        "pods",
        namespaced=True,
        builtin=True,
        field_labels=_POD_FIELDS,
        field_error="unsupported",
        subresources=("status",),
    ),
    ResourceType(
        "",
        ("v1",),
        "Secret",
        "secrets",
        namespaced=True,
        builtin=True,
        field_labels=("type",),
        field_error="unsupported",
    ),
    ResourceType(
        "",
        ("v1",),
        "Service",
        "services",
        namespaced=True,
        builtin=True,
        field_labels=("spec.clusterIP", "spec.type"),
        field_error="unsupported",
        subresources=("status",),
    ),
    ResourceType("", ("v1",), "ServiceAccount", "serviceaccounts", namespaced=True, builtin=True),
    # apps/v1
    ResourceType(
        "apps", ("v1",), "DaemonSet", "daemonsets", namespaced=True, builtin=True, subresources=("status",)
    ),
    ResourceType(
        "apps", ("v1",), "Deployment", "deployments", namespaced=True, builtin=True, subresources=("status",)
    ),
    # networking.k8s.io/v1
    ResourceType(
        "networking.k8s.io", ("v1",), "NetworkPolicy", "networkpolicies", namespaced=True, builtin=True
    ),
    # apiextensions.k8s.io/v1
    ResourceType(
        "apiextensions.k8s.io",
        ("v1",),
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        builtin=True,
        subresources=("status",),
    ),
    # cilium.io (CRDs)
    ResourceType(
        "cilium.io",
        ("v2",),
        "CiliumNetworkPolicy",
        "ciliumnetworkpolicies",
        namespaced=True,
        field_error="unsupported",
    ),
    ResourceType(
        "cilium.io",
        ("v2",),
        "CiliumClusterwideNetworkPolicy",
        "ciliumclusterwidenetworkpolicies",
        namespaced=False,
        field_error="unsupported",
    ),
    ResourceType(
        "cilium.io",
        ("v2", "v2alpha1"),
        "CiliumNodeConfig",
        "ciliumnodeconfigs",
        namespaced=True,
        field_error="unsupported",
    ),
    ResourceType(
        "cilium.io", ("v2",), "CiliumNode", "ciliumnodes", namespaced=False, field_error="unsupported"
    ),
    # security.istio.io (CRDs)
    ResourceType(
        "security.istio.io",
        ("v1", "v1beta1"),
        "PeerAuthentication",
        "peerauthentications",
        namespaced=True,
        field_error="unsupported",
    ),
    ResourceType(
        "security.istio.io",
        ("v1", "v1beta1"),
        "AuthorizationPolicy",
        "authorizationpolicies",
        namespaced=True,
        field_error="unsupported",
    ),
    # gateway.networking.k8s.io (CRDs; Istio's waypoints are Gateways of class istio-waypoint).
    # v1 and the older version a cluster may still serve alone (the collector tries v1 first).
    ResourceType(
        "gateway.networking.k8s.io",
        ("v1", "v1beta1"),
        "Gateway",
        "gateways",
        namespaced=True,
        field_error="unsupported",
        subresources=("status",),
    ),
    ResourceType(
        "gateway.networking.k8s.io",
        ("v1", "v1beta1"),
        "HTTPRoute",
        "httproutes",
        namespaced=True,
        field_error="unsupported",
        subresources=("status",),
    ),
    ResourceType(
        "gateway.networking.k8s.io",
        ("v1", "v1alpha2"),
        "GRPCRoute",
        "grpcroutes",
        namespaced=True,
        field_error="unsupported",
        subresources=("status",),
    ),
)


def check_registry(types: Iterable[ResourceType]) -> None:
    """Reject duplicate (group, kind) or (group, plural) pairs, which would make routing ambiguous."""
    kinds: set[tuple[str, str]] = set()
    plurals: set[tuple[str, str]] = set()
    for rt in types:
        if not rt.versions:
            raise ValueError(f"{rt.kind}: at least one version is required")
        if (rt.group, rt.kind) in kinds or (rt.group, rt.plural) in plurals:
            raise ValueError(f"duplicate resource type {rt.group_resource} ({rt.kind})")
        kinds.add((rt.group, rt.kind))
        plurals.add((rt.group, rt.plural))
