"""Checks on Cilium's own settings (cilium-config and CiliumNodeConfig overrides)."""

from __future__ import annotations

from datetime import datetime, timezone

from .. import remedy as r
from ..report import Evidence, Severity
from . import effective
from .effective import SOCKET_LB_KEYS, socket_lb_bypasses
from .facts import ConfigView, Facts, capped
from .registry import Hit, rule

HOSTNS_ONLY = "bpf-lb-sock-hostns-only"

# Every key this catalogue reads: a change to one of them needs an agent restart to count.
READ_KEYS = (
    *SOCKET_LB_KEYS,
    "cni-exclusive",
    "enable-bpf-masquerade",
    "enable-host-legacy-routing",
    "enable-ztunnel",
    "enable-policy",
)


CONFIG_READS = ("cilium_configs", "node_configs", "cilium_agents")
SOCKET_LB_SOURCES = (
    "cilium/cilium daemon/cmd/kube_proxy_replacement.go (initKubeProxyReplacementOptions: KPR enables socket LB, ≤ 1.17)",
    "cilium/cilium pkg/kpr/kpr.go (NewKPRConfig: KPR enables socket LB, 1.18+)",
    "cilium/cilium bpf/bpf_sock.c (cgroup/connect4 hook: Service VIP rewritten to a backend before the SYN)",
    'cilium/cilium daemon/cmd/daemon_main.go (bpf-lb-sock-hostns-only, default false: "Required by service mesh (e.g., '
    'Istio, Linkerd)")',
    "istio/istio cni/pkg/iptables/iptables.go (ISTIO_OUTPUT: every outbound TCP connection to ztunnel 15001)",
    "istio/ztunnel src/proxy/outbound.rs (build_request: pod-IP destinations go HBONE to the workload)",
    "istio/istio#49149",
    "istio/istio#55481",
    "cilium/cilium#17276",
    "istio/istio.io#17074",
    "istio/istio operator/pkg/apis/validation/validation.go (istioctl: bpf-lb-sock=true needs bpf-lb-sock-hostns-only=true, 1.24+)",
    "https://docs.cilium.io/en/stable/network/servicemesh/istio/",
)


def _socket_lb_off(facts: Facts) -> Hit | None:
    """Context: socket LB is off everywhere, so the Service address reaches ztunnel."""
    global_view: ConfigView = facts.views[0]
    if any(effective.socket_lb(v, facts.version).on for v in facts.views):
        return None
    version = facts.version_shown or "(version unknown)"
    return Hit(
        summary=f"Cilium {version}: socket LB is off, Service traffic reaches ztunnel with its Service",
        detail="Neither kube-proxy replacement nor bpf-lb-sock enables socket LB; hostns-only does not matter.",
        evidence=effective.socket_lb(global_view, facts.version).evidence,
        severity=Severity.INFO,
        remedy=r.NONE,
        fix="Nothing to do. If you turn on kube-proxy replacement later, also set "
        "bpf-lb-sock-hostns-only=true.",
    )


@rule(
    "CIC001",
    Severity.ERROR,
    "Socket LB in effect for pods (bpf-lb-sock-hostns-only not true): ztunnel loses the Service address",
    sources=SOCKET_LB_SOURCES,
    reads=CONFIG_READS,
    remedy=r.Remedy(cilium=(r.HOSTNS_ONLY,), restart_agents=True),
    also=frozenset({Severity.INFO}),
)
def socket_lb_bypass(facts: Facts) -> Hit | None:
    """CIC001: socket LB rewrites Service connections to a pod IP before ztunnel sees them."""
    if not facts.views:
        return None
    evidence: list[Evidence] = []
    where: list[str] = []
    for bypass in socket_lb_bypasses(facts):
        where.append(bypass.view.label)
        evidence.extend(bypass.lb.evidence)
        evidence.append(bypass.hostns_only.evidence())
    if not evidence:
        return _socket_lb_off(facts)
    # The action first: `juju status` cuts the line at 120 characters.
    scope = (
        "" if "all nodes" in where else f" ({', '.join(w.removeprefix('nodes selected by ') for w in where)})"
    )
    return Hit(
        summary=f"Socket LB hides Services from ztunnel: set bpf-lb-sock-hostns-only=true{scope}",
        detail=(
            "Socket LB rewrites a pod's connect() to a Service into a connection to one backend pod before "
            "the first packet exists. ztunnel still captures it and sends it as HBONE mTLS to that pod, but "
            "the Service address is gone: service-bound waypoints are skipped (their L7 AuthorizationPolicies, "
            "RequestAuthentication and HTTP routing do not apply), ztunnel's Service load balancing and "
            "failover are bypassed, and source metrics lose the Service labels."
        ),
        evidence=capped(evidence),
    )


