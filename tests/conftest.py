"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakekube import FakeKube


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    """A started, empty fake kube-apiserver, stopped after the test."""
    kube = FakeKube()
    kube.start()
    try:
        yield kube
    finally:
        kube.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many generated and corpus cases were tried (hostile clusters)."""
    from tests.properties import CASES

    if CASES:
        parts = ", ".join(f"{name}: {count}" for name, count in sorted(CASES.items()))
        terminalreporter.write_line(f"cases tried: {sum(CASES.values())} ({parts})")
