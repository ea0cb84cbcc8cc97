"""uv.lock pins the charm's dependencies, matches pyproject.toml, and packs without a compiler.

charmcraft's uv plugin runs `uv sync --frozen` (charmcraft.yaml): it installs exactly what
uv.lock says and fails when the lock is missing, so a stale lock would either break the
pack or ship other versions than pyproject.toml asks for. After editing dependencies in
pyproject.toml, run `uv lock` (the same uv as tests/pack/requirements.txt pins).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

tomllib = pytest.importorskip("tomllib")

REPO = Path(__file__).resolve().parents[2]
LOCK: dict[str, Any] = tomllib.loads((REPO / "uv.lock").read_text())
PROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _uv() -> str:
    found = shutil.which("uv")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("uv is not installed in this environment (tox.ini's unit deps pin it)")
        pytest.skip("uv is not installed (tox -e unit installs it)")
    return found


def test_lock_is_up_to_date_with_pyproject() -> None:
    """`uv lock --check`: what `uv lock` would write is what is committed (no network needed)."""
    proc = subprocess.run(
        [_uv(), "lock", "--check", "--offline", "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "UV_NO_PROGRESS": "1"},
    )
    assert proc.returncode == 0, proc.stderr


def _normalise(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"\s*([A-Za-z0-9._-]+)\s*(.*)", requirement).groups()  # type: ignore[union-attr]
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def test_lock_records_pyproject_requirements() -> None:
    """The root entry lists pyproject's dependencies and the `charm` extra, with their ranges."""
    root = next(p for p in LOCK["package"] if p["name"] == PROJECT["name"])
    recorded = {
        (r["name"], r.get("specifier", "").replace(" ", ""), r.get("marker", ""))
        for r in root["metadata"]["requires-dist"]
    }
    wanted = {(*_normalise(r), "") for r in PROJECT["dependencies"]}
    wanted |= {(*_normalise(r), "extra == 'charm'") for r in PROJECT["optional-dependencies"]["charm"]}
    assert recorded == wanted


def _wheels(package: dict[str, Any]) -> list[str]:
    return [w["url"].rsplit("/", 1)[-1] for w in package.get("wheels", [])]


def test_every_locked_package_installs_from_a_wheel_on_the_unit() -> None:
    """Ubuntu 24.04 amd64, CPython 3.12: pure wheels or cp312/abi3 manylinux x86_64 ones.

    An sdist-only package would be built at pack time (pydantic-core, msgspec, yaml-rs
    need a Rust toolchain and crates from outside PyPI).
    """
    missing = []
    for package in LOCK["package"]:
        if package["name"] == PROJECT["name"]:
            continue
        wheels = _wheels(package)
        pure = any(w.endswith("-none-any.whl") for w in wheels)
        native = any(
            ("-cp312-cp312-" in w or re.search(r"-cp3(?:[0-9]|1[0-2])-abi3-", w))
            and "manylinux" in w
            and "x86_64" in w
            for w in wheels
        )
        if not (pure or native):
            missing.append(f"{package['name']} {package['version']}")
    assert missing == []


def test_every_locked_package_is_hash_pinned() -> None:
    for package in LOCK["package"]:
        if package["name"] == PROJECT["name"]:
            continue
        assert package["source"] == {"registry": "https://pypi.org/simple"}, package["name"]
        assert all(w["hash"].startswith("sha256:") for w in package["wheels"]), package["name"]


def test_one_uv_version_for_lock_checks_and_packing() -> None:
    pinned = re.findall(r"^uv==(\S+)", (REPO / "tests/pack/requirements.txt").read_text(), re.M)
    in_tox = re.findall(r"^\s+uv==(\S+)", (REPO / "tox.ini").read_text(), re.M)
    assert len(pinned) == 1 and set(in_tox) == set(pinned), (pinned, in_tox)