def _bool_rule(
    facts: Facts,
    *,
    key: str,
    bad: bool,
    explicit_only: bool = False,
) -> tuple[list[Evidence], list[Evidence]]:
    """Views where `key` has the bad value, and views where it does not parse."""
    bad_evidence: list[Evidence] = []
    invalid: list[Evidence] = []
    for view in facts.views:
        if not view.overrides(key):
            continue
        setting = view.bool(key)
        if setting.invalid:
            invalid.append(setting.evidence(f"on {view.label}"))
        elif setting.value is bad and (setting.raw is not None or not explicit_only):
            bad_evidence.append(setting.evidence(f"on {view.label}"))
    return bad_evidence, invalid


def _setting_finding(
    facts: Facts,
    *,
    key: str,
    bad: bool,
    summary: str,
    detail: str,
    explicit_only: bool = False,
) -> Hit | None:
    """A boolean setting with a wrong value (globally or per node); an unparsable one is a warning.

    The fix is the rule's remedy: the renderer writes it, CiliumNodeConfig overrides included.
    """
    wrong, invalid = _bool_rule(facts, key=key, bad=bad, explicit_only=explicit_only)
    if wrong:
        return Hit(summary, detail, capped(wrong))
    if invalid:
        return Hit(
            f"cilium-config {key} does not parse as a boolean",
            "The agent reads an unparsable boolean as false or refuses to start; the value must be fixed.",
            capped(invalid),
            severity=Severity.WARNING,
        )
    return None


INVALID_IS_WARNING = frozenset({Severity.WARNING})


@rule(
    "CIC003",
    Severity.ERROR,
    "cni-exclusive: Cilium renames Istio CNI's configuration",
    sources=(
        'cilium/cilium pkg/option/config.go (CNIExclusive = "cni-exclusive")',
        "cilium/cilium daemon/cmd/cni/config.go (cleanupOtherCNI: other CNI configs renamed *.cilium_bak)",
        "https://istio.io/latest/docs/ambient/install/platform-prerequisites/#cilium",
        "https://docs.cilium.io/en/stable/network/servicemesh/istio/",
        "canonical/k8s-snap src/k8s/pkg/k8sd/features/cilium/internal.go (AnnotationCNIExclusive: presence sets "
        "cni.exclusive, release-1.32–1.35)",
        "canonical/k8sd pkg/k8sd/features/cilium/internal.go (AnnotationCNIExclusive, Canonical Kubernetes 1.36+)",
    ),
    reads=("cilium_configs", "node_configs", "canonical_k8s"),
    remedy=r.Remedy(cilium=(r.CNI_NOT_EXCLUSIVE,), restart_agents=True),
    also=INVALID_IS_WARNING,
)
def cni_exclusive(facts: Facts) -> Hit | None:
    """CIC003: exclusive Cilium moves Istio CNI's configuration aside."""
    return _setting_finding(
        facts,
        key="cni-exclusive",
        bad=True,
        summary="Cilium is the exclusive CNI and removes Istio CNI's config: set cni-exclusive=false",
        detail=(
            "With cni-exclusive, the agent renames other CNI configurations in the node's CNI "
            "directory to *.cilium_bak, Istio CNI's included: ambient pods are not captured."
        ),
    )


@rule(
    "CIC007",
    Severity.WARNING,
    "No cilium-config found (verdict unknown)",
    sources=(
        "cilium/cilium install/kubernetes/cilium/templates/cilium-configmap.yaml (ConfigMap cilium-config)",
        "https://docs.cilium.io/en/stable/configuration/",
    ),
    reads=("cilium_configs", "cilium_agents", "problems"),
    unknown=True,
)
def missing_cilium_config(facts: Facts) -> Hit | None:
    """CIC007: nothing Cilium-specific can be checked without cilium-config."""
    snap = facts.snapshot
    if facts.config is not None:
        return None
    forbidden = [p for p in snap.problems if p.resource == "configmaps"]
    looked = f"namespace {snap.cilium_namespace}" if snap.cilium_namespace else "all namespaces"
    evidence = [Evidence(object=f"ConfigMap cilium-config in {looked}", note="not found")]
    evidence.extend(Evidence(object="configmaps", note=f"{p.kind}: {p.message}") for p in forbidden)
    if snap.cilium_agents:
        agent = snap.cilium_agents[0]
        evidence.append(
            Evidence(object=f"DaemonSet {agent.namespace}/{agent.name}", note="cilium agent found")
        )
    return Hit(
        summary="Cilium configuration not found: cannot check Cilium settings",
        detail=(
            "No cilium-config ConfigMap was visible. Either Cilium is not the CNI, it lives where this "
            "reader may not look, or reading ConfigMaps is not permitted."
        ),
        evidence=tuple(evidence),
        fix=(
            "If Cilium is the CNI: check that cilium-config exists (kubectl get cm -A "
            "--field-selector metadata.name=cilium-config), name its namespace (cilium-namespace), "
            "and grant read access to ConfigMaps."
        ),
    )


