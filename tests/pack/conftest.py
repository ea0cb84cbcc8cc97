"""Fixtures for the packed charm: what `python -m tests.pack.build` made, unpacked as Juju does."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORKDIR = REPO / ".tox" / "pack" / "tmp"
TIMINGS: list[tuple[str, float]] = []
"""(what, seconds) of every packed hook run, printed at the end of the session."""


@dataclass(frozen=True)
class Build:
    """The build's result.json: the artefact, the Python it was built for, the lint results."""

    charm: Path
    python: Path
    analysis: list[dict[str, Any]]
    seconds: dict[str, float]


@pytest.fixture(scope="session")
def build() -> Build:
    workdir = Path(os.environ.get("PACK_WORKDIR") or DEFAULT_WORKDIR)
    result = workdir / "result.json"
    if not result.is_file():
        pytest.fail(
            f"no {result}: run `python -m tests.pack.build --workdir {workdir}` first (tox -e pack does)"
        )
    data = json.loads(result.read_text())
    charm = Path(os.environ.get("CHARM_PATH") or data["charm"])
    return Build(charm, Path(data["python"]), data["analysis"], data["seconds"])


def unpack(charm: Path, target: Path) -> Path:
    """Extract like Juju's charm deployer: files with the mode bits stored in the archive."""
    with zipfile.ZipFile(charm) as archive:
        for info in archive.infolist():
            path = archive.extract(info, target)
            mode = (info.external_attr >> 16) & 0o7777
            if mode and not info.is_dir():
                os.chmod(path, mode)
    return target


@pytest.fixture(scope="session")
def archive(build: Build) -> zipfile.ZipFile:
    return zipfile.ZipFile(build.charm)


@pytest.fixture
def unit(build: Build, tmp_path: Path) -> Path:
    """A fresh unit: the .charm unpacked into its own charm directory."""
    return unpack(build.charm, tmp_path / "charm")


def mode_of(archive: zipfile.ZipFile, name: str) -> int:
    return stat.S_IMODE(archive.getinfo(name).external_attr >> 16)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    seconds = sorted(s for _, s in TIMINGS)
    median = seconds[len(seconds) // 2]
    terminalreporter.write_line(
        f"packed charm: {len(TIMINGS)} dispatches, median {median * 1000:.0f} ms, "
        f"max {seconds[-1] * 1000:.0f} ms ({max(TIMINGS, key=lambda t: t[1])[0]})"
    )
    for what, value in TIMINGS:
        terminalreporter.write_line(f"  {value * 1000:6.0f} ms  {what}")
