"""Declared dependencies match imports: what src/ imports is declared, and what is declared is imported.

Every third-party module imported anywhere in src/ (lazy imports inside functions and
optional ones in `try` included) must come from a distribution declared in pyproject.toml's
`dependencies` (src/charm.py may also use the `charm` extra), and every one of those is
imported. The packed charm installs exactly those (charmcraft's uv plugin with
`uv-extras: [charm]` syncs uv.lock, which tests/unit/test_lock.py keeps in step with
pyproject.toml). A transitive dependency imported directly (httpx2 under lightkube) is
declared too: its major version is then ours to pin, not lightkube's to change.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
OWN = {"istio_cilium_compat", "charm"}
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
CHARMCRAFT = yaml.safe_load((REPO / "charmcraft.yaml").read_text(encoding="utf-8"))


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalise(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip())


def type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports under `if TYPE_CHECKING:` (not needed at run time)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                for sub in ast.walk(child):
                    if isinstance(sub, ast.Import | ast.ImportFrom):
                        lines.add(sub.lineno)
    return lines


def third_party_imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports of `path` that are neither stdlib nor ours."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = type_checking_only(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in OWN}


def distributions(module: str) -> set[str]:
    found = packages_distributions().get(module)
    assert found, f"{module} is imported by src/ but not installed in this environment"
    return {normalise(d) for d in found}


ENGINE = {m for p in (SRC / "istio_cilium_compat").rglob("*.py") for m in third_party_imports(p)}
CHARM = third_party_imports(SRC / "charm.py")
DEPENDENCIES = {requirement_name(r) for r in PROJECT["dependencies"]}
CHARM_EXTRA = {requirement_name(r) for r in PROJECT["optional-dependencies"]["charm"]}
LOCK = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))


def test_the_engine_imports_only_declared_dependencies() -> None:
    undeclared = {m: sorted(distributions(m)) for m in ENGINE if not distributions(m) & DEPENDENCIES}
    assert not undeclared, f"imported by src/istio_cilium_compat, not in pyproject dependencies: {undeclared}"


def test_the_charm_imports_only_declared_dependencies() -> None:
    declared = DEPENDENCIES | CHARM_EXTRA
    undeclared = {m: sorted(distributions(m)) for m in CHARM if not distributions(m) & declared}
    assert not undeclared, f"imported by src/charm.py, not in dependencies or the charm extra: {undeclared}"


def test_every_declared_dependency_is_imported() -> None:
    imported = {d for m in ENGINE for d in distributions(m)}
    assert imported >= DEPENDENCIES, sorted(DEPENDENCIES - imported)
    charm_imported = {d for m in ENGINE | CHARM for d in distributions(m)}
    assert charm_imported >= CHARM_EXTRA, sorted(CHARM_EXTRA - charm_imported)


def test_the_packed_charm_installs_every_import() -> None:
    part = CHARMCRAFT["parts"]["charm"]
    assert part["plugin"] == "uv" and "charm" in part.get("uv-extras", [])
    root = next(p for p in LOCK["package"] if p["name"] == PROJECT["name"])
    locked = {normalise(r["name"]) for r in root["metadata"]["requires-dist"]}
    needed = {d for m in ENGINE | CHARM for d in distributions(m)} & (DEPENDENCIES | CHARM_EXTRA)
    assert needed <= locked, sorted(needed - locked)


def test_the_scan_sees_lazy_and_optional_imports() -> None:
    """The imports made inside functions (yaml-rs, jinja2, the relation library) are found."""
    assert {"lightkube", "httpx2", "yaml_rs", "yaml", "jinja2"} <= ENGINE
    assert {"ops", "charmlibs"} <= CHARM
