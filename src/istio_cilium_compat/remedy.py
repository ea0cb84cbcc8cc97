"""What a finding asks to change, as data: the renderer turns it into commands per target.

A rule says *which* settings or objects must change; it never writes a command.
`render.py` is the one place that spells a remedy for Helm, the cilium CLI, a
ConfigMap patch, Canonical Kubernetes or its charm, so a finding's `fix` and the
rendered script cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    """On Canonical Kubernetes, the cluster annotation that governs `key` instead of a Helm value."""

    @property
    def wanted(self) -> bool:
        """The needed value as a boolean."""
        return self.value == "true"


@dataclass(frozen=True)
class Remedy:
    """The change a finding calls for.

    `cilium` settings go to cilium-config (and to every CiliumNodeConfig that overrides
    them); `istio` names Istio-side changes the renderer knows (`platform`, `probe-allowance`);
    `steps` are manual steps in prose, for what no target can apply.
    """

    cilium: tuple[CiliumSetting, ...] = ()
    restart_agents: bool = False
    istio: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to change (context findings)."""
        return not (self.cilium or self.restart_agents or self.istio or self.steps)


NONE = Remedy()

HOSTNS_ONLY = CiliumSetting("bpf-lb-sock-hostns-only", "true", "socketLB.hostNamespaceOnly")
CNI_NOT_EXCLUSIVE = CiliumSetting(
    "cni-exclusive",
    "false",
    "cni.exclusive",
    absent_ok=True,
    k8sd_annotation="k8sd/v1alpha1/cilium/cni-exclusive",
)
NO_BPF_MASQUERADE = CiliumSetting("enable-bpf-masquerade", "false", "bpf.masquerade", absent_ok=True)
LEGACY_HOST_ROUTING = CiliumSetting(
    "enable-host-legacy-routing", "true", "bpf.hostLegacyRouting", absent_ok=False
)
NO_CILIUM_ZTUNNEL = CiliumSetting("enable-ztunnel", "false", "encryption.enabled", absent_ok=True)
"""The chart writes enable-ztunnel only for encryption.type=ztunnel, as encryption.enabled."""
