"""The rule registry: every check is one `Rule` object, registered once.

The catalogue (`istio-cilium-compat checks`), the README table, the severity a
finding carries and its sources all come from here, so nothing is kept in sync by
hand. Ids are stable: a rule whose meaning changes gets a new id, and the old one
is listed in `RETIRED`, never reused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..remedy import NONE, Remedy
from ..report import Evidence, Finding, Severity
from .facts import Facts


@dataclass(frozen=True)
class Hit:
    """What a rule saw: everything of a finding but what the registry owns (id, sources)."""

    summary: str
    detail: str
    evidence: tuple[Evidence, ...]
    severity: Severity | None = None
    """None: the rule's severity; otherwise one of the rule's declared `also` severities."""
    remedy: Remedy | None = None
    """None: the rule's declared remedy; rules whose change depends on the cluster give their own."""
    fix: str = ""
    """Prose for what no remedy expresses (read-only advice, an order of steps)."""


Evaluate = Callable[[Facts], "Hit | None"]


@dataclass(frozen=True)
class Rule:
    """One check: identity, what it rests on, what it reads, how it decides and what it asks to change."""

    id: str
    severity: Severity
    title: str
    sources: tuple[str, ...]
    """Upstream files, issues and docs that establish the rule (`owner/repo path`, `owner/repo#N`, URLs)."""
    reads: tuple[str, ...]
    """`Snapshot` fields the rule looks at."""
    evaluate: Evaluate
    remedy: Remedy = NONE
    also: frozenset[Severity] = field(default_factory=frozenset)
    """Other severities a finding of this rule may carry (e.g. an unparsable value is a warning)."""
    unknown: bool = False
    """A finding of this rule means part of the cluster was not seen: the verdict cannot be compatible."""

    @property
    def severities(self) -> frozenset[Severity]:
        """Every severity a finding of this rule can carry."""
        return frozenset({self.severity, *self.also})

    def run(self, facts: Facts) -> Finding | None:
        """Evaluate on `facts`; the registry, not the rule, stamps id, severity and sources."""
        hit = self.evaluate(facts)
        if hit is None:
            return None
        severity = hit.severity or self.severity
        if severity not in self.severities:
            raise ValueError(f"{self.id} produced severity {severity.value}, not declared by the rule")
        return Finding(
            id=self.id,
            severity=severity,
            summary=hit.summary,
            detail=hit.detail,
            evidence=hit.evidence,
            fix=hit.fix,
            sources=self.sources,
            remedy=hit.remedy if hit.remedy is not None else self.remedy,
            unknown=self.unknown,
        )


RULES: dict[str, Rule] = {}
RETIRED: dict[str, str] = {
    "CIC002": (
        "PERMISSIVE mTLS with socket LB: 'silent plaintext'. Retired: with in-pod redirection "
        "(Istio >= 1.21) ztunnel still sends socket-LB traffic as HBONE mTLS; replaced by CIC022."
    ),
}


def rule(
    id: str,
    severity: Severity,
    title: str,
    *,
    sources: tuple[str, ...],
    reads: tuple[str, ...],
    remedy: Remedy = NONE,
    also: frozenset[Severity] = frozenset(),
    unknown: bool = False,
) -> Callable[[Evaluate], Evaluate]:
    """Register the decorated function as the `evaluate` of a new rule."""

    def register(evaluate: Evaluate) -> Evaluate:
        if id in RULES or id in RETIRED:
            raise ValueError(f"rule id {id} is already registered or retired")
        if not sources:
            raise ValueError(f"rule {id} names no sources")
        RULES[id] = Rule(id, severity, title, sources, reads, evaluate, remedy, also, unknown)
        return evaluate

    return register


def registered() -> tuple[Rule, ...]:
    """Every active rule, in id order (the order checks run and are listed)."""
    return tuple(RULES[k] for k in sorted(RULES))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _source_link(source: str) -> str:
    """`owner/repo#N` and URLs as links; file references as code."""
    if source.startswith("https://"):
        return f"[{source.removeprefix('https://')}]({source})"
    repo, sep, number = source.partition("#")
    if sep and number.isdigit() and "/" in repo and " " not in repo:
        return f"[{source}](https://github.com/{repo}/issues/{number})"
    return f"`{source}`"


def catalogue_markdown() -> str:
    """The README's catalogue table, generated from the registry (tests keep README equal to it)."""
    lines = ["| id | severity | check | sources |", "|---|---|---|---|"]
    for item in registered():
        severities = "/".join(s.value for s in sorted(item.severities, key=lambda s: s.rank))
        sources = "<br>".join(_cell(_source_link(s)) for s in item.sources)
        lines.append(f"| {item.id} | {severities} | {_cell(item.title)} | {sources} |")
    for rule_id, why in sorted(RETIRED.items()):
        lines.append(f"| {rule_id} | retired | {_cell(why)} | |")
    return "\n".join(lines) + "\n"
