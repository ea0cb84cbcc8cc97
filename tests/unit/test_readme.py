"""README and CI stay true to the code: the catalogue, the test command."""

from __future__ import annotations

from pathlib import Path

from istio_cilium_compat.rules import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_check_is_in_the_catalogue_table() -> None:
    for check in CATALOGUE:
        assert f"| {check.id} | {check.severity.value} |" in README, check.id


def test_ci_runs_the_readme_test_command() -> None:
    assert "tox             # lint, static types, and the full test suite" in README
    assert "run=(tox)" in (ROOT / ".ci" / "run").read_text()
