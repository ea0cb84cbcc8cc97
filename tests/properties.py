"""Counts property-test cases so the run can print how many were tried."""

from __future__ import annotations

from collections import Counter

CASES: Counter[str] = Counter()


def tried(name: str) -> None:
    CASES[name] += 1
