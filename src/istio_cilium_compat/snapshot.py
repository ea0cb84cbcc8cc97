"""Everything the rules may look at, as frozen values.

Both the live collector and the manifest loader produce a `Snapshot`, so a rule
cannot tell (and must not care) where the cluster state came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ProblemKind = Literal["forbidden", "error", "unreachable", "invalid"]


@dataclass(frozen=True)
class CiliumConfig:
    """The `cilium-config` ConfigMap, with when each key was last written."""

    namespace: str
    data: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    key_times: Mapping[str, str] = field(default_factory=dict)
    """Key -> RFC 3339 time of the newest `managedFields` entry that owns it (the entry's time, not the key's)."""
    key_owners: Mapping[str, str] = field(default_factory=dict)
    """Key -> the manager of that entry."""


@dataclass(frozen=True)
class NodeConfig:
    """A `CiliumNodeConfig`: `defaults` override `cilium-config` on matching nodes."""

    namespace: str
    name: str
    api_version: str
    node_selector: Mapping[str, object]
    defaults: Mapping[str, str]


@dataclass(frozen=True)
class DaemonSetInfo:
    """The parts of a DaemonSet the checks use."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    images: tuple[str, ...]
    host_paths: Mapping[str, str]
    """Volume name -> hostPath path."""
    desired: int = 0
    ready: int = 0
    host_network: bool = False
    dns_policy: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    """Plain `value` environment variables of every container (e.g. istio-cni's HOST_PROBE_SNAT_IP)."""


@dataclass(frozen=True)
class PodInfo:
    """A Cilium agent pod: when it started tells whether it runs the current config."""

    namespace: str
    name: str
    node: str
    start_time: str | None


@dataclass(frozen=True)
class NamespaceInfo:
    """A namespace carrying the `istio.io/dataplane-mode` or `istio.io/use-waypoint` label."""

    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Workload:
    """A pod or Service carrying an Istio label (`istio.io/dataplane-mode`, `istio.io/use-waypoint`)."""

    kind: Literal["Pod", "Service"]
    namespace: str
    name: str
    labels: Mapping[str, str]
    node: str = ""


@dataclass(frozen=True)
class IstioObject:
    """An Istio or Gateway API object the rules interpret (AuthorizationPolicy, HTTPRoute, Gateway)."""

    kind: str
    api_version: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    spec: Mapping[str, object]


@dataclass(frozen=True)
class PeerAuthentication:
    """A PeerAuthentication reduced to what decides the accepted mTLS mode."""

    namespace: str
    name: str
    selector: Mapping[str, str] | None
    """`spec.selector.matchLabels`; None (or empty) means namespace- or mesh-wide."""
    mode: str
    """`spec.mtls.mode` as written (Istio's enum is case-sensitive); `UNSET` when absent."""
    port_modes: Mapping[str, str] = field(default_factory=dict)
    creation_timestamp: str = ""


@dataclass(frozen=True)
class Policy:
    """A NetworkPolicy or Cilium policy, spec kept raw for the rules to interpret."""

    kind: str
    namespace: str | None
    name: str
    specs: tuple[Mapping[str, object], ...]
    paths: tuple[str, ...] = ()
    """JSON pointer of each spec in the object (`/spec`, `/specs/N`), for patches that amend one."""


@dataclass(frozen=True)
class ReadProblem:
    """A resource that could not be read, so a finding can say which and why."""

    resource: str
    kind: ProblemKind
    message: str
    namespace: str | None = None


@dataclass(frozen=True)
class ZtunnelRead:
    """One ztunnel pod the runtime probe meant to read, and what came of it."""

    namespace: str
    name: str
    node: str
    read: bool
    """Its `istio_tcp_connections_opened` family was read completely (and is in the counts)."""
    error: str | None = None
    reason: Literal["", "forbidden", "error", "timeout", "too-large", "not-ready", "skipped"] = ""
    """Why it was not read, for grouping: `skipped` = not attempted (cap, API unreachable, 403 before)."""


@dataclass(frozen=True)
class ConnectionCount:
    """`istio_tcp_connections_opened_total` of one ztunnel, summed over the labels the rules ignore."""

    reporter: str
    """`source` (ztunnel's outbound side) or `destination` (its inbound side)."""
    mutual_tls: bool
    """`connection_security_policy="mutual_tls"`; anything else (`unknown`) is plaintext."""
    source_namespace: str
    source_workload: str
    destination_namespace: str
    destination_workload: str
    destination_service: str
    """Service hostname, or `unknown` when the connection was not addressed to a Service."""
    node: str
    """Node of the ztunnel that counted it."""
    count: int


@dataclass(frozen=True)
class RuntimeSummary:
    """What ztunnel's own counters said (`check --runtime`); cumulative since each ztunnel started."""

    pods: tuple[ZtunnelRead, ...] = ()
    connections: tuple[ConnectionCount, ...] = ()
    list_problem: ReadProblem | None = None
    """The ztunnel pods could not be listed (then `pods` is empty)."""
    more_pods: bool = False
    """More ztunnel pods exist than the probe was allowed to read (`--runtime-max-pods`)."""
    max_pods: int = 0
    max_bytes: int = 0
    timeout: float = 0.0


@dataclass(frozen=True)
class Snapshot:
    """The cluster as the rules see it."""

    source: str = ""
    cilium_configs: tuple[CiliumConfig, ...] = ()
    cilium_namespace: str | None = None
    """Namespace of the `cilium-config` in use (chosen by discovery or override)."""
    cilium_agents: tuple[DaemonSetInfo, ...] = ()
    cilium_pods: tuple[PodInfo, ...] = ()
    node_configs: tuple[NodeConfig, ...] = ()
    canonical_k8s: bool = False
    istio_root_namespace: str | None = None
    istio_root_namespace_source: str = ""
    """`option`, `relation`, `discovered` or empty when nothing was found."""
    ztunnels: tuple[DaemonSetInfo, ...] = ()
    istio_cni: tuple[DaemonSetInfo, ...] = ()
    peer_authentications: tuple[PeerAuthentication, ...] = ()
    namespaces: tuple[NamespaceInfo, ...] = ()
    workloads: tuple[Workload, ...] = ()
    """Pods labelled `istio.io/dataplane-mode` and Pods/Services labelled `istio.io/use-waypoint`."""
    authorization_policies: tuple[IstioObject, ...] = ()
    routes: tuple[IstioObject, ...] = ()
    """HTTPRoute and GRPCRoute objects (gateway.networking.k8s.io)."""
    gateways: tuple[IstioObject, ...] = ()
    """Gateway objects (gateway.networking.k8s.io); waypoints have gatewayClassName istio-waypoint."""
    policies: tuple[Policy, ...] = ()
    problems: tuple[ReadProblem, ...] = ()
    runtime: RuntimeSummary | None = None
    """ztunnel's counters, when a runtime probe ran (live clusters only)."""

    @property
    def cilium_config(self) -> CiliumConfig | None:
        """The `cilium-config` in use, if any."""
        for config in self.cilium_configs:
            if config.namespace == self.cilium_namespace:
                return config
        return None
