"""Derived facts every rule needs: parsed booleans, per-node config views, versions.

Computed once per evaluation so that each rule stays a short, pure function.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property

from ..report import Evidence
from ..snapshot import CiliumConfig, DaemonSetInfo, NodeConfig, Snapshot

TRUE_SPELLINGS = frozenset({"1", "t", "T", "TRUE", "true", "True"})
FALSE_SPELLINGS = frozenset({"0", "f", "F", "FALSE", "false", "False"})
AMBIENT = "ambient"
DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode"
DEFAULT_CNI_CONF_DIR = "/etc/cni/net.d"
DEFAULT_CNI_BIN_DIR = "/opt/cni/bin"
EVIDENCE_LIMIT = 10
PROBE_SOURCE_V4 = ipaddress.ip_address("169.254.7.127")
PROBE_SOURCE_V6 = ipaddress.ip_address("fd16:9254:7127:1337:ffff:ffff:ffff:ffff")


def _address(raw: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(raw) if raw else None
    except ValueError:
        return None


_VERSION = re.compile(r":v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_bool(raw: str) -> bool | None:
    """Go's strconv.ParseBool, which the Cilium agent applies to its settings."""
    if raw in TRUE_SPELLINGS:
        return True
    if raw in FALSE_SPELLINGS:
        return False
    return None


def tag_numbers(image: str) -> tuple[str, ...] | None:
    """`quay.io/cilium/cilium:v1.19@sha256:…` -> ("1", "19"): the tag's numbers as written."""
    match = _VERSION.search(image.split("@", 1)[0].rsplit("/", 1)[-1])
    return tuple(g for g in match.groups() if g is not None) if match else None


def parse_version(image: str) -> tuple[int, int, int] | None:
    """`quay.io/cilium/cilium:v1.17.4@sha256:…` -> (1, 17, 4); an absent patch compares as 0."""
    numbers = tag_numbers(image)
    return _as_version(numbers) if numbers else None


def _as_version(numbers: tuple[str, ...]) -> tuple[int, int, int]:
    major, minor, *patch = (int(n) for n in numbers)
    return major, minor, patch[0] if patch else 0


def format_version(version: tuple[int, int, int] | None) -> str | None:
    """(1, 17, 4) -> "1.17.4"."""
    return ".".join(map(str, version)) if version else None


