"""CIC002: whether ambient workloads still accept plaintext (PeerAuthentication).

Precedence as Istio applies it: workload over namespace over mesh-wide; UNSET
inherits from the level above; with nothing set Istio accepts PERMISSIVE.
"""

from __future__ import annotations

from ..report import Evidence, Finding, Severity
from ..snapshot import PeerAuthentication
from .facts import Facts, capped, object_name

ENFORCING = "STRICT"
INHERIT = "UNSET"
VALID_MODES = frozenset({"STRICT", "PERMISSIVE", "DISABLE", "UNSET"})


def accepts_plaintext(mode: str) -> bool:
    """Anything but STRICT lets plaintext in; a mode Istio does not know enforces nothing."""
    return mode != ENFORCING


def _mode_note(mode: str, why: str) -> str:
    return why if mode in VALID_MODES else f"{why}; not a valid mode: Istio does not enforce it"


def _pa_name(pa: PeerAuthentication) -> str:
    return object_name("PeerAuthentication", pa.namespace, pa.name)


def _wide(pas: list[PeerAuthentication], namespace: str | None) -> PeerAuthentication | None:
    """The oldest selector-less PeerAuthentication in a namespace (Istio picks the oldest)."""
    for pa in pas:
        if pa.namespace == namespace and not pa.selector:
            return pa
    return None


def plaintext_accepted(facts: Facts) -> list[Evidence]:
    """Evidence for each ambient namespace or workload that accepts plaintext."""
    pas = list(facts.snapshot.peer_authentications)
    mesh = _wide(pas, facts.root_namespace) if facts.root_namespace else None
    if mesh is not None and mesh.mode != INHERIT:
        mesh_mode, mesh_why = mesh.mode, f"mesh-wide {_pa_name(mesh)}"
    else:
        mesh_mode, mesh_why = "PERMISSIVE", "no mesh-wide PeerAuthentication: Istio's default"
    evidence: list[Evidence] = []
    for ns in facts.ambient_namespaces:
        ns_pa = _wide(pas, ns)
        if ns_pa is not None and ns_pa.mode != INHERIT and ns_pa is not mesh:
            mode, why = ns_pa.mode, _pa_name(ns_pa)
        else:
            mode, why = mesh_mode, mesh_why
        if accepts_plaintext(mode):
            evidence.append(
                Evidence(object=f"Namespace {ns}", key="mtls.mode", value=mode, note=_mode_note(mode, why))
            )
            continue
        for pa in pas:
            if pa.namespace != ns or not pa.selector:
                continue
            loose_ports = sorted(p for p, m in pa.port_modes.items() if m != INHERIT and accepts_plaintext(m))
            if pa.mode != INHERIT and accepts_plaintext(pa.mode):
                evidence.append(
                    Evidence(
                        object=_pa_name(pa),
                        key="mtls.mode",
                        value=pa.mode,
                        note=_mode_note(pa.mode, "workload"),
                    )
                )
            elif loose_ports:
                evidence.append(
                    Evidence(
                        object=_pa_name(pa),
                        key="portLevelMtls",
                        value=", ".join(loose_ports),
                        note="ports accept plaintext",
                    )
                )
    return evidence


def silent_plaintext(facts: Facts, socket_lb_bypassed: bool) -> Finding | None:
    """CIC002: bypassed traffic is accepted in plaintext, so nothing looks wrong."""
    if not socket_lb_bypassed:
        return None
    evidence = plaintext_accepted(facts)
    if not evidence:
        return None
    return Finding(
        id="CIC002",
        severity=Severity.ERROR,
        summary="Ambient traffic silently stays plaintext: mTLS is PERMISSIVE and socket LB bypasses ztunnel",
        detail=(
            "The destination ztunnel still captures the bypassed traffic and applies L4 policy, so the mesh "
            "looks healthy while pod-to-Service traffic is not encrypted."
        ),
        evidence=capped(evidence, "more namespaces or workloads"),
        fix=(
            "Fix CIC001 first. Then enforce STRICT mTLS so any bypass shows as refused connections: "
            "a PeerAuthentication named default in the Istio root namespace with spec.mtls.mode: STRICT."
        ),
    )
