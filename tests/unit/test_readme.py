"""README and CI stay true to the code: the catalogue, the test command, every command shown."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

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


# ----------------------------------------------------------------------------- README commands run

CONSOLE = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
FENCED = re.compile(r"^```[a-z]*\n(.*?)^```", re.S | re.M)


def sessions(text: str) -> list[tuple[str, str]]:
    """(command, expected stdout) for every `$ command` of every console block, in order."""
    found: list[tuple[str, str]] = []
    for block in CONSOLE.findall(text):
        command, output = None, []
        for line in block.splitlines(keepends=True):
            if line.startswith("$ "):
                if command is not None:
                    found.append((command, "".join(output)))
                command, output = line[2:].rstrip("\n"), []
            else:
                output.append(line)
        if command is not None:
            found.append((command, "".join(output)))
    return found


def shell(command: str, bindir: Path, previous: int, env: dict[str, str] | None = None) -> tuple[str, int]:
    """Run one README command as a user would (`istio-cilium-compat` on PATH, 80 columns)."""
    if command == "echo $?":
        return f"{previous}\n", 0
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(ROOT / "src"),
            "COLUMNS": "80",
            **(env or {}),
        },
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout, result.returncode


@pytest.fixture(scope="module")
def bindir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`istio-cilium-compat` as the console script would run it, with this interpreter."""
    directory = tmp_path_factory.mktemp("bin")
    script = directory / "istio-cilium-compat"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m istio_cilium_compat "$@"\n')
    script.chmod(0o755)
    return directory


def test_readme_sessions_show_what_the_commands_print(bindir: Path) -> None:
    """Every `$` command in a console block runs, and prints exactly what the README shows."""
    found = sessions(README)
    assert len(found) >= 3
    outputs: list[str] = []
    previous = 0
    for command, expected in found:
        out, previous = shell(command, bindir, previous)
        outputs.append(out)
        if os.environ.get("UPDATE_README") != "1":
            assert out == expected, f"README output of `{command}` differs (UPDATE_README=1 rewrites it)"
    if os.environ.get("UPDATE_README") == "1":  # from the file: the catalogue may have been rewritten
        rewritten, index = [], 0
        current = (ROOT / "README.md").read_text()
        for part in re.split(r"(^```console\n.*?^```)", current, flags=re.S | re.M):
            if part.startswith("```console\n"):
                lines = ["```console\n"]
                for command, _ in sessions(part + "\n"):
                    lines += [f"$ {command}\n", outputs[index]]
                    index += 1
                part = "".join(lines) + "```"
            rewritten.append(part)
        (ROOT / "README.md").write_text("".join(rewritten))


def test_readme_shows_the_exit_codes_of_its_examples() -> None:
    shown = [out for command, out in sessions(README) if command.endswith(("echo $?", 'echo "exit code $?"'))]
    assert shown == ["exit code 1\n", "1\n"]


def test_first_screen_commands_run(bindir: Path, tmp_path: Path) -> None:
    """The two commands of the first screen: the live one against a fake API server."""
    from tests.fakekube import FakeKube

    first_screen = README[: README.index("\n## ")]
    commands = [
        line.strip()
        for block in FENCED.findall(first_screen)
        for line in block.splitlines()
        if line.startswith("istio-cilium-compat ")
    ]
    assert commands == [
        "istio-cilium-compat check",
        "istio-cilium-compat check --cilium-values examples/cilium-values.yaml --cilium-version 1.19",
    ]
    assert "pip install ." in first_screen
    with FakeKube.from_paths(ROOT / "examples" / "canonical-k8s-1.36-charmed-istio") as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
        out, code = shell(commands[0], bindir, 0, env={"KUBECONFIG": str(kubeconfig)})
        url = fake.url
    assert code == 1
    assert out.startswith(f"Checked: cluster: {url}\n")
    assert "Verdict: incompatible" in out
    out, code = shell(commands[1], bindir, 0)
    assert code == 1 and "ERROR   CIC001  " in out


def test_every_command_line_in_the_readme_parses() -> None:
    """Each `istio-cilium-compat ...` line of a code block is a valid invocation (options exist)."""
    from istio_cilium_compat.cli import parse

    lines = {
        line.split("  #")[0].strip().removeprefix("$ ")
        for block in FENCED.findall(README)
        for line in block.splitlines()
        if line.removeprefix("$ ").startswith(("istio-cilium-compat ", "python -m istio_cilium_compat "))
    }
    assert len(lines) >= 15
    for line in sorted(lines):
        words = shlex.split(re.split(r"\s[|>;]", line)[0])  # the command, not what the shell adds
        words = words[3:] if words[0] == "python" else words[1:]
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            try:
                parse(words)
            except SystemExit as exc:
                assert exc.code == 0, f"{line}: {sink.getvalue()}"


def test_license_is_an_spdx_expression() -> None:
    """PEP 639: a table `license = {text = ...}` is deprecated by setuptools >= 77."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license = "Apache-2\.0"$', pyproject, re.M)
    assert 'requires = ["setuptools>=77"]' in pyproject
    assert (ROOT / "LICENSE").is_file()


def test_docs_the_readme_and_metadata_point_at_exist() -> None:
    links = re.findall(r"\]\(((?:docs|examples)/[^)#]+)", README)
    assert "docs/socket-lb.svg" in links
    for link in links:
        assert (ROOT / link).exists(), link
    metadata = (ROOT / "metadata.yaml").read_text()
    for path in re.findall(r"\b(docs/[\w./-]+\.md)\b", metadata):
        assert (ROOT / path).is_file(), path
