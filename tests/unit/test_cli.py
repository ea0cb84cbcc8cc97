"""The `istio-cilium-compat` command: output formats, exit codes, no tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from istio_cilium_compat.cli import main
from istio_cilium_compat.rules import registered
from tests.clusters import N_CHECKS

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "examples" / "canonical-k8s-1.36-charmed-istio"
FIXED = ROOT / "examples" / "canonical-k8s-1.36-recommended"
WARN = ROOT / "examples" / "default-deny-without-probe-allowance"
EXAMPLES = ROOT / "examples"
INSTEAD = "pass YAML saved with `kubectl get -o yaml`, or what `istio-cilium-compat dump DIR` writes"
NO_CONFIG = (
    "verdict unknown: no cilium-config ConfigMap in the input; add it (kubectl get cm -A "
    "--field-selector metadata.name=cilium-config -o yaml), or pass the chart values with --cilium-values FILE"
)


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
    assert [f["id"] for f in data["findings"]] == ["CIC001", "CIC004", "CIC022", "CIC019"]
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


def test_text_output(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    _, out, _ = run(capsys, "check", "--manifests", str(BROKEN))
    assert "ERROR   CIC001  Socket LB hides Services from ztunnel" in out
    assert "evidence: bpf-lb-sock-hostns-only = (absent) in ConfigMap kube-system/cilium-config" in out
    assert "fix:" in out
    assert "juju run" not in out
    assert out.splitlines()[-2:] == [
        f"Verdict: incompatible (3 errors, 1 warning, 0 info; {N_CHECKS} checks)",
        f"Full change: istio-cilium-compat render --manifests {BROKEN}",
    ]


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
    assert capsys.readouterr().err.startswith("usage: istio-cilium-compat check ")


def test_checks_lists_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "checks")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("CIC001  error")
    rules = [line for line in lines if line[:3] == "CIC"]
    assert [line[:6] for line in rules] == [*(r.id for r in registered()), "CIC002"]
    assert rules[0][:6] == "CIC001" and "CIC023" in out and "CIC030" in out
    assert rules[-1].startswith("CIC002  retired")
    assert lines[1] == "        source: " + registered()[0].sources[0]
    assert all(line.startswith("        source: ") for line in lines if line[:3] != "CIC")


@pytest.mark.parametrize("module", ["istio_cilium_compat", "istio_cilium_compat.cli"])
def test_console_script_in_a_fresh_process(module: str) -> None:
    """The way users call it (`python -m istio_cilium_compat` too): no traceback, exit code from the verdict."""
    result = subprocess.run(
        [sys.executable, "-m", module, "check", "--manifests", str(BROKEN), "-o", "json"],
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


def test_render_exit_3_without_cilium_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.clusters import namespace, ztunnel

    (tmp_path / "istio.yaml").write_text(yaml.safe_dump_all([ztunnel(), namespace("shop")]))
    code, out, err = run(capsys, "render", "--manifests", str(tmp_path))
    assert (code, out) == (3, "")
    assert err == f"error: nothing to render: {NO_CONFIG}\n"


def test_render_exit_2_on_empty_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.yaml").write_text("---\n")
    code, out, err = run(capsys, "render", "--manifests", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == f"error: {tmp_path}: empty, no YAML or JSON documents; {INSTEAD}\n"


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


# ----------------------------------------------------------------------------- exit codes (DESIGN.md CLI contract)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d, "{d}: no *.yaml, *.yml or *.json files; " + INSTEAD),
        (
            lambda d: write(d / "empty.yaml", ""),
            "{d}/empty.yaml: empty, no YAML or JSON documents; " + INSTEAD,
        ),
        (lambda d: write(d / "c.json", "null"), "{d}/c.json: empty, no YAML or JSON documents; " + INSTEAD),
        (
            lambda d: write(d / "notes.yaml", "title: my notes\nitems: [1, 2]\n"),
            "{d}/notes.yaml: no Kubernetes objects (no document has apiVersion and kind); " + INSTEAD,
        ),
        (
            lambda d: (
                write(
                    d / "app" / "deploy.yaml",
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n"
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {a: b}\n",
                ).parent
            ),
            "{d}/app: 2 Kubernetes objects, none that the checks read (cilium-config, Cilium and Istio "
            "DaemonSets, policies, ambient namespaces); " + INSTEAD,
        ),
        (
            lambda d: write(d / "values.yaml", "kubeProxyReplacement: true\nsocketLB:\n  enabled: true\n"),
            "{d}/values.yaml: Cilium Helm chart values, not Kubernetes objects; "
            "pass it with --cilium-values {d}/values.yaml",
        ),
    ],
    ids=["empty-dir", "empty-file", "json-null", "unrelated-yaml", "unrelated-objects", "helm-values"],
)
@pytest.mark.parametrize("command", ["check", "render"])
def test_nothing_to_check_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str, command: str
) -> None:
    target = make(tmp_path)
    code, out, err = run(capsys, command, "--manifests", str(target))
    assert (code, out) == (2, "")
    assert err == "error: " + message.format(d=tmp_path) + "\n"


def test_values_file_beside_manifests_is_skipped_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(FIXED, tmp_path / "repo")
    values = write(tmp_path / "repo" / "cilium-values.yaml", "socketLB:\n  hostNamespaceOnly: true\n")
    code, out, err = run(capsys, "check", "--manifests", str(tmp_path / "repo"))
    assert code == 0 and "Verdict: compatible" in out
    assert err == (
        f"note: skipped {values}: Cilium Helm chart values, not Kubernetes objects; "
        f"pass it with --cilium-values {values}\n"
    )


def test_no_cilium_config_exits_3_with_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.clusters import namespace, ztunnel

    write(tmp_path / "istio.yaml", yaml.safe_dump_all([ztunnel(), namespace("shop")]))
    code, out, err = run(capsys, "check", "--manifests", str(tmp_path))
    assert code == 3
    assert "Verdict: unknown" in out
    assert err == NO_CONFIG + "\n"


def _kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    return write(path, yaml.safe_dump(config))


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("output", ["text", "json"])
def test_unreachable_api_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str) -> None:
    server = f"http://127.0.0.1:{_closed_port()}"
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", server)
    code, out, err = run(capsys, "check", "--kubeconfig", str(kubeconfig), "--timeout", "2", "-o", output)
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"error: cannot reach the Kubernetes API at {server}: ")
    assert err.endswith("; check --kubeconfig/--context, or pass --manifests DIR\n")
    if output == "text":
        assert out == ""
    else:  # machines still get the findings that say what could not be read
        assert json.loads(out)["verdict"] == "unknown"


def test_refused_reads_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.clusters import healthy
    from tests.fakekube import FakeKube

    with FakeKube(healthy()) as fake:
        fake.forbid("configmaps")
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
        code, out, err = run(capsys, "check", "--kubeconfig", str(kubeconfig))
        render_code, render_out, render_err = run(capsys, "render", "--kubeconfig", str(kubeconfig))
    assert code == 3 and "Verdict: unknown" in out
    assert err == (
        "verdict unknown: permission denied reading configmaps; grant get/list on them "
        "(README: What it reads), or use a kubeconfig that can\n"
    )
    assert (render_code, render_out) == (3, "")
    assert render_err == "error: nothing to render: " + err


def test_live_cluster_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.clusters import healthy
    from tests.fakekube import FakeKube

    with FakeKube(healthy()) as fake:
        kubeconfig = str(fake.write_kubeconfig(tmp_path / "kubeconfig"))
        assert run(capsys, "check", "--kubeconfig", kubeconfig)[0] == 0
        code, out, err = run(capsys, "render", "--kubeconfig", kubeconfig)
    assert (code, err) == (0, "")
    assert "# Nothing to change" in out


# ----------------------------------------------------------------------------- Cilium Helm values


def test_values_file_is_checked_as_the_chart_renders_it(capsys: pytest.CaptureFixture[str]) -> None:
    values = EXAMPLES / "cilium-values.yaml"
    code, out, err = run(
        capsys, "check", "--cilium-values", str(values), "--cilium-version", "1.19", "-o", "json"
    )
    data = json.loads(out)
    assert (code, err) == (1, "")
    assert [f["id"] for f in data["findings"]] == ["CIC001", "CIC003", "CIC008"]
    assert data["source"] == f"Cilium Helm values: {values} (chart 1.19 defaults)"
    assert data["cilium"]["managed_by"] == "helm"
    assert data["cilium"]["settings"]["cni-exclusive"] == "true"  # the chart's default, not the agent's
    evidence = {e["key"]: e["value"] for f in data["findings"] for e in f["evidence"]}
    assert evidence["kube-proxy-replacement"] == "true"


def test_recommended_values_are_compatible(capsys: pytest.CaptureFixture[str]) -> None:
    values = str(EXAMPLES / "cilium-values-istio-ambient.yaml")
    code, out, err = run(capsys, "check", "--cilium-values", values, "--cilium-version", "1.19")
    assert (code, err) == (0, "")
    assert "Verdict: compatible" in out


def test_a_misspelt_values_key_is_named_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fix typed as `socketLb` renders nothing: CIC001 stays, and stderr says why."""
    values = write(
        tmp_path / "values.yaml", "kubeProxyReplacement: true\nsocketLb:\n  hostNamespaceOnly: true\n"
    )
    code, out, err = run(
        capsys, "check", "--cilium-values", str(values), "--cilium-version", "1.19", "-o", "json"
    )
    assert code == 1
    assert err == (
        "note: values key socketLb is not the chart's socketLB: Helm ignores it (chart 1.19); rename it\n"
    )
    assert "CIC001" in [f["id"] for f in json.loads(out)["findings"]]