@rule(
    "CIC016",
    Severity.WARNING,
    "Several cilium-config ConfigMaps: says which one was checked",
    sources=(
        "cilium/cilium install/kubernetes/cilium/templates/cilium-configmap.yaml (ConfigMap cilium-config)",
        "https://docs.cilium.io/en/stable/configuration/",
    ),
    reads=("cilium_configs",),
)
def several_configs(facts: Facts) -> Hit | None:
    """CIC016: two Cilium configurations; say which one was checked."""
    configs = facts.snapshot.cilium_configs
    if len(configs) < 2:
        return None
    used = facts.snapshot.cilium_namespace
    return Hit(
        summary=f"Several cilium-config ConfigMaps found; checked the one in {used}",
        detail="Only one Cilium installation should configure the cluster's CNI; a leftover copy misleads.",
        evidence=tuple(
            Evidence(
                object=f"ConfigMap {c.namespace}/cilium-config",
                note="checked" if c.namespace == used else "not checked",
            )
            for c in configs
        ),
        fix="Remove the stale copy, or name the right namespace (cilium-namespace).",
    )


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@rule(
    "CIC009",
    Severity.WARNING,
    "cilium-config changed after the agents started: restart pending",
    sources=(
        "cilium/cilium pkg/option/config.go (InitConfig, ReadDirConfig: the mounted cilium-config is read at agent start)",
        "https://docs.cilium.io/en/stable/configuration/",
        "https://docs.cilium.io/en/stable/configuration/per-node-config/",
    ),
    reads=("cilium_configs", "cilium_pods"),
    remedy=r.Remedy(restart_agents=True),
)
def restart_pending(facts: Facts) -> Hit | None:
    """CIC009: the agents read the settings at start; a later change is not in effect yet."""
    config = facts.config
    if config is None:
        return None
    starts = [t for p in facts.snapshot.cilium_pods if p.start_time and (t := _parse_time(p.start_time))]
    if not starts:
        return None
    oldest = min(starts)
    evidence = []
    for key in READ_KEYS:
        written = config.key_times.get(key)
        when = _parse_time(written) if written else None
        if when and when > oldest:
            evidence.append(
                Evidence(
                    object=f"ConfigMap {config.namespace}/cilium-config",
                    key=key,
                    value=config.data.get(key),
                    note=(
                        f"a field owned by {owner} changed at {written}; the oldest agent pod started "
                        f"{oldest.isoformat()}"
                        if (owner := config.key_owners.get(key))
                        else f"changed at {written}; the oldest agent pod started {oldest.isoformat()}"
                    ),
                )
            )
    if not evidence:
        return None
    return Hit(
        summary="cilium-config changed after the agents started: restart them to apply",
        detail="The Cilium agents read cilium-config only at start; they still run the old values.",
        evidence=capped(evidence),
    )


HOST_ROUTING_KEYS = (
    "enable-host-legacy-routing",
    "kube-proxy-replacement",
    "enable-bpf-masquerade",
    "enable-ipv4",
    "enable-ipv6",
    "enable-ipv4-masquerade",
    "enable-ipv6-masquerade",
    "enable-ipsec",
)
MASQUERADE_GUARDS = tuple(key for key, _ in r.NO_BPF_MASQUERADE.unsafe_with)
"""The settings that need BPF masquerade: one list, the remedy's (the renderer refuses the same ones)."""


def _bpf_masquerade_remedy(facts: Facts) -> r.Remedy:
    """Never a fix the agent refuses: keep BPF masquerade where a setting requires it.

    Then the remedy is legacy host routing, and its step says what stays unsupported (no target can
    change that: the finding remains, as a warning).
    """
    guards = [
        view.bool(key).evidence(f"on {view.label}")
        for view in facts.views
        for key in MASQUERADE_GUARDS
        if view.overrides(key) and view.bool(key).value is True
    ]
    if guards:
        held = ", ".join(sorted({e.key or "" for e in guards}))
        return r.Remedy(
            cilium=(r.LEGACY_HOST_ROUTING,),
            restart_agents=True,
            steps=(
                f"Keep BPF masquerading ({held} requires it: the agent refuses to start without it) and use "
                "legacy host routing, which keeps probes of ambient pods working (istio/istio#52208).",
            ),
        )
    return r.Remedy(cilium=(r.NO_BPF_MASQUERADE,), restart_agents=True)


