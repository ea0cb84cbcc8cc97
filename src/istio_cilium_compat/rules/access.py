"""CIC014/CIC015: what could not be read, so nobody mistakes silence for safety."""

from __future__ import annotations

from ..report import Evidence, Finding, Severity
from .facts import Facts, capped

TRUST = "juju trust istio-cilium-compat-k8s --scope=cluster"


def forbidden(facts: Facts) -> Finding | None:
    """CIC014: a 403; the rest of the check still ran."""
    problems = [p for p in facts.snapshot.problems if p.kind == "forbidden"]
    if not problems:
        return None
    resources = sorted({p.resource for p in problems})
    return Finding(
        id="CIC014",
        severity=Severity.WARNING,
        summary=f"Not permitted to read {', '.join(resources)}: grant read access",
        detail="Checks that need these resources could not see them; the verdict cannot be 'compatible'.",
        evidence=capped(
            [
                Evidence(object=p.resource + (f" in {p.namespace}" if p.namespace else ""), note=p.message)
                for p in problems
            ]
        ),
        fix=(
            f"Charm: {TRUST}. CLI: a ClusterRole with get/list on "
            + ", ".join(resources)
            + " (see README, RBAC)."
        ),
    )


def unreadable(facts: Facts) -> Finding | None:
    """CIC015: errors other than permission (timeouts, 5xx, undecodable objects)."""
    problems = [p for p in facts.snapshot.problems if p.kind != "forbidden"]
    if not problems:
        return None
    unreachable = any(p.kind == "unreachable" for p in problems)
    return Finding(
        id="CIC015",
        severity=Severity.WARNING,
        summary=("Kubernetes API unreachable: " if unreachable else "Could not read ")
        + ", ".join(sorted({p.resource for p in problems})),
        detail="The check is incomplete; the verdict is 'unknown' until these can be read.",
        evidence=capped(
            [
                Evidence(
                    object=p.resource + (f" in {p.namespace}" if p.namespace else ""),
                    note=f"{p.kind}: {p.message}",
                )
                for p in problems
            ]
        ),
        fix="Check the API server and network; the charm retries at the next event.",
    )