def test_values_without_version_say_which_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--cilium-values", str(EXAMPLES / "cilium-values-istio-ambient.yaml"))
    assert code == 0
    assert (
        err
        == "note: no --cilium-version given: chart 1.19 defaults used (pass --cilium-version X.Y for your chart)\n"
    )
    code, _, err = run(
        capsys,
        "check",
        "--cilium-values",
        str(EXAMPLES / "cilium-values-istio-ambient.yaml"),
        "--cilium-version",
        "1.22",
    )
    assert code == 0
    assert (
        err == "note: Cilium chart 1.22 is not known here (supported: 1.14-1.19): chart 1.19 defaults used\n"
    )


def test_values_with_manifests_for_the_istio_side(capsys: pytest.CaptureFixture[str]) -> None:
    values = str(EXAMPLES / "cilium-values-istio-ambient.yaml")
    code, out, err = run(
        capsys,
        "check",
        "--cilium-values",
        values,
        "--cilium-version",
        "1.19.4",
        "--manifests",
        str(FIXED),
        "-o",
        "json",
    )
    data = json.loads(out)
    assert code == 0
    assert data["findings"] == []
    assert data["cilium"]["version"] == "1.19.4"
    assert data["istio"]["ambient_namespaces"] == ["bookinfo"]
    assert data["source"] == f"Cilium Helm values: {values} (chart 1.19 defaults); manifests: {FIXED}"
    assert err == (
        f"note: the Cilium objects in {FIXED} (cilium-config, agents) were replaced by those rendered from {values}\n"
    )


