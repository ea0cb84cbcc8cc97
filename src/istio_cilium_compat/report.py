"""Findings, the verdict they add up to, and how a report is written out.

Pure: no I/O, and nothing of Juju (the charm writes its own status line). The same
`Report` feeds the CLI, the charm's status and actions, and the renderer.
"""

from __future__ import annotations

import enum
import json
import re
import shutil
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .remedy import Remedy


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
    runtime: Mapping[str, Any] | None = None
    """What ztunnel's counters said, when a runtime probe ran (`check --runtime`)."""

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
        """The documented JSON/YAML schema; `runtime` only when a probe ran."""
        data: dict[str, Any] = {
            "verdict": self.verdict.value,
            "findings": [f.to_dict() for f in self.ordered],
            "checks": list(self.checks),
            "cilium": dict(self.cilium),
            "istio": dict(self.istio),
            "source": self.source,
        }
        if self.runtime is not None:
            data["runtime"] = dict(self.runtime)
        return data


def to_json(report: Report) -> str:
    """Machine-readable output."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def to_yaml(report: Report) -> str:
    """YAML output; cluster strings go through a real dumper, multi-line text as block scalars."""
    import yaml  # only the YAML output pays for it

    class BlockDumper(yaml.SafeDumper):
        """Multi-line strings (fixes, details) as `|` blocks: readable, and still the same data."""

    def represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)

    BlockDumper.add_representer(str, represent_str)
    return yaml.dump(report.to_dict(), Dumper=BlockDumper, sort_keys=False, allow_unicode=True, width=1000)


def _one_line(text: str) -> str:
    """Cluster-supplied strings must not forge lines or terminal escapes in text output."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


_COMMAND = re.compile(
    r"(?:^|(?<=: )|(?<=; ))(?:sudo|kubectl|helm|cilium|juju|k8s|istioctl|istio-cilium-compat) .*$"
)
_CODE = re.compile(r"`[^`]*`")
_GLUE = "\x00"  # never in text: _one_line spells control characters out


def _glue(match: re.Match[str]) -> str:
    return match.group(0).replace(" ", _GLUE)


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    """Wrap prose to `width`; a command (to the end of the line) or `code` is never split.

    A command broken over two lines would run as two commands when pasted, so it moves to
    a line of its own and may run past the width instead.
    """
    glued = _COMMAND.sub(_glue, _CODE.sub(_glue, _one_line(text)))
    lines = textwrap.wrap(
        glued,
        width=width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(_GLUE, " ") for line in lines] or [first.rstrip()]


_SCRIPT_LINE = re.compile(r"(?:sudo|kubectl|helm|cilium|juju|set|\w+=)[ \"']|\w+=\"")


def _fix_lines(fix: str, width: int, indent: str) -> list[str]:
    """A fix in prose is wrapped; one with commands (the renderer's) is a script, printed as it runs:

    commands, assignments and heredoc bodies stay whole and keep their indentation, and a long
    comment wraps into more comment lines, so the fix still runs when pasted.
    """
    raw = fix.splitlines() or [""]
    first = "  fix:      "
    if not any(_SCRIPT_LINE.match(line) for line in raw):
        out: list[str] = []
        for number, line in enumerate(raw):
            out += _wrap(line, width, first if number == 0 else indent, indent)
        return out
    out = []
    for number, line in enumerate(raw):
        lead = first if number == 0 else indent
        if line.startswith("# "):
            out += _wrap(line[2:], width, lead + "# ", indent + "# ")
        else:
            out.append(lead + _one_line(line))
    return out


def text_width() -> int:
    """The terminal's width; 80 when stdout is not a terminal (or $COLUMNS, as Python reads it)."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def to_text(report: Report, width: int | None = None, hint: str | None = None) -> str:
    """For people: one block per finding, then the verdict, wrapped to `width` (the terminal)."""
    width = width or text_width()
    lines: list[str] = []
    indent = " " * 12
    if report.source:
        lines += _wrap(f"Checked: {report.source}", width, "", "  ")
    cilium_version = report.cilium.get("version")
    if report.cilium.get("namespace"):
        lines += _wrap(
            f"Cilium {cilium_version or '(version unknown)'} in namespace {report.cilium['namespace']}",
            width,
            "",
            "  ",
        )
    if report.istio.get("root_namespace"):
        lines += _wrap(
            f"Istio root namespace {report.istio['root_namespace']}"
            f" ({report.istio.get('root_namespace_source', '')}), "
            f"ambient namespaces: {len(report.istio.get('ambient_namespaces', []))}",
            width,
            "",
            "  ",
        )
    if report.runtime is not None:
        lines.extend(_runtime_lines(report.runtime))
    if lines:
        lines.append("")
    for finding in report.ordered:
        head = f"{finding.severity.value.upper():7} {finding.id}  "
        lines += _wrap(finding.summary, width, head, " " * len(head))
        if finding.detail:
            lines += _wrap(finding.detail, width, "  why:      ", indent)
        for item in finding.evidence:
            lines += _wrap(str(item), width, "  evidence: ", indent)
        for source in finding.sources:
            lines += _wrap(source, width, "  source:   ", indent)
        if finding.fix:
            lines += _fix_lines(finding.fix, width, indent)
        lines.append("")
    counts = {s: len(report.of(s)) for s in Severity}
    lines += _wrap(
        f"Verdict: {report.verdict.value} ({_count(counts[Severity.ERROR], 'error')}, "
        f"{_count(counts[Severity.WARNING], 'warning')}, {counts[Severity.INFO]} info; "
        f"{len(report.checks)} checks)",
        width,
        "",
        "  ",
    )
    if hint:
        lines += _wrap(hint, width, "", "  ")
    return "\n".join(lines) + "\n"


def _runtime_lines(runtime: Mapping[str, Any]) -> list[str]:
    """The runtime section: what was read, and the sums (counters are cumulative)."""
    pods = runtime.get("pods") or []
    read = sum(1 for p in pods if p.get("read"))
    inbound, outbound = runtime.get("inbound") or {}, runtime.get("outbound") or {}
    more = ", more not read (--runtime-max-pods)" if runtime.get("more_pods") else ""
    if runtime.get("list_error"):
        return [f"Runtime (ztunnel's counters): not read: {_one_line(str(runtime['list_error']))}"]
    return [
        "Runtime (ztunnel's counters, cumulative since each ztunnel started):",
        f"  {read} of {len(pods)} ztunnel pods read{more}",
        f"  inbound connections:  {inbound.get('mutual_tls', 0)} mTLS, {inbound.get('plaintext', 0)} plaintext "
        f"({inbound.get('plaintext_from_ambient', 0)} from ambient namespaces)",
        f"  outbound connections: {outbound.get('with_service', 0)} to a Service, "
        f"{outbound.get('without_service', 0)} without one "
        f"({outbound.get('without_service_to_pod', 0)} to a pod IP)",
    ]


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_report(report: Report, output: str, hint: str | None = None) -> str:
    """Dispatch on the `-o` value; `hint` (the next command to run) is shown in text only."""
    if output == "json":
        return to_json(report)
    if output == "yaml":
        return to_yaml(report)
    return to_text(report, hint=hint)
