"""What a finding asks to change, as data: the renderer turns it into commands per target.

A rule says *which* settings or objects must change; it never writes a command.
`render.py` is the one place that spells a remedy for Helm, the cilium CLI, a
ConfigMap patch, Canonical Kubernetes or its charm, so a finding's `fix` and the
rendered script cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .snapshot import Policy

IstioChange = Literal["platform", "probe-allowance", "strict-mtls"]
"""Istio-side changes the renderer knows:

- `platform`: istio-cni-node must use the kubelet's (Cilium's) CNI directories;
- `probe-allowance`: kubelet probes, which Istio SNATs to 169.254.7.127, must get through
  the policies that isolate ambient pods (`Remedy.isolating` names them);
- `strict-mtls`: a mesh-wide STRICT PeerAuthentication (offered by the full scope only).
"""

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _parse_bool(raw: str) -> bool | None:
    """Go's strconv.ParseBool, as the agent reads cilium-config."""
    return True if raw in _TRUE else False if raw in _FALSE else None


@dataclass(frozen=True)
class CiliumSetting:
    """One `cilium-config` key with the value Istio ambient needs, and how each manager spells it."""

    key: str
    value: str
    helm: str | None
    """The chart value that renders `key`; None when the chart has no value for it."""
    absent_ok: bool = False
    """Whether the agent's default (key absent) already gives `value`."""
    k8sd_annotation: str | None = None
    """On Canonical Kubernetes, the cluster annotation that governs `key` instead of a Helm value
    (k8sd turns the key on when the annotation is present, whatever its value)."""
    helm_when_set: bool = False
    """The chart value drives more than `key`: set it only where cilium-config has `key` wrong."""
    unsafe_with: tuple[tuple[str, str], ...] = ()
    """cilium-config (key, value) pairs with which the agent does not start with `value`
    (e.g. enable-bpf-masquerade=false beside enable-ip-masq-agent=true): never written there."""

    @property
    def wanted(self) -> bool:
        """The needed value as a boolean."""
        return self.value == "true"

    def satisfied_by(self, raw: str | None) -> bool:
        """True when `raw` (None: absent) already gives the needed value."""
        return self.absent_ok if raw is None else _parse_bool(raw) is self.wanted

    def blocked_by(self, data: Mapping[str, str]) -> list[str]:
        """The `key=value` pairs of `data` that make writing this setting harmful."""
        return [
            f"{key}={data[key]}"
            for key, bad in self.unsafe_with
            if key in data and _parse_bool(data[key]) is _parse_bool(bad)
        ]


@dataclass(frozen=True)
class PolicyRef:
    """One spec of a policy that isolates ambient pods for ingress: where a probe allowance goes."""

    kind: str
    """NetworkPolicy, CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy."""
    namespace: str | None
    name: str
    path: str = "/spec"
    """JSON pointer of the spec in the object (`/spec`, or `/specs/N` for Cilium's spec lists)."""
    has_ingress: bool = True
    """Whether that spec already has an `ingress` list (appended to) or not (created)."""

    @classmethod
    def of(cls, policy: Policy, index: int) -> PolicyRef:
        """The `index`-th spec of a snapshot policy."""
        paths = policy.paths or ("/spec",) * len(policy.specs)
        spec = policy.specs[index]
        return cls(
            kind=policy.kind,
            namespace=policy.namespace,
            name=policy.name,
            path=paths[index],
            has_ingress=isinstance(spec.get("ingress"), list),
        )


@dataclass(frozen=True)
class Remedy:
    """The change a finding calls for.

    `cilium` settings go to cilium-config (and to every CiliumNodeConfig that overrides
    them); `istio` names Istio-side changes the renderer knows; `isolating` lists the
    policies a `probe-allowance` amends where no clusterwide allowance is safe; `steps` are
    manual steps in prose, for what no target can apply.
    """

    cilium: tuple[CiliumSetting, ...] = ()
    restart_agents: bool = False
    istio: tuple[IstioChange, ...] = ()
    steps: tuple[str, ...] = ()
    isolating: tuple[PolicyRef, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to change (context findings)."""
        return not (self.cilium or self.restart_agents or self.istio or self.steps)

    @property
    def applicable(self) -> bool:
        """Some part of it is a change a target can make (not prose only)."""
        return bool(self.cilium or self.restart_agents or self.istio)


def merge(remedies: Iterable[Remedy]) -> Remedy:
    """One remedy doing what all of `remedies` do, each setting once (the first wins a conflict)."""
    cilium: dict[str, CiliumSetting] = {}
    istio: dict[IstioChange, None] = {}
    steps: dict[str, None] = {}
    isolating: dict[PolicyRef, None] = {}
    restart = False
    for remedy in remedies:
        for setting in remedy.cilium:
            cilium.setdefault(setting.key, setting)
        istio.update(dict.fromkeys(remedy.istio))
        steps.update(dict.fromkeys(remedy.steps))
        isolating.update(dict.fromkeys(remedy.isolating))
        restart = restart or remedy.restart_agents
    return Remedy(
        cilium=tuple(cilium.values()),
        restart_agents=restart,
        istio=tuple(istio),
        steps=tuple(steps),
        isolating=tuple(isolating),
    )


NONE = Remedy()

HOSTNS_ONLY = CiliumSetting("bpf-lb-sock-hostns-only", "true", "socketLB.hostNamespaceOnly")
CNI_NOT_EXCLUSIVE = CiliumSetting(
    "cni-exclusive",
    "false",
    "cni.exclusive",
    absent_ok=True,
    k8sd_annotation="k8sd/v1alpha1/cilium/cni-exclusive",
)
NO_BPF_MASQUERADE = CiliumSetting(
    "enable-bpf-masquerade",
    "false",
    "bpf.masquerade",
    absent_ok=True,
    # The agent refuses to start without BPF masquerade beside these (daemon/cmd/daemon.go,
    # daemon/cmd/kube_proxy_replacement.go initKubeProxyReplacementOptions).
    unsafe_with=(("enable-ip-masq-agent", "true"), ("install-no-conntrack-iptables-rules", "true")),
)
LEGACY_HOST_ROUTING = CiliumSetting(
    "enable-host-legacy-routing", "true", "bpf.hostLegacyRouting", absent_ok=False
)
NO_CILIUM_ZTUNNEL = CiliumSetting(
    "enable-ztunnel", "false", "encryption.enabled", absent_ok=True, helm_when_set=True
)
"""The chart writes enable-ztunnel only for encryption.type=ztunnel, as encryption.enabled."""