def object_name(kind: str, namespace: str | None, name: str) -> str:
    """How evidence names an object."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


@dataclass(frozen=True)
class BoolSetting:
    """One boolean key as the agent will read it, with where the value came from."""

    key: str
    raw: str | None
    default: bool
    where: str

    @property
    def value(self) -> bool | None:
        """True/False, the default when absent, None when it does not parse."""
        return self.default if self.raw is None else parse_bool(self.raw)

    @property
    def invalid(self) -> bool:
        """Present but not a Go boolean."""
        return self.raw is not None and parse_bool(self.raw) is None

    def evidence(self, note: str = "") -> Evidence:
        """Key and raw value, with a parse note where it does not parse."""
        if self.invalid:
            note = "; ".join(filter(None, ["does not parse as a boolean", note]))
        elif self.raw is None and not note:
            note = f"absent: agent default {str(self.default).lower()}"
        return Evidence(object=self.where, key=self.key, value=self.raw, note=note)


@dataclass(frozen=True)
class ConfigView:
    """The settings that apply to a set of nodes: global, or global plus a node override."""

    config: CiliumConfig
    node_config: NodeConfig | None = None

    @property
    def config_name(self) -> str:
        """The ConfigMap as evidence names it."""
        return object_name("ConfigMap", self.config.namespace, "cilium-config")

    @property
    def label(self) -> str:
        """`all nodes` or the CiliumNodeConfig that narrows it."""
        if self.node_config is None:
            return "all nodes"
        nc = self.node_config
        return f"nodes selected by {object_name('CiliumNodeConfig', nc.namespace, nc.name)}"

    def raw(self, key: str) -> str | None:
        """Effective raw value: the node override wins."""
        if self.node_config is not None and key in self.node_config.defaults:
            return self.node_config.defaults[key]
        return self.config.data.get(key)

    def where(self, key: str) -> str:
        """Which object the effective value of `key` comes from."""
        if self.node_config is not None and key in self.node_config.defaults:
            nc = self.node_config
            return object_name("CiliumNodeConfig", nc.namespace, nc.name)
        return self.config_name

    def overrides(self, *keys: str) -> bool:
        """True for the global view, or when the node config sets one of `keys`."""
        return self.node_config is None or any(k in self.node_config.defaults for k in keys)

    def bool(self, key: str, default: bool = False) -> BoolSetting:
        """A boolean key as the agent parses it."""
        return BoolSetting(key=key, raw=self.raw(key), default=default, where=self.where(key))


@dataclass
class Facts:
    """A snapshot plus what the rules derive from it, computed once."""

    snapshot: Snapshot

    @cached_property
    def config(self) -> CiliumConfig | None:
        """The `cilium-config` in use."""
        return self.snapshot.cilium_config

    @cached_property
    def views(self) -> tuple[ConfigView, ...]:
        """Global settings first, then one view per CiliumNodeConfig."""
        if self.config is None:
            return ()
        return (
            ConfigView(self.config),
            *(ConfigView(self.config, nc) for nc in self.snapshot.node_configs),
        )

    @cached_property
    def cilium_agent(self) -> DaemonSetInfo | None:
        """The cilium agent DaemonSet in Cilium's namespace."""
        agents = self.snapshot.cilium_agents
        return agents[0] if agents else None

    @cached_property
    def _version_tag(self) -> tuple[str, ...] | None:
        """The version numbers of the agent's image tag, as written (the cilium image first)."""
        if self.cilium_agent is None:
            return None
        images = self.cilium_agent.images
        preferred = [i for i in images if "/cilium:" in i or i.startswith("cilium:")]
        for image in (*preferred, *images):
            numbers = tag_numbers(image)
            if numbers is not None:
                return numbers
        return None

    @cached_property
    def version(self) -> tuple[int, int, int] | None:
        """Cilium version from the agent's image tag; an absent patch compares as 0."""
        tag = self._version_tag
        return _as_version(tag) if tag else None

    @cached_property
    def version_shown(self) -> str | None:
        """The version as the tag writes it: `v1.19` (Helm values for an X.Y chart) is "1.19", not "1.19.0"."""
        return ".".join(self._version_tag) if self._version_tag else None

    def version_at_most(self, major: int, minor: int) -> bool:
        """True when the version is known and not newer; unknown counts as possibly old."""
        return self.version is None or self.version[:2] <= (major, minor)

    @cached_property
    def root_namespace(self) -> str | None:
        """Istio's root namespace (override, relation or discovered)."""
        return self.snapshot.istio_root_namespace

    @cached_property
    def ztunnel(self) -> DaemonSetInfo | None:
        """The ztunnel DaemonSet in the root namespace."""
        for ds in self.snapshot.ztunnels:
            if self.root_namespace is None or ds.namespace == self.root_namespace:
                return ds
        return None

    @property
    def ambient_present(self) -> bool:
        """Istio ambient runs somewhere: Cilium's settings matter cluster-wide, whatever the root."""
        return bool(self.snapshot.ztunnels)

    @cached_property
    def istio_cni(self) -> DaemonSetInfo | None:
        """The istio-cni-node DaemonSet, preferring the root namespace."""
        found = self.snapshot.istio_cni
        for ds in found:
            if ds.namespace == self.root_namespace:
                return ds
        return found[0] if found else None

    @cached_property
    def ambient_namespaces(self) -> tuple[str, ...]:
        """Namespaces enrolled in ambient."""
        return tuple(
            ns.name for ns in self.snapshot.namespaces if ns.labels.get(DATAPLANE_MODE_LABEL) == AMBIENT
        )

    @cached_property
    def ambient_set(self) -> frozenset[str]:
        """`ambient_namespaces` as a set, for membership tests in loops over policies."""
        return frozenset(self.ambient_namespaces)

    @cached_property
    def istio_version(self) -> tuple[tuple[int, int, int], str] | None:
        """Istio's version and the image it was read from (ztunnel first, then istio-cni)."""
        for ds in (self.ztunnel, self.istio_cni):
            for image in ds.images if ds else ():
                version = parse_version(image)
                if version:
                    return version, image
        return None

    def istio_before(self, major: int, minor: int, patch: int = 0) -> bool:
        """Istio is known to be older than major.minor.patch (unknown counts as current)."""
        found = self.istio_version
        return found is not None and found[0] < (major, minor, patch)

    @cached_property
    def ambient_pods(self) -> dict[str, tuple[str, ...]]:
        """Namespace -> pods enrolled by their own label outside ambient namespaces (Istio ≥ 1.22)."""
        if self.istio_before(1, 22):
            return {}  # Istio 1.21 enrolled namespaces only (istio/istio cni/pkg/util, release-1.21)
        found: dict[str, list[str]] = {}
        for pod in self.snapshot.workloads:
            enrolled = pod.kind == "Pod" and pod.labels.get(DATAPLANE_MODE_LABEL) == AMBIENT
            if enrolled and pod.namespace not in self.ambient_set:
                found.setdefault(pod.namespace, []).append(pod.name)
        return {ns: tuple(sorted(names)) for ns, names in sorted(found.items())}

    @cached_property
    def policy_scope(self) -> tuple[str, ...]:
        """Namespaces holding ambient pods: enrolled namespaces, then those with enrolled pods."""
        return (*self.ambient_namespaces, *self.ambient_pods)

    @cached_property
    def policy_scope_set(self) -> frozenset[str]:
        """`policy_scope` as a set."""
        return frozenset(self.policy_scope)

    def scope_note(self, namespace: str) -> str:
        """How a namespace holds ambient pods, for evidence."""
        pods = self.ambient_pods.get(namespace)
        if not pods:
            return f"ambient namespace {namespace}"
        shown = ", ".join(pods[:3]) + (f" (+{len(pods) - 3} more)" if len(pods) > 3 else "")
        return f"namespace {namespace} (pods labelled ambient: {shown})"

    @cached_property
    def probe_sources(self) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
        """The addresses kubelet probes of ambient pods arrive from, per IP family in use.

        Istio SNATs them to 169.254.7.127 (IPv6 fd16:9254:7127:1337:ffff:ffff:ffff:ffff), or to
        istio-cni-node's HOST_PROBE_SNAT_IP / HOST_PROBE_SNAT_IPV6 (the IPv6 one from Istio 1.23).
        Kubelet probes a pod's primary IP: an IPv6 source is needed only without IPv4.
        """
        env = self.istio_cni.env if self.istio_cni else {}
        v4 = _address(env.get("HOST_PROBE_SNAT_IP")) or PROBE_SOURCE_V4
        v6 = (
            None if self.istio_before(1, 23) else _address(env.get("HOST_PROBE_SNAT_IPV6"))
        ) or PROBE_SOURCE_V6
        if not self.views:
            return (v4,)
        ipv4 = self.views[0].bool("enable-ipv4", default=True).value is not False
        ipv6 = self.views[0].bool("enable-ipv6", default=True).value is not False
        return (v4,) if ipv4 or not ipv6 else (v6,)

    @cached_property
    def managed_by(self) -> str:
        """`canonical-k8s`, `helm` or `unknown`: decides which fix to print."""
        if self.snapshot.canonical_k8s:
            return "canonical-k8s"
        if self.config is not None and (
            self.config.labels.get("app.kubernetes.io/managed-by") == "Helm"
            or "meta.helm.sh/release-name" in self.config.annotations
        ):
            return "helm"
        return "unknown"

    @cached_property
    def helm_release(self) -> tuple[str, str]:
        """(release, namespace) of the Helm release that owns cilium-config."""
        annotations = self.config.annotations if self.config else {}
        default_ns = self.snapshot.cilium_namespace or "kube-system"
        default_release = "ck-network" if self.snapshot.canonical_k8s else "cilium"
        return (
            annotations.get("meta.helm.sh/release-name") or default_release,
            annotations.get("meta.helm.sh/release-namespace") or default_ns,
        )

    @property
    def cilium_namespace(self) -> str:
        """Where Cilium runs (for commands in fixes)."""
        return self.snapshot.cilium_namespace or "kube-system"


def capped(evidence: list[Evidence], what: str = "more") -> tuple[Evidence, ...]:
    """Keep evidence readable on big clusters: the first few, then a count."""
    if len(evidence) <= EVIDENCE_LIMIT:
        return tuple(evidence)
    rest = len(evidence) - EVIDENCE_LIMIT
    return (*evidence[:EVIDENCE_LIMIT], Evidence(object=f"… and {rest} {what}"))
