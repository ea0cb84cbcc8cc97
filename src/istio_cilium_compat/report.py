"""Findings, the verdict they add up to, and how a report is written out.

Pure: no I/O. The same `Report` feeds the CLI, the charm's status and actions,
and the renderer.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .remedy import Remedy

STATUS_MAX = 120


class Severity(enum.Enum):
    """How bad a finding is; the order decides which one the status line shows."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for the most severe."""
        return _RANK[self]


_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


class Verdict(str, enum.Enum):
    """What the whole report says."""

    COMPATIBLE = "compatible"
    INCOMPATIBLE = "incompatible"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Evidence:
    """What was seen: an object, and a key with its value (None when absent)."""

    object: str
    key: str | None = None
    value: str | None = None
    note: str = ""

    def __str__(self) -> str:
        parts = []
        if self.key is not None:
            shown = "(absent)" if self.value is None else json.dumps(self.value, ensure_ascii=False)
            parts.append(f"{self.key} = {shown}")
        parts.append(f"in {self.object}" if parts else self.object)
        text = " ".join(parts)
        return f"{text} ({self.note})" if self.note else text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"object": self.object, "key": self.key, "value": self.value, "note": self.note}


@dataclass(frozen=True)
class Finding:
    """One check's result: stable id, severity, one-line summary, evidence, fix and sources.

    Built by the rule registry, which owns id, severity and sources; `remedy` is the
    structured change the renderer spells as commands.
    """

    id: str
    severity: Severity
    summary: str
    detail: str
    evidence: tuple[Evidence, ...]
    fix: str
    sources: tuple[str, ...] = ()
    remedy: Remedy | None = field(default=None, compare=False)
    unknown: bool = False
    """Part of the cluster was not seen: the verdict cannot be 'compatible'."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "severity": self.severity.value,
            "summary": self.summary,
            "detail": self.detail,
            "evidence": [e.to_dict() for e in self.evidence],
            "fix": self.fix,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class Report:
    """The findings of one check run, with context for people and machines."""

    findings: tuple[Finding, ...]
    checks: tuple[str, ...]
    cilium: Mapping[str, Any] = field(default_factory=dict)
    istio: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def ordered(self) -> list[Finding]:
        """Most severe first, then by id."""
        return sorted(self.findings, key=lambda f: (f.severity.rank, f.id))

    @property
    def verdict(self) -> Verdict:
        """Errors make it incompatible; not seeing everything makes it unknown."""
        if any(f.severity is Severity.ERROR for f in self.findings):
            return Verdict.INCOMPATIBLE
        if any(f.unknown for f in self.findings):
            return Verdict.UNKNOWN
        return Verdict.COMPATIBLE

    def of(self, severity: Severity) -> list[Finding]:
        """Findings of one severity, ordered."""
        return [f for f in self.ordered if f.severity is severity]

    @property
    def ids(self) -> list[str]:
        """Finding ids, ordered."""
        return [f.id for f in self.ordered]

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON/YAML schema."""
        return {
            "verdict": self.verdict.value,
            "findings": [f.to_dict() for f in self.ordered],
            "checks": list(self.checks),
            "cilium": dict(self.cilium),
            "istio": dict(self.istio),
            "source": self.source,
        }


def to_json(report: Report) -> str:
    """Machine-readable output."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def to_yaml(report: Report) -> str:
    """YAML output; cluster strings are emitted through a real dumper, never pasted."""
    import yaml  # only the YAML output pays for it

    return yaml.safe_dump(report.to_dict(), sort_keys=False, allow_unicode=True, width=1000)


def _one_line(text: str) -> str:
    """Cluster-supplied strings must not forge lines or terminal escapes in text output."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def to_text(report: Report) -> str:
    """For people: one block per finding, then the verdict."""
    lines: list[str] = []
    if report.source:
        lines.append(f"Checked: {_one_line(report.source)}")
    cilium_version = report.cilium.get("version")
    if report.cilium.get("namespace"):
        lines.append(
            f"Cilium {cilium_version or '(version unknown)'} in namespace "
            f"{_one_line(str(report.cilium['namespace']))}"
        )
    if report.istio.get("root_namespace"):
        lines.append(
            f"Istio root namespace {_one_line(str(report.istio['root_namespace']))}"
            f" ({report.istio.get('root_namespace_source', '')}), "
            f"ambient namespaces: {len(report.istio.get('ambient_namespaces', []))}"
        )
    if lines:
        lines.append("")
    for finding in report.ordered:
        lines.append(f"{finding.severity.value.upper():7} {finding.id}  {_one_line(finding.summary)}")
        if finding.detail:
            lines.append(f"  why:      {_one_line(finding.detail)}")
        for item in finding.evidence:
            lines.append(f"  evidence: {_one_line(str(item))}")
        for source in finding.sources:
            lines.append(f"  source:   {_one_line(source)}")
        if finding.fix:
            fix_lines = finding.fix.splitlines() or [""]
            lines.append(f"  fix:      {_one_line(fix_lines[0])}")
            lines.extend(f"            {_one_line(extra)}" for extra in fix_lines[1:])
        lines.append("")
    counts = {s: len(report.of(s)) for s in Severity}
    lines.append(
        f"Verdict: {report.verdict.value} ({_count(counts[Severity.ERROR], 'error')}, "
        f"{_count(counts[Severity.WARNING], 'warning')}, {counts[Severity.INFO]} info; "
        f"{len(report.checks)} checks)"
    )
    return "\n".join(lines) + "\n"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _fit(text: str, limit: int = STATUS_MAX) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def status_line(report: Report, action: str = "check-compatibility") -> str:
    """One line for `juju status`: the worst finding, how many more, and what to run."""
    problems: Sequence[Finding] = [f for f in report.ordered if f.severity is not Severity.INFO]
    if not problems:
        version = report.cilium.get("version")
        subject = f"Cilium {version}" if version else "Cilium"
        if any(f.id == "CIC008" for f in report.findings):  # no ztunnel: say it was a pre-flight
            return _fit(
                f"{subject}: ready for Istio ambient, ztunnel not found ({len(report.checks)} checks)"
            )
        return _fit(f"{subject}: compatible with Istio ambient ({len(report.checks)} checks)")
    worst = problems[0]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    suffix = f"{more}; run {action}"
    head = f"{worst.id}: {worst.summary}"
    room = STATUS_MAX - len(suffix)
    return _fit(head, room) + suffix


def format_report(report: Report, output: str) -> str:
    """Dispatch on the `-o` value."""
    if output == "json":
        return to_json(report)
    if output == "yaml":
        return to_yaml(report)
    return to_text(report)
