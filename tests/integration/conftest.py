"""Fixtures for the integration tests (pytest-operator; run with `tox -e integration`).

Import-safe without pytest-operator: nothing here imports it, so the unit environment
(which never collects tests/integration) and linters can load this file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def packed_charm() -> Path | None:
    """$CHARM_PATH, else the charm `tox -e pack` left in the repository, else None (then
    the test packs with `ops_test.build_charm(".")`, which needs charmcraft and LXD)."""
    if path := os.environ.get("CHARM_PATH"):
        charm = Path(path).resolve()
        if not charm.is_file():
            pytest.fail(f"CHARM_PATH={path} is not a file")
        return charm
    packed = sorted(REPO.glob("istio-cilium-compat-k8s_*.charm"), key=lambda p: p.stat().st_mtime)
    return packed[-1] if packed else None