@rule(
    "CIC010",
    Severity.ERROR,
    "BPF masquerading with ambient (error with BPF host routing, else a warning)",
    sources=(
        "https://istio.io/latest/docs/ambient/install/platform-prerequisites/#cilium",
        "istio/istio#52208",
        "istio/istio operator/pkg/apis/validation/validation.go (istioctl: enable-bpf-masquerade=true with ambient, 1.24+)",
        "cilium/cilium daemon/cmd/kube_proxy_replacement.go (install-no-conntrack-iptables-rules needs BPF masquerade, "
        "≤ 1.18)",
        "cilium/cilium pkg/kpr/initializer/kube_proxy_replacement.go (install-no-conntrack-iptables-rules needs BPF "
        "masquerade, 1.19+)",
        "cilium/cilium daemon/cmd/daemon.go (BPF ip-masq-agent requires enable-bpf-masquerade)",
    ),
    reads=("cilium_configs", "node_configs", "ztunnels", "cilium_agents"),
    remedy=r.Remedy(cilium=(r.NO_BPF_MASQUERADE,), restart_agents=True),
    also=frozenset({Severity.WARNING}),
)
def bpf_masquerade(facts: Facts) -> Hit | None:
    """CIC010: Istio documents BPF masquerading as unsupported with ambient; probes break through

    the BPF host routing it enables (istio/istio#52208), so legacy host routing lowers it to a warning.
    """
    if not facts.ambient_present:
        return None
    evidence: list[Evidence] = []
    with_bpf_routing = False
    invalid: list[Evidence] = []
    for view in facts.views:
        if not view.overrides("enable-bpf-masquerade", *HOST_ROUTING_KEYS):
            continue
        setting = view.bool("enable-bpf-masquerade")
        if setting.invalid:
            invalid.append(setting.evidence(f"on {view.label}"))
            continue
        if setting.value is not True or not effective.masquerading(view):
            continue  # off, or nothing to masquerade (≤ 1.15 turns it off; 1.16+ refuses it: CIC023)
        routing = effective.host_routing(view, facts.version)
        with_bpf_routing = with_bpf_routing or routing.bpf
        evidence.append(
            setting.evidence(
                f"on {view.label}; host routing "
                + ("BPF: probes of ambient pods fail (CIC011)" if routing.bpf else "legacy")
            )
        )
    remedy = _bpf_masquerade_remedy(facts)
    if evidence:
        severity = Severity.ERROR if with_bpf_routing else Severity.WARNING
        return Hit(
            summary="Cilium BPF masquerading is on with ambient: "
            + ("ambient pod health probes fail" if with_bpf_routing else "unsupported by Istio"),
            detail=(
                "Istio's Cilium prerequisites call BPF masquerading unsupported with ambient. The failure seen "
                "upstream comes from the BPF host routing it enables: replies to the probe address "
                "169.254.7.127 are dropped (istio/istio#52208, cilium/cilium#36022); with legacy host routing "
                "probes work."
            ),
            evidence=capped(evidence),
            severity=severity,
            remedy=remedy,
        )
    if invalid:
        return Hit(
            "cilium-config enable-bpf-masquerade does not parse as a boolean",
            "The agent reads an unparsable boolean as false or refuses to start; the value must be fixed.",
            capped(invalid),
            severity=Severity.WARNING,
            remedy=remedy,
        )
    return None