def test_yaml_1_1_spellings_mean_what_helm_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = write(
        tmp_path / "v.yaml",
        "kubeProxyReplacement: 'true'\nsocketLB:\n  enabled: yes\n  hostNamespaceOnly: on\ncni:\n  exclusive: n\n",
    )
    code, out, _ = run(
        capsys, "check", "--cilium-values", str(values), "--cilium-version", "1.17", "-o", "json"
    )
    settings = json.loads(out)["cilium"]["settings"]
    assert code == 0
    assert (settings["bpf-lb-sock"], settings["bpf-lb-sock-hostns-only"], settings["cni-exclusive"]) == (
        "true",
        "true",
        "false",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "socketLB:\n  enabled: 'true'\n",
            "{f}: socketLB.enabled: 'true' is not boolean (chart 1.17 values.schema.json)",
        ),
        (
            "kubeProxyReplacement: strict\n",
            "{f}: kubeProxyReplacement 'strict': chart 1.17 accepts only true, false",
        ),
        ("- a\n- b\n", "{f}: not a Helm values file (expected one YAML mapping)"),
        (
            "apiVersion: v1\nkind: ConfigMap\n",
            "{f}: a Kubernetes manifest, not Helm values; pass it with --manifests {f}",
        ),
        ("a: [\n", "{f}:1: invalid YAML"),
    ],
    ids=["schema", "chart-fail", "not-a-mapping", "manifest", "invalid-yaml"],
)
@pytest.mark.parametrize("command", ["check", "render"])
def test_values_the_chart_refuses_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str, command: str
) -> None:
    values = write(tmp_path / "values.yaml", text)
    code, out, err = run(capsys, command, "--cilium-values", str(values), "--cilium-version", "1.17")
    assert (code, out) == (2, "")
    assert err.startswith("error: " + message.format(f=values)) and err.count("\n") == 1


def test_render_from_values(capsys: pytest.CaptureFixture[str]) -> None:
    values = str(EXAMPLES / "cilium-values.yaml")
    code, out, err = run(capsys, "render", "--cilium-values", values, "--cilium-version", "1.19")
    assert (code, err) == (0, "")
    assert "hostNamespaceOnly: true" in out and "exclusive: false" in out
    # The script reads the release's own chart version when it runs: it never floats, whatever was given.
    assert '--version "${chart_version:?no cilium chart version read from the release}"' in out
    assert "helm get all cilium -n kube-system --template" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["check", "--cilium-version", "1.17"],
            "--cilium-version needs --cilium-values FILE (it picks that chart's defaults)",
        ),
        (
            ["check", "--cilium-values", "v.yaml", "--cilium-version", "latest"],
            "--cilium-version: not a Cilium version: 'latest' (expected X.Y or X.Y.Z, e.g. 1.17)",
        ),
        (
            ["render", "--cilium-values", "v.yaml", "--context", "prod"],
            "--cilium-values checks files, not the live cluster: pass the Istio side with --manifests "
            "instead of --kubeconfig/--context",
        ),
    ],
)
def test_values_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith(f"usage: istio-cilium-compat {argv[0]} ")
    assert err.endswith(f"istio-cilium-compat {argv[0]}: error: {message}\n")


