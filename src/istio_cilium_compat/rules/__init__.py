"""The rule catalogue: registered rule objects, pure functions from a `Snapshot` to findings.

Importing this package registers every rule (one module per area); `registered()` is
the one list the README, the CLI's `checks` command, the charm and the tests read.
"""

from __future__ import annotations

from ..report import Finding, Report
from ..snapshot import Snapshot
from . import access, cilium, effective, istio, policies, runtime, waypoints
from .facts import Facts
from .registry import RETIRED, RULES, Hit, Rule, catalogue_markdown, registered

_AREAS = (access, cilium, effective, istio, policies, runtime, waypoints)  # imported for their registrations


def evaluate(snapshot: Snapshot) -> Report:
    """Run every registered rule once and gather the report."""
    facts = Facts(snapshot)
    # Rules on ztunnel's counters run (and count as checks) only when a runtime probe ran.
    rules = tuple(r for r in registered() if snapshot.runtime is not None or "runtime" not in r.reads)
    findings: list[Finding] = []
    for check in rules:
        finding = check.run(facts)
        if finding is not None:
            findings.append(finding)
    return Report(
        findings=tuple(findings),
        checks=tuple(c.id for c in rules),
        cilium=_cilium_context(facts),
        istio=_istio_context(facts),
        source=snapshot.source,
        runtime=runtime.runtime_context(facts),
    )


def _cilium_context(facts: Facts) -> dict[str, object]:
    if facts.config is None:
        return {"found": False}
    watched = (*cilium.READ_KEYS, "cni-chaining-mode")
    return {
        "found": True,
        "namespace": facts.config.namespace,
        "version": facts.version_shown,
        "managed_by": facts.managed_by,
        "helm_release": facts.helm_release[0] if facts.managed_by != "unknown" else None,
        "socket_lb": effective.socket_lb(facts.views[0], facts.version).on,
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


__all__ = ["RETIRED", "RULES", "Hit", "Rule", "catalogue_markdown", "evaluate", "registered"]
