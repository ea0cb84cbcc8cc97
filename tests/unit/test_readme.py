"""README and CI stay true to the code: the catalogue, the test command."""

from __future__ import annotations

import os
from pathlib import Path

from istio_cilium_compat.rules import catalogue_markdown, registered

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


BEGIN = "<!-- catalogue: generated from the rule registry; UPDATE_README=1 pytest tests/unit/test_readme.py rewrites it -->\n"
END = "<!-- end of catalogue -->"


def test_catalogue_table_is_the_registry() -> None:
    start, end = README.index(BEGIN) + len(BEGIN), README.index(END)
    if os.environ.get("UPDATE_README") == "1":
        (ROOT / "README.md").write_text(README[:start] + catalogue_markdown() + README[end:])
        return
    assert README[start:end] == catalogue_markdown()
    for check in registered():
        assert f"| {check.id} | " in README, check.id


def test_ci_runs_the_readme_test_command() -> None:
    assert "tox             # lint, static types, and the full test suite" in README
    assert "run=(tox)" in (ROOT / ".ci" / "run").read_text()