# ----------------------------------------------------------------------------- help and entry points


def test_every_option_says_its_default() -> None:
    import argparse

    from istio_cilium_compat.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        assert sub.description, name
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            shown = formatter._expand_help(action) if action.help else ""
            assert "default" in shown, f"{name} {action.option_strings}"
    assert {a.dest for a in subs._choices_actions} == set(subs.choices)  # every command has a help line


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["check", "--help"], ["render", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        out = capsys.readouterr().out
        assert exc.value.code == 0
        assert "exit codes:" in out and "  2  could not run on the input" in out
        assert max(len(line) for line in out.splitlines()) <= 80 or argv == ["render", "--help"]


def test_bare_command_prints_help_on_stderr_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    out, err = capsys.readouterr()
    assert (exc.value.code, out) == (2, "")
    assert err.startswith("usage: istio-cilium-compat [-h] [--version] COMMAND ...")
    assert "commands:" in err and "exit codes:" in err


def test_unknown_command_suggests_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["chek", "--manifests", "x"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.endswith(
        "istio-cilium-compat: error: unknown command 'chek' (did you mean check?)\n"
    )


def test_option_typo_reports_the_subcommands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["render", "--manfests", "dump/"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith("usage: istio-cilium-compat render [-h]")
    assert err.endswith(
        "istio-cilium-compat render: error: unrecognized arguments: --manfests dump/ (did you mean --manifests?)\n"
    )


# ----------------------------------------------------------------------------- readable output


def test_text_wraps_to_80_columns_with_indented_continuation(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "check", "--manifests", str(BROKEN))
    lines = out.splitlines()
    commands = ("sudo ", "kubectl ", "helm ", "juju ", "istio-cilium-compat ", "chart_version=")
    for line in lines:  # over 80 only for a command kept whole, or one word (a URL) that cannot break
        words = line.split()
        one_word = 0 < len(words) <= 2 and len(line) - len(words[-1]) <= 16
        command = line.lstrip().removeprefix("fix:").lstrip().startswith(commands)
        assert len(line) <= 80 or command or one_word, line
    why = lines.index(next(line for line in lines if line.startswith("  why:      Socket LB")))
    assert lines[why + 1].startswith(" " * 12) and lines[why + 1][12] != " "
    summary = next(i for i, line in enumerate(lines) if line.startswith("ERROR   CIC001  "))
    assert lines[summary + 1].startswith(" " * 16) and lines[summary + 1].strip()
    # A command is never split: it stays whole on its own line.
    assert "            sudo k8s kubectl -n kube-system rollout restart daemonset/cilium" in lines
    # A fix with commands stays a script: a long comment goes on as comments, never as a bare word.
    start = lines.index(next(line for line in lines if line.startswith("  fix:      chart_version=")))
    fix_lines = lines[start + 1 : lines.index("", start)]
    assert all(line.strip().startswith(("#", *commands)) for line in fix_lines), fix_lines
    assert f"  istio-cilium-compat render --manifests {BROKEN}" in lines


def test_text_width_follows_the_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    _, out, _ = run(capsys, "check", "--manifests", str(BROKEN))
    commands = ("sudo ", "kubectl ", "chart_version=")
    widths = [
        len(line)
        for line in out.splitlines()
        if not line.lstrip().removeprefix("fix:").lstrip().startswith(commands)
    ]
    assert 80 < max(widths) <= 120


def test_yaml_uses_block_scalars_for_multi_line_text(capsys: pytest.CaptureFixture[str]) -> None:
    _, as_yaml, _ = run(capsys, "check", "--manifests", str(BROKEN), "-o", "yaml")
    _, as_json, _ = run(capsys, "check", "--manifests", str(BROKEN), "-o", "json")
    assert yaml.safe_load(as_yaml) == json.loads(as_json)
    assert '  fix: |-\n    chart_version="$(sudo k8s helm get all ck-network' in as_yaml
    assert "\\n" not in as_yaml


def test_hint_names_the_inputs_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    values = EXAMPLES / "cilium-values.yaml"
    _, out, _ = run(
        capsys,
        "check",
        "--cilium-values",
        str(values),
        "--cilium-version",
        "1.19",
        "--istio-namespace",
        "my mesh",
    )
    assert out.splitlines()[-1] == (
        f"Full change: istio-cilium-compat render --cilium-values {values} --cilium-version 1.19 "
        "--istio-namespace 'my mesh'"
    )
    _, out, _ = run(capsys, "check", "--manifests", str(FIXED))
    assert "Full change" not in out  # nothing to change: no hint