@rule(
    "CIC011",
    Severity.ERROR,
    "BPF host routing in effect with ambient: replies to the probe SNAT address are dropped",
    sources=(
        "istio/istio#52208",
        "cilium/cilium#36022",
        "cilium/cilium daemon/cmd/kube_proxy_replacement.go (finishKubeProxyReplacementInit: legacy fallbacks, ≤ 1.18)",
        "cilium/cilium pkg/kpr/initializer/kube_proxy_replacement.go (InitKubeProxyReplacementOptions, 1.19+)",
        "cilium/cilium pkg/option/config.go (IptablesMasqueradingEnabled)",
    ),
    reads=("cilium_configs", "node_configs", "ztunnels", "cilium_agents"),
    remedy=r.Remedy(cilium=(r.LEGACY_HOST_ROUTING,), restart_agents=True),
)
def host_routing(facts: Facts) -> Hit | None:
    """CIC011: fires only where the agent really uses BPF host routing: legacy routing not set, kube-proxy

    replacement on, masquerading without iptables, no IPsec (≤ 1.18); kernel ≥ 5.10 cannot be seen.
    """
    if not facts.ambient_present:
        return None
    evidence: list[Evidence] = []
    where: list[str] = []
    kernel = False
    for view in facts.views:
        if not view.overrides(*HOST_ROUTING_KEYS):
            continue
        routing = effective.host_routing(view, facts.version)
        if routing.bpf:
            where.append(view.label)
            kernel = kernel or routing.kernel_dependent
            evidence.extend(
                Evidence(e.object, e.key, e.value, f"{e.note} ({view.label})") for e in routing.evidence
            )
    if not evidence:
        return None
    caveat = (
        f" On Cilium ≤ 1.17 the agent still falls back to legacy routing on kernels older than 5.10: "
        f"confirm with {effective.STATUS_HINT}, line {effective.ROUTING_LINE}."
        if kernel
        else ""
    )
    return Hit(
        summary="Cilium uses BPF host routing: probes of ambient pods time out; set legacy host routing",
        detail=(
            "BPF host routing drops the replies to 169.254.7.127 before iptables reverses Istio's SNAT, so "
            "kubelet probes of ambient pods time out (istio/istio#52208, cilium/cilium#36022)." + caveat
        ),
        evidence=capped(evidence),
    )


@rule(
    "CIC023",
    Severity.WARNING,
    "cilium-config holds settings the running Cilium refuses at start",
    sources=(
        "cilium/cilium daemon/cmd/kube_proxy_replacement.go (Invalid value for --kube-proxy-replacement ≤ 1.17; "
        "install-no-conntrack-iptables-rules requirements ≤ 1.18)",
        "cilium/cilium pkg/kpr/kpr.go (NewKPRConfig: invalid value for kube-proxy-replacement 1.18; a bool flag from 1.19)",
        "cilium/cilium pkg/kpr/initializer/kube_proxy_replacement.go (install-no-conntrack-iptables-rules requirements, "
        "1.19+)",
        "cilium/cilium daemon/cmd/daemon.go (BPF ip-masq-agent / BPF masquerade requirements)",
    ),
    reads=("cilium_configs", "node_configs", "cilium_agents"),
)
def refused_settings(facts: Facts) -> Hit | None:
    """CIC023: the agents run on what they read at start; the next restart with these values fails."""
    evidence = [
        Evidence(e.object, e.key, e.value, f"{e.note} ({view.label})")
        for view in facts.views
        for e in effective.refusals(view, facts.version)
    ]
    if not evidence:
        return None
    version = facts.version_shown or "(version unknown)"
    return Hit(
        summary=f"Cilium {version} refuses settings in cilium-config: the next agent restart fails",
        detail=(
            "The running agents started before these values were written, or on another version. An agent "
            "that restarts with them exits with a configuration error and its node loses pod networking."
        ),
        evidence=capped(evidence),
        fix="Correct the values listed (Helm: the matching chart values) before restarting the agents.",
    )


@rule(
    "CIC012",
    Severity.WARNING,
    "Cilium's own ztunnel (enable-ztunnel) beside Istio ambient",
    sources=(
        "cilium/cilium pkg/ztunnel/config/config.go (enable-ztunnel, from Cilium 1.19)",
        "cilium/cilium install/kubernetes/cilium/templates/cilium-configmap.yaml (encryption.type=ztunnel)",
        "cilium/cilium Documentation/security/network/encryption-ztunnel.rst (beta)",
    ),
    reads=("cilium_configs", "node_configs", "ztunnels"),
    remedy=r.Remedy(cilium=(r.NO_CILIUM_ZTUNNEL,), restart_agents=True),
    also=INVALID_IS_WARNING,
)
def cilium_ztunnel(facts: Facts) -> Hit | None:
    """CIC012: Cilium's own ztunnel (Cilium 1.19+, beta) beside Istio's."""
    if not facts.ambient_present or (facts.version is not None and facts.version[:2] < (1, 19)):
        return None
    return _setting_finding(
        facts,
        key="enable-ztunnel",
        bad=True,
        summary="Cilium's ztunnel encryption runs beside Istio ambient: use only one",
        detail=(
            "Cilium 1.19's ztunnel encryption (beta) runs its own ztunnel with its own enrollment beside Istio's. "
            "Neither project documents the two together; no upstream report shows a failure either, so this is "
            "a warning: run one of them."
        ),
    )
