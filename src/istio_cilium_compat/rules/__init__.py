"""The rule catalogue: pure functions from a `Snapshot` to findings.

Ids are stable (`CIC0NN`); the catalogue is the one list the README, the CLI's
`checks` command and the charm read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..report import Finding, Report, Severity
from ..snapshot import Snapshot
from . import access, cilium, istio, mtls, policies
from .facts import Facts, format_version


@dataclass(frozen=True)
class Check:
    """One catalogue entry."""

    id: str
    severity: Severity
    title: str


CATALOGUE: tuple[Check, ...] = (
    Check(
        "CIC001", Severity.ERROR, "Socket LB in effect without bpf-lb-sock-hostns-only (globally or per node)"
    ),
    Check("CIC002", Severity.ERROR, "CIC001 and ambient workloads accept PERMISSIVE mTLS: silent plaintext"),
    Check("CIC003", Severity.ERROR, "cni-exclusive: Cilium removes Istio CNI's configuration"),
    Check(
        "CIC004", Severity.ERROR, "istio-cni-node CNI directories differ from Cilium's (platform mismatch)"
    ),
    Check(
        "CIC005", Severity.WARNING, "Ingress default-deny on ambient pods without a 169.254.7.127 allowance"
    ),
    Check("CIC006", Severity.ERROR, "Cilium L7 (http/kafka) policy selects ambient pods"),
    Check("CIC007", Severity.WARNING, "No cilium-config found (verdict unknown)"),
    Check("CIC008", Severity.INFO, "No ztunnel found: Cilium checked as a pre-flight"),
    Check("CIC009", Severity.WARNING, "cilium-config changed after the agents started: restart pending"),
    Check("CIC010", Severity.ERROR, "BPF masquerading with ambient"),
    Check("CIC011", Severity.ERROR, "BPF host routing (enable-host-legacy-routing=false) with ambient"),
    Check("CIC012", Severity.WARNING, "Cilium's own ztunnel (enable-ztunnel) beside Istio ambient"),
    Check("CIC013", Severity.WARNING, "Port-limited ingress to ambient pods without 15008/TCP (HBONE)"),
    Check("CIC014", Severity.WARNING, "A resource could not be read: permission denied (verdict unknown)"),
    Check(
        "CIC015", Severity.WARNING, "A resource could not be read: API error or unreachable (verdict unknown)"
    ),
    Check("CIC016", Severity.WARNING, "Several cilium-config ConfigMaps: says which one was checked"),
    Check("CIC017", Severity.WARNING, "Namespace istio.io/dataplane-mode label with an unknown value"),
    Check(
        "CIC018",
        Severity.ERROR,
        "Probe-allowance policy without enableDefaultDeny.ingress=false isolates pods",
    ),
    Check("CIC019", Severity.WARNING, "ztunnel or istio-cni-node not ready on every node"),
    Check(
        "CIC020", Severity.WARNING, "istio-cni-node on the host network without ClusterFirstWithHostNet (KPR)"
    ),
    Check("CIC021", Severity.ERROR, "Istio older than 1.21: ambient does not support Cilium"),
)

_SIMPLE: tuple[Callable[[Facts], Finding | None], ...] = (
    cilium.cni_exclusive,
    istio.cni_dirs_mismatch,
    policies.probes_blocked,
    policies.l7_policies,
    cilium.missing_cilium_config,
    istio.ambient_missing,
    cilium.restart_pending,
    cilium.bpf_masquerade,
    cilium.host_routing,
    cilium.cilium_ztunnel,
    policies.hbone_port_blocked,
    access.forbidden,
    access.unreadable,
    cilium.several_configs,
    istio.odd_enrollment,
    policies.probe_policy_isolates,
    istio.not_ready,
    istio.cni_dns_policy,
    istio.istio_too_old,
)


def evaluate(snapshot: Snapshot) -> Report:
    """Run every check once and gather the report."""
    facts = Facts(snapshot)
    findings: list[Finding] = []
    bypass = cilium.socket_lb_bypass(facts)
    if bypass is not None:
        findings.append(bypass)
    else:
        context = cilium.socket_lb_context(facts)
        if context is not None:
            findings.append(context)
    plaintext = mtls.silent_plaintext(facts, socket_lb_bypassed=bypass is not None)
    if plaintext is not None:
        findings.append(plaintext)
    for rule in _SIMPLE:
        finding = rule(facts)
        if finding is not None:
            findings.append(finding)
    return Report(
        findings=tuple(findings),
        checks=tuple(c.id for c in CATALOGUE),
        cilium=_cilium_context(facts),
        istio=_istio_context(facts),
        source=snapshot.source,
    )


def _cilium_context(facts: Facts) -> dict[str, object]:
    if facts.config is None:
        return {"found": False}
    watched = (*cilium.READ_KEYS, "cni-chaining-mode")
    return {
        "found": True,
        "namespace": facts.config.namespace,
        "version": format_version(facts.version),
        "managed_by": facts.managed_by,
        "helm_release": facts.helm_release[0] if facts.managed_by != "unknown" else None,
        "socket_lb": facts.socket_lb(facts.views[0]).on,
        "settings": {k: facts.config.data[k] for k in watched if k in facts.config.data},
        "node_configs": [f"{n.namespace}/{n.name}" for n in facts.snapshot.node_configs],
    }


def _istio_context(facts: Facts) -> dict[str, object]:
    ambient = facts.ambient_namespaces
    return {
        "root_namespace": facts.root_namespace,
        "root_namespace_source": facts.snapshot.istio_root_namespace_source,
        "ambient": facts.ambient_present,
        "ambient_namespaces": list(ambient[:50]),
        "ambient_namespace_count": len(ambient),
    }


__all__ = ["CATALOGUE", "Check", "evaluate"]
