"""Checks on Cilium's own settings (cilium-config and CiliumNodeConfig overrides)."""

from __future__ import annotations

from datetime import datetime, timezone

from ..report import Evidence, Finding, Severity
from .facts import ConfigView, Facts, capped, format_version
from .fixes import cilium_setting, node_config_fix, restart_agents

HOSTNS_ONLY = "bpf-lb-sock-hostns-only"
SOCKET_LB_KEYS = ("kube-proxy-replacement", "bpf-lb-sock", "enable-host-reachable-services", HOSTNS_ONLY)

# Every key this catalogue reads: a change to one of them needs an agent restart to count.
READ_KEYS = (
    *SOCKET_LB_KEYS,
    "cni-exclusive",
    "enable-bpf-masquerade",
    "enable-host-legacy-routing",
    "enable-ztunnel",
    "enable-policy",
)


def _with_node_fix(fix: str, facts: Facts, key: str, value: str) -> str:
    node_fix = node_config_fix(facts, key, value)
    return f"{fix}\nCiliumNodeConfig overrides:\n{node_fix}" if node_fix else fix


def socket_lb_bypass(facts: Facts) -> Finding | None:
    """CIC001: socket LB rewrites Service traffic before the source ztunnel sees it."""
    evidence: list[Evidence] = []
    where: list[str] = []
    for view in facts.views:
        if not view.overrides(*SOCKET_LB_KEYS):
            continue
        lb = facts.socket_lb(view)
        hostns = view.bool(HOSTNS_ONLY)
        if lb.on and hostns.value is not True:
            where.append(view.label)
            evidence.extend(lb.evidence)
            evidence.append(hostns.evidence())
    if not evidence:
        return None
    # The action first: `juju status` cuts the line at 120 characters.
    scope = (
        "" if "all nodes" in where else f" ({', '.join(w.removeprefix('nodes selected by ') for w in where)})"
    )
    return Finding(
        id="CIC001",
        severity=Severity.ERROR,
        summary=f"Cilium socket LB bypasses ztunnel: set bpf-lb-sock-hostns-only=true{scope}",
        detail=(
            "Socket LB rewrites pod-to-Service connections to a backend pod inside the socket, so they "
            "never reach the source ztunnel: not encrypted, no AuthorizationPolicy at the source, and "
            "waypoints/HTTP routing for the Service are skipped (istio/istio#49149)."
        ),
        evidence=capped(evidence),
        fix=_with_node_fix(
            cilium_setting(facts, "socketLB.hostNamespaceOnly", HOSTNS_ONLY, "true"),
            facts,
            HOSTNS_ONLY,
            "true",
        ),
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
    rule_id: str,
    severity: Severity,
    key: str,
    bad: bool,
    good: str,
    summary: str,
    detail: str,
    fix: str,
    explicit_only: bool = False,
) -> Finding | None:
    """A boolean setting with a wrong value (globally or per node); an unparsable one is a warning."""
    wrong, invalid = _bool_rule(facts, key=key, bad=bad, explicit_only=explicit_only)
    fix = _with_node_fix(fix, facts, key, good)
    if wrong:
        return Finding(rule_id, severity, summary, detail, capped(wrong), fix)
    if invalid:
        return Finding(
            rule_id,
            Severity.WARNING,
            f"cilium-config {key} does not parse as a boolean",
            "The agent reads an unparsable boolean as false or refuses to start; the value must be fixed.",
            capped(invalid),
            fix,
        )
    return None


def cni_exclusive(facts: Facts) -> Finding | None:
    """CIC003: exclusive Cilium moves Istio CNI's configuration aside."""
    if facts.snapshot.canonical_k8s:
        fix = (
            'Canonical Kubernetes: remove the annotation (any value, even "false", turns exclusivity on): '
            'k8s set annotations="k8sd/v1alpha1/cilium/cni-exclusive=-" ; charm: '
            'juju config k8s cluster-annotations="k8sd/v1alpha1/cilium/cni-exclusive=-"'
        )
    else:
        fix = cilium_setting(facts, "cni.exclusive", "cni-exclusive", "false")
    return _setting_finding(
        facts,
        rule_id="CIC003",
        severity=Severity.ERROR,
        key="cni-exclusive",
        bad=True,
        good="false",
        summary="Cilium is the exclusive CNI and removes Istio CNI's config: set cni-exclusive=false",
        detail=(
            "With cni-exclusive, the agent renames other CNI configurations in the node's CNI "
            "directory to *.cilium_bak, Istio CNI's included: ambient pods are not captured."
        ),
        fix=fix,
    )


