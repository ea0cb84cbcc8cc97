"""Fixtures for the integration tests (pytest-operator; run with `tox -e integration`).

Import-safe without pytest-operator: nothing here imports it, so the unit environment
(which never collects tests/integration) and linters can load this file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def packed_charm() -> Path | None:
    """A packed charm from $CHARM_PATH, or None to build it with `ops_test.build_charm(".")`."""
    if path := os.environ.get("CHARM_PATH"):
        charm = Path(path).resolve()
        if not charm.is_file():
            pytest.fail(f"CHARM_PATH={path} is not a file")
        return charm
    return None
