"""The `istio-cilium-compat` command: output formats, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from istio_cilium_compat.cli import main
from istio_cilium_compat.rules import registered
from tests.clusters import N_CHECKS

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "examples" / "canonical-k8s-charmed-istio"
FIXED = ROOT / "examples" / "canonical-k8s-recommended"
WARN = ROOT / "examples" / "default-deny-without-probe-allowance"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("folder", "code"), [(BROKEN, 1), (FIXED, 0), (WARN, 0)])
def test_exit_code_is_the_verdict(capsys: pytest.CaptureFixture[str], folder: Path, code: int) -> None:
    assert run(capsys, "check", "--manifests", str(folder))[0] == code


def test_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--manifests", str(BROKEN), "-o", "json")
    data = json.loads(out)
    assert code == 1
    assert data["verdict"] == "incompatible"
    assert [f["id"] for f in data["findings"]] == ["CIC001", "CIC004", "CIC019"]
    for finding in data["findings"]:
        assert set(finding) == {"id", "severity", "summary", "detail", "evidence", "fix", "sources"}
        assert finding["sources"] and all(isinstance(s, str) for s in finding["sources"])
        assert all(set(e) == {"object", "key", "value", "note"} for e in finding["evidence"])
    assert data["checks"][:3] == ["CIC001", "CIC003", "CIC004"]
    assert data["cilium"]["namespace"] == "kube-system"
    assert data["cilium"]["managed_by"] == "canonical-k8s"
    assert data["istio"]["root_namespace"] == "istio-system"


def test_yaml_equals_json(capsys: pytest.CaptureFixture[str]) -> None:
    _, as_json, _ = run(capsys, "check", "--manifests", str(WARN), "-o", "json")
    _, as_yaml, _ = run(capsys, "check", "--manifests", str(WARN), "-o", "yaml")
    assert yaml.safe_load(as_yaml) == json.loads(as_json)


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "check", "--manifests", str(BROKEN))
    assert "ERROR   CIC001  Socket LB hides Services from ztunnel" in out
    assert "evidence: bpf-lb-sock-hostns-only = (absent) in ConfigMap kube-system/cilium-config" in out
    assert "fix:" in out
    assert out.rstrip().endswith(f"Verdict: incompatible (2 errors, 1 warning, 0 info; {N_CHECKS} checks)")


def test_text_output_neutralises_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.clusters import healthy

    objects = healthy(bpf_lb_sock_hostns_only="\x1b[2J\nfake: line")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump_all(objects))
    _, out, _ = run(capsys, "check", "--manifests", str(tmp_path))
    assert "\x1b" not in out
    assert "\nfake: line" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--manifests", "/nonexistent/dir"], "/nonexistent/dir: no such file or directory"),
        (
            ["check", "--kubeconfig", "/nonexistent/kubeconfig"],
            "cannot load kubeconfig /nonexistent/kubeconfig",
        ),
    ],
)
def test_input_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_malformed_file_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: [\n")
    code, _, err = run(capsys, "check", "--manifests", str(bad))
    assert code == 2
    assert err.startswith(f"error: {bad}:")
    assert err.count("\n") == 1


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", "-o", "xml"])
    assert exc.value.code == 2


def test_checks_lists_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "checks")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("CIC001  error")
    rules = [line for line in lines if line[:3] == "CIC"]
    assert [line[:6] for line in rules] == [*(r.id for r in registered()), "CIC002"]
    assert rules[0][:6] == "CIC001" and "CIC023" in out
    assert rules[-1].startswith("CIC002  retired")
    assert lines[1] == "        source: " + registered()[0].sources[0]
    assert all(line.startswith("        source: ") for line in lines if line[:3] != "CIC")


def test_console_script_in_a_fresh_process() -> None:
    """The way users call it: no traceback, exit code from the verdict."""
    result = subprocess.run(
        [sys.executable, "-m", "istio_cilium_compat.cli", "check", "--manifests", str(BROKEN), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1, result.stderr
    assert {f["id"] for f in json.loads(result.stdout)["findings"]} >= {"CIC001", "CIC004"}


def test_cli_does_not_import_ops() -> None:
    code = "import sys, istio_cilium_compat.cli as c; c.main(['checks']); print('ops' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src")},
    )
    assert result.stdout.strip().endswith("False")


def test_render_prints_the_change(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", "--manifests", str(BROKEN))
    assert code == 0
    assert "socketLB.hostNamespaceOnly=true" in out
    code, out, _ = run(capsys, "render", "--manifests", str(FIXED))
    assert code == 0
    assert "# Nothing to change" in out


def test_render_refuses_without_cilium_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.yaml").write_text("---\n")
    code, out, err = run(capsys, "render", "--manifests", str(tmp_path))
    assert code == 2
    assert out == ""
    assert err == "error: no cilium-config was read, nothing to render (CIC007, CIC008)\n"


def test_alias_bomb_and_oversized_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "check", "--manifests", str(bomb))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {bomb}") and "alias" in err and err.count("\n") == 1

    from istio_cilium_compat import manifests

    monkeypatch.setattr(manifests, "MAX_FILE_BYTES", 1000)
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 2000 + "\n")
    code, out, err = run(capsys, "check", "--manifests", str(big))
    assert (code, out) == (2, "")
    assert err == f"error: {big}: file is 2004 bytes, over the 1000-byte limit\n"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from istio_cilium_compat import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"istio-cilium-compat {__version__}\n"
