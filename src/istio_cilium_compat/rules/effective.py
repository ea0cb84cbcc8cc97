"""Cilium's effective state, computed from cilium-config the way the agent does, per version.

The agent combines several keys (and the kernel, which is not visible from the API) into
what it actually runs. Each function here mirrors one decision of the agent and returns
the evidence that led to it, so a rule can say *why* and where it depends on the kernel.
Verified in cilium/cilium (see /docs and each rule's sources):
- kube-proxy replacement and socket LB: `daemon/cmd/kube_proxy_replacement.go`
  (`initKubeProxyReplacementOptions`, ≤ 1.17), `pkg/kpr/kpr.go` (`NewKPRConfig`, 1.18+; a Go
  bool from 1.19);
- BPF host routing: `finishKubeProxyReplacementInit` (≤ 1.18),
  `pkg/kpr/initializer/kube_proxy_replacement.go` (1.19+), masquerading in `pkg/option/config.go`
  (`IptablesMasqueradingEnabled`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..report import Evidence
from .facts import BoolSetting, ConfigView, Facts, parse_bool

Version = tuple[int, int, int] | None

KPR = "kube-proxy-replacement"
DEPRECATED_KPR = frozenset({"strict", "partial", "disabled"})
STATUS_HINT = (
    "kubectl -n kube-system exec ds/cilium -c cilium-agent -- cilium-dbg status --verbose"
    " (Cilium ≤ 1.14: cilium status --verbose)"
)
ROUTING_LINE = "'Routing: … Host: BPF|Legacy' (Cilium ≤ 1.15: 'Host Routing: BPF|Legacy')"


def _at_most(version: Version, major: int, minor: int) -> bool:
    """Known and not newer; unknown is False (callers say which reading they took)."""
    return version is not None and version[:2] <= (major, minor)


def _at_least(version: Version, major: int, minor: int) -> bool:
    return version is not None and version[:2] >= (major, minor)


@dataclass(frozen=True)
class KprReading:
    """`kube-proxy-replacement` as the running agent reads it."""

    mode: str
    """`true`, `false`, `strict`, `partial`, `disabled` or `probe`."""
    raw: str | None
    where: str
    rejected: bool = False
    """The running version does not accept the value: an agent restarting with it fails to start."""
    note: str = ""

    @property
    def full(self) -> bool:
        """kube-proxy replacement fully on (`true`, or `strict` before 1.16): socket LB forced on."""
        return self.mode in ("true", "strict")

    def evidence(self, note: str = "") -> Evidence:
        """The key, its value, and how it was read."""
        text = "; ".join(filter(None, [self.note, note]))
        if self.raw is None and not text:
            text = "absent: agent default false"
        return Evidence(self.where, KPR, self.raw, text)


def kube_proxy_replacement(view: ConfigView, version: Version) -> KprReading:
    """The accepted values per version: probe ≤ 1.12; strict/partial/disabled ≤ 1.15;

    true/false from 1.14 (exact strings on 1.16-1.18, any Go bool spelling from 1.19).
    """
    raw = view.raw(KPR)
    where = view.where(KPR)
    if raw is None:
        return KprReading("false", None, where)
    as_bool = parse_bool(raw)
    if raw in ("true", "false"):
        if _at_most(version, 1, 13):
            return KprReading(
                "false", raw, where, rejected=True, note="Cilium ≤ 1.13 accepts only strict/partial/disabled"
            )
        return KprReading(raw, raw, where)
    if as_bool is not None:  # 1, t, True, …: only the 1.19 bool flag reads these
        if _at_least(version, 1, 19):
            return KprReading(str(as_bool).lower(), raw, where, note="Cilium ≥ 1.19 reads it as a Go bool")
        if version is None:
            return KprReading(
                str(as_bool).lower(), raw, where, note="Cilium version unknown: read as a Go bool (1.19+)"
            )
        return KprReading(
            "true", raw, where, rejected=True, note='only "true"/"false" before Cilium 1.19: assumed on'
        )
    lowered = raw.lower()
    if raw in DEPRECATED_KPR or (raw == "probe"):
        if raw == "probe" and _at_least(version, 1, 13):
            return KprReading(
                "true", raw, where, rejected=True, note="probe was removed in Cilium 1.13: assumed on"
            )
        if raw in DEPRECATED_KPR and _at_least(version, 1, 16):
            return KprReading(
                "true", raw, where, rejected=True, note=f"{raw} was removed in Cilium 1.16: assumed on"
            )
        unknown = " (Cilium version unknown: read as ≤ 1.15)" if version is None else ""
        return KprReading(raw, raw, where, note=f"{raw}: Cilium ≤ 1.15 value{unknown}")
    note = "not a value any Cilium accepts: the agent does not start with it; assumed on"
    if lowered in DEPRECATED_KPR or lowered == "probe":
        note = "values are case-sensitive: the agent does not start with it; assumed on"
    return KprReading("true", raw, where, rejected=True, note=note)


@dataclass(frozen=True)
class SocketLB:
    """Whether socket LB is in effect on a view, and the settings that say so."""

    on: bool
    evidence: tuple[Evidence, ...]


def socket_lb(view: ConfigView, version: Version) -> SocketLB:
    """`true`/`strict` force socket LB on; `disabled` forces it off even with bpf-lb-sock;

    otherwise bpf-lb-sock decides, or enable-host-reachable-services up to Cilium 1.12.
    """
    kpr = kube_proxy_replacement(view, version)
    sock = view.bool("bpf-lb-sock")
    hrs = view.bool("enable-host-reachable-services")
    if kpr.full:
        evidence = [kpr.evidence("forces socket LB on")]
        if sock.raw is not None and sock.value is not True:
            evidence.append(sock.evidence("ignored: kube-proxy replacement forces socket LB on"))
        return SocketLB(True, tuple(evidence))
    if kpr.mode == "disabled":
        return SocketLB(False, (kpr.evidence("forces socket LB off, whatever bpf-lb-sock says"),))
    if kpr.mode == "probe":
        return SocketLB(True, (kpr.evidence("probe enables socket LB where the kernel supports it"),))
    if sock.value is True or sock.invalid:
        return SocketLB(True, (sock.evidence("enables socket LB" if not sock.invalid else "assumed on"),))
    if hrs.raw is not None and hrs.value is not False and not _at_least(version, 1, 13):
        why = (
            "Cilium ≤ 1.12: enables socket LB"
            if version
            else "enables socket LB on Cilium ≤ 1.12 (version unknown)"
        )
        return SocketLB(True, (hrs.evidence(why),))
    return SocketLB(False, (kpr.evidence("socket LB not forced"), sock.evidence()))


def _enabled(view: ConfigView, key: str, default: bool) -> BoolSetting:
    return view.bool(key, default=default)


@dataclass(frozen=True)
class HostRouting:
    """Whether the agent uses BPF host routing on a view."""

    bpf: bool
    evidence: tuple[Evidence, ...]
    kernel_dependent: bool = False
    """On Cilium ≤ 1.17 the agent still falls back on kernels older than 5.10 (not visible here)."""


def masquerading(view: ConfigView) -> bool:
    """`MasqueradingEnabled()`: IPv4 or IPv6 masquerading on (each needs its family enabled)."""
    return any(
        view.bool(f"enable-{f}", default=True).value is not False
        and view.bool(f"enable-{f}-masquerade", default=True).value is not False
        for f in ("ipv4", "ipv6")
    )


def iptables_masquerading(view: ConfigView) -> tuple[bool, list[Evidence]]:
    """`IptablesMasqueradingEnabled()`: IPv4 or IPv6 masquerading on, and not done in BPF."""
    bpf = view.bool("enable-bpf-masquerade")
    if bpf.value is True:
        return False, [bpf.evidence("masquerading in BPF")]
    on: list[Evidence] = []
    for family in ("ipv4", "ipv6"):
        enabled = view.bool(f"enable-{family}", default=True)
        masq = view.bool(f"enable-{family}-masquerade", default=True)
        if enabled.value is not False and masq.value is not False:
            on.append(masq.evidence(f"{family.upper()} masquerading by iptables"))
    return bool(on), on


def host_routing(view: ConfigView, version: Version) -> HostRouting:
    """BPF host routing only when legacy is not asked for, kube-proxy replacement is fully on,

    masquerading needs no iptables and (≤ 1.18) IPsec is off; ≤ 1.17 also needs kernel ≥ 5.10.
    """
    legacy = view.bool("enable-host-legacy-routing")
    if legacy.value is True or legacy.invalid:
        return HostRouting(False, (legacy.evidence("legacy host routing"),))
    kpr = kube_proxy_replacement(view, version)
    if not kpr.full:
        return HostRouting(False, (kpr.evidence("BPF host routing requires kube-proxy replacement: legacy"),))
    if not _at_least(version, 1, 19):
        ipsec = view.bool("enable-ipsec")
        if ipsec.value is True:
            return HostRouting(False, (ipsec.evidence("Cilium ≤ 1.18: IPsec forces legacy host routing"),))
    iptables, masq = iptables_masquerading(view)
    if iptables:
        return HostRouting(
            False,
            (
                *masq,
                Evidence(
                    view.where("enable-bpf-masquerade"),
                    "enable-bpf-masquerade",
                    view.raw("enable-bpf-masquerade"),
                    "BPF host routing requires BPF masquerade: legacy",
                ),
            ),
        )
    evidence = [
        legacy.evidence("BPF host routing not turned off"),
        kpr.evidence("kube-proxy replacement on"),
        *masq,
    ]
    if not masq:
        evidence.append(
            Evidence(
                view.config_name,
                "enable-ipv4-masquerade/enable-ipv6-masquerade",
                None,
                "masquerading off: no iptables needed",
            )
        )
    return HostRouting(True, tuple(evidence), kernel_dependent=not _at_least(version, 1, 18))


def refusals(view: ConfigView, version: Version) -> list[Evidence]:
    """Settings the running agent refuses at start (a restart with them fails)."""
    found: list[Evidence] = []
    kpr = kube_proxy_replacement(view, version)
    if kpr.rejected:
        found.append(kpr.evidence())
    bpf = view.bool("enable-bpf-masquerade")
    on = masquerading(view)
    no_conntrack = view.bool("install-no-conntrack-iptables-rules")
    if no_conntrack.value is True and on and bpf.value is not True:
        found.append(no_conntrack.evidence("requires enable-bpf-masquerade while masquerading is on"))
    if no_conntrack.value is True and not kpr.full:
        found.append(no_conntrack.evidence("requires kube-proxy-replacement=true"))
    masq_agent = view.bool("enable-ip-masq-agent")
    if masq_agent.value is True and (bpf.value is not True or not on):
        found.append(masq_agent.evidence("BPF ip-masq-agent requires enable-bpf-masquerade and masquerading"))
    if bpf.value is True and not on and _at_least(version, 1, 16):
        found.append(bpf.evidence("Cilium ≥ 1.16: BPF masquerade requires IPv4 or IPv6 masquerading"))
    return found


@dataclass(frozen=True)
class Bypass:
    """A view on which socket LB serves pods: Service connections reach ztunnel as pod IPs."""

    view: ConfigView
    lb: SocketLB
    hostns_only: BoolSetting


SOCKET_LB_KEYS = (
    "kube-proxy-replacement",
    "bpf-lb-sock",
    "enable-host-reachable-services",
    "bpf-lb-sock-hostns-only",
)


def socket_lb_bypasses(facts: Facts) -> tuple[Bypass, ...]:
    """Views where socket LB is in effect and not limited to the host namespace."""
    found = []
    for view in facts.views:
        if not view.overrides(*SOCKET_LB_KEYS):
            continue
        lb = socket_lb(view, facts.version)
        hostns = view.bool("bpf-lb-sock-hostns-only")
        if lb.on and hostns.value is not True:
            found.append(Bypass(view, lb, hostns))
    return tuple(found)
