"""The registry is the catalogue: every rule is complete, and the tests exercise each one both ways."""

from __future__ import annotations

from dataclasses import replace

import pytest

from istio_cilium_compat.assemble import build_snapshot
from istio_cilium_compat.report import Finding, Severity
from istio_cilium_compat.rules import RETIRED, evaluate, registered
from istio_cilium_compat.rules.facts import Facts
from istio_cilium_compat.rules.registry import Hit, Rule, rule
from istio_cilium_compat.snapshot import ReadProblem, Snapshot
from tests import corpus
from tests.unit import test_rules, test_runtime, test_waypoints

SNAPSHOT_FIELDS = frozenset(Snapshot.__dataclass_fields__) | {"cilium_config", "istio_root_namespace"}


def _table() -> list[Snapshot]:
    snapshots = [build_snapshot(objects) for _, objects, _, _ in test_rules.CASES]
    snapshots += [build_snapshot(case.objects) for case in corpus.CASES]
    snapshots.append(test_waypoints.cluster())
    snapshots += test_runtime.CASES
    base = build_snapshot(test_rules.healthy())
    for kind in ("forbidden", "error"):
        problem = ReadProblem(resource="pods", kind=kind, message="x")  # type: ignore[arg-type]
        snapshots.append(replace(base, problems=(problem,)))
    return snapshots


FINDINGS: list[tuple[Finding, ...]] = [evaluate(s).findings for s in _table()]


@pytest.mark.parametrize("check", registered(), ids=lambda r: r.id)
def test_rule_is_complete(check: Rule) -> None:
    assert check.id.startswith("CIC") and len(check.id) == 6
    assert check.title and check.sources and check.reads
    assert set(check.reads) <= SNAPSHOT_FIELDS, set(check.reads) - SNAPSHOT_FIELDS
    assert check.evaluate.__doc__, "a rule says why in its docstring"


@pytest.mark.parametrize("check", registered(), ids=lambda r: r.id)
def test_rule_has_a_positive_and_a_negative_case(check: Rule) -> None:
    hits = [any(f.id == check.id for f in findings) for findings in FINDINGS]
    assert any(hits), f"no test case makes {check.id} fire"
    assert not all(hits), f"no test case keeps {check.id} silent"


def test_finding_severity_and_sources_come_from_the_registry() -> None:
    rules = {r.id: r for r in registered()}
    for findings in FINDINGS:
        for finding in findings:
            assert finding.severity in rules[finding.id].severities
            assert finding.sources == rules[finding.id].sources
            assert finding.unknown is rules[finding.id].unknown


def test_retired_ids_are_never_reused() -> None:
    assert "CIC002" in RETIRED
    with pytest.raises(ValueError, match="already registered or retired"):
        rule("CIC002", Severity.ERROR, "x", sources=("s",), reads=("problems",))(lambda _: None)
    with pytest.raises(ValueError, match="names no sources"):
        rule("CIC999", Severity.ERROR, "x", sources=(), reads=("problems",))(lambda _: None)


def test_undeclared_severity_is_refused() -> None:
    check = Rule(
        "CIC998",
        Severity.ERROR,
        "x",
        ("s",),
        ("problems",),
        lambda _: Hit("s", "d", (), severity=Severity.INFO),
    )
    with pytest.raises(ValueError, match="not declared"):
        check.run(Facts(Snapshot()))