def missing_cilium_config(facts: Facts) -> Finding | None:
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
    return Finding(
        id="CIC007",
        severity=Severity.WARNING,
        summary="Cilium configuration not found: cannot check Cilium settings",
        detail=(
            "No cilium-config ConfigMap was visible. Either Cilium is not the CNI, it lives where this "
            "reader may not look, or reading ConfigMaps is not permitted."
        ),
        evidence=tuple(evidence),
        fix=(
            "If Cilium is the CNI: check that cilium-config exists (kubectl get cm -A "
            "--field-selector metadata.name=cilium-config), set the cilium-namespace option / "
            "--cilium-namespace, and grant read access (charm: juju trust istio-cilium-compat-k8s "
            "--scope=cluster)."
        ),
    )


def several_configs(facts: Facts) -> Finding | None:
    """CIC016: two Cilium configurations; say which one was checked."""
    configs = facts.snapshot.cilium_configs
    if len(configs) < 2:
        return None
    used = facts.snapshot.cilium_namespace
    return Finding(
        id="CIC016",
        severity=Severity.WARNING,
        summary=f"Several cilium-config ConfigMaps found; checked the one in {used}",
        detail="Only one Cilium installation should configure the cluster's CNI; a leftover copy misleads.",
        evidence=tuple(
            Evidence(
                object=f"ConfigMap {c.namespace}/cilium-config",
                note="checked" if c.namespace == used else "not checked",
            )
            for c in configs
        ),
        fix="Remove the stale copy, or choose the right one with the cilium-namespace option / "
        "--cilium-namespace.",
    )


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def restart_pending(facts: Facts) -> Finding | None:
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
                    note=f"changed {written}, oldest agent pod started {oldest.isoformat()}",
                )
            )
    if not evidence:
        return None
    return Finding(
        id="CIC009",
        severity=Severity.WARNING,
        summary="cilium-config changed after the agents started: restart them to apply",
        detail="The Cilium agents read cilium-config only at start; they still run the old values.",
        evidence=capped(evidence),
        fix=restart_agents(facts),
    )


def bpf_masquerade(facts: Facts) -> Finding | None:
    """CIC010: Istio does not support BPF masquerading with ambient."""
    if not facts.ambient_present:
        return None
    return _setting_finding(
        facts,
        rule_id="CIC010",
        severity=Severity.ERROR,
        key="enable-bpf-masquerade",
        bad=True,
        good="false",
        summary="Cilium BPF masquerading is on: ambient pod health checks fail",
        detail="Istio does not support BPF masquerading with ambient: health probes to pods stop working.",
        fix=cilium_setting(facts, "bpf.masquerade", "enable-bpf-masquerade", "false"),
    )


def host_routing(facts: Facts) -> Finding | None:
    """CIC011: BPF host routing drops replies to the probe address before SNAT is undone."""
    if not facts.ambient_present:
        return None
    return _setting_finding(
        facts,
        rule_id="CIC011",
        severity=Severity.ERROR,
        key="enable-host-legacy-routing",
        bad=False,
        good="true",
        explicit_only=True,
        summary="Cilium BPF host routing is on: ambient probes time out, set legacy host routing",
        detail=(
            "BPF host routing drops replies to 169.254.7.127 before iptables reverses Istio's SNAT, so "
            "kubelet probes of ambient pods time out (istio/istio#52208, cilium/cilium#36022)."
        ),
        fix=cilium_setting(facts, "bpf.hostLegacyRouting", "enable-host-legacy-routing", "true"),
    )


def cilium_ztunnel(facts: Facts) -> Finding | None:
    """CIC012: Cilium's own ztunnel beside Istio's."""
    if not facts.ambient_present:
        return None
    return _setting_finding(
        facts,
        rule_id="CIC012",
        severity=Severity.WARNING,
        key="enable-ztunnel",
        bad=True,
        good="false",
        summary="Cilium's ztunnel encryption runs beside Istio ambient: use only one",
        detail="Two owners of the same traffic redirection (Cilium's ztunnel and Istio's) conflict.",
        fix=(
            "Use one ztunnel: for Istio ambient, turn Cilium's off (Helm: encryption.enabled=false where "
            "encryption.type=ztunnel; cilium CLI: cilium config set enable-ztunnel false), then "
            f"{restart_agents(facts)}"
        ),
    )


def socket_lb_context(facts: Facts) -> Finding | None:
    """CIC000-style context: say when socket LB is off so CIC001 does not apply."""
    if not facts.views:
        return None
    global_view: ConfigView = facts.views[0]
    if facts.socket_lb(global_view).on:
        return None
    if any(facts.socket_lb(v).on for v in facts.views[1:]):
        return None
    version = format_version(facts.version) or "(version unknown)"
    return Finding(
        id="CIC001",
        severity=Severity.INFO,
        summary=f"Cilium {version}: socket LB is off, Service traffic goes through ztunnel",
        detail="Neither kube-proxy replacement nor bpf-lb-sock enables socket LB; hostns-only does not matter.",
        evidence=facts.socket_lb(global_view).evidence,
        fix="Nothing to do. If you turn on kube-proxy replacement later, also set "
        "bpf-lb-sock-hostns-only=true.",
    )
