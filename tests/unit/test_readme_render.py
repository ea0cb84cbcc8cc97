"""README's rendering examples are real output: each marked block is what the code prints today.

`UPDATE_README=1 pytest tests/unit/test_readme_render.py` rewrites the blocks; review the diff.
Blocks are marked `<!-- output: NAME -->` ... `<!-- end output: NAME -->` and hold one fenced
code block. CLI blocks run `istio-cilium-compat` on a saved example; action blocks are the
charm's results for the same example (computed from the saved manifests, not a live cluster),
printed as YAML the way `juju run` prints them.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import charm
from istio_cilium_compat.cli import main
from istio_cilium_compat.manifests import load_snapshot
from istio_cilium_compat.render import action_results, render, with_fixes
from istio_cilium_compat.rules import evaluate
from istio_cilium_compat.snapshot import Snapshot

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(
    r"(<!-- output: (?P<name>[\w-]+) -->\n```(?P<lang>\w*)\n)(?P<body>.*?)(```\n<!-- end output: (?P=name) -->)",
    re.S,
)
BROKEN = "examples/canonical-k8s-1.36-charmed-istio"
RECOMMENDED = "examples/canonical-k8s-1.36-recommended"
DEFAULT_DENY = "examples/default-deny-without-probe-allowance"
UNIT = "istio-cilium-compat-k8s/0"


def cli(command: str) -> Callable[[], str]:
    """`$ command` and what it prints (run from the repository root)."""

    def run() -> str:
        argv = shlex.split(command)
        assert argv[0] == "istio-cilium-compat"
        out = io.StringIO()
        with _at_root(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            main(argv[1:])
        return f"$ {command}\n{out.getvalue()}"

    return run


class _Literal(str):
    """A multi-line result value: YAML block scalar, as `juju run` shows it."""


def _dumper() -> type[yaml.SafeDumper]:
    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(
        _Literal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v), style="|")
    )
    return Dumper


def _literal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, str) and "\n" in value:
        return _Literal(value)
    return value


def as_juju_yaml(results: dict[str, Any]) -> str:
    return yaml.dump(_literal(results), Dumper=_dumper(), sort_keys=True, width=1000, allow_unicode=True)


@contextlib.contextmanager
def _at_root() -> Iterator[None]:
    """Examples are named from the repository root, as README's commands do; text is 80 columns wide."""
    cwd, columns = os.getcwd(), os.environ.get("COLUMNS")
    os.chdir(ROOT)
    os.environ["COLUMNS"] = "80"
    try:
        yield
    finally:
        os.chdir(cwd)
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


def _load(example: str) -> Snapshot:
    with _at_root():
        return load_snapshot([Path(example)])


def render_action(example: str, **params: str) -> Callable[[], str]:
    """`juju run UNIT render-cilium-config ...` on the saved example."""

    def run() -> str:
        snapshot = _load(example)
        rendered = render(snapshot, evaluate(snapshot), **params)
        words = " ".join(f"{k}={v}" for k, v in params.items())
        return f"$ juju run {UNIT} render-cilium-config{' ' + words if words else ''}\n" + as_juju_yaml(
            action_results(rendered)
        )

    return run


def check_action(example: str) -> Callable[[], str]:
    """`juju run UNIT check-compatibility` on the saved example; the report cut after its first finding."""

    def run() -> str:
        snapshot = _load(example)
        report = evaluate(snapshot)
        hints = charm.Hints(app=UNIT.split("/")[0], unit=UNIT)
        with _at_root():  # the report is 80 columns wide, as without a terminal
            results = charm.check_results(
                with_fixes(snapshot, report),
                summary=charm.status_message(report, hints),
                hint=f"Full change: juju run {UNIT} render-cilium-config",
            )
        text = results["report"]
        blocks = text.split("\n\n")
        results["report"] = "\n\n".join([*blocks[:2], "(…)", blocks[-1]])
        return f"$ juju run {UNIT} check-compatibility\n" + as_juju_yaml(results)

    return run


def runtime_cli(output: str) -> Callable[[], str]:
    """`check --runtime` against the fake API with ztunnel-shaped pods (tests/unit/test_runtime.py)."""

    def run() -> str:
        import json
        import tempfile

        from tests.fakekube import FakeKube
        from tests.unit.test_runtime import NODE_A_CONNS, NODE_B_CONNS, cluster, serve

        out = io.StringIO()
        with FakeKube(cluster(bpf_lb_sock_hostns_only=None)) as fake, tempfile.TemporaryDirectory() as tmp:
            serve(fake, "ztunnel-a", NODE_A_CONNS)
            serve(fake, "ztunnel-b", NODE_B_CONNS)
            kubeconfig = str(fake.write_kubeconfig(Path(tmp) / "kubeconfig"))
            argv = ["check", "--runtime", *(["-o", "json"] if output == "json" else [])]
            saved = os.environ.get("KUBECONFIG")
            os.environ["KUBECONFIG"] = kubeconfig  # as a user has it: no path in the printed hint
            try:
                with _at_root(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                    main(argv)
            finally:
                if saved is None:
                    del os.environ["KUBECONFIG"]
                else:
                    os.environ["KUBECONFIG"] = saved
            text = out.getvalue().replace(fake.url, "http://127.0.0.1:<port>")
        if output == "json":
            return json.dumps({"runtime": json.loads(text)["runtime"]}, indent=2) + "\n"
        blocks = [b for b in text.split("\n\n") if not b.startswith("ERROR   CIC001")]
        return "$ istio-cilium-compat check --runtime\n" + "\n\n".join(blocks)

    return run


OUTPUTS: dict[str, Callable[[], str]] = {
    "runtime-cli": runtime_cli("text"),
    "runtime-json": runtime_cli("json"),
    "check-cli": cli(f"istio-cilium-compat check --manifests {BROKEN}"),
    "check-action": check_action(BROKEN),
    "render-action-charm": render_action(BROKEN, target="canonical-k8s-charm"),
    "render-action-recommended": render_action(RECOMMENDED),
    "render-canonical-k8s": cli(f"istio-cilium-compat render --manifests {BROKEN}"),
    "render-canonical-k8s-charm": cli(
        f"istio-cilium-compat render --manifests {BROKEN} --target canonical-k8s-charm"
    ),
    "render-helm-probes": cli(f"istio-cilium-compat render --manifests {DEFAULT_DENY}"),
    "render-helm-full": cli(f"istio-cilium-compat render --manifests {DEFAULT_DENY} --scope full"),
    "render-json": cli(f"istio-cilium-compat render --manifests {BROKEN} -o json"),
}


def test_every_output_block_is_known() -> None:
    names = [m["name"] for m in BLOCK.finditer(README.read_text())]
    assert sorted(names) == sorted(OUTPUTS), "README output blocks and OUTPUTS differ"


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_readme_output_is_real(name: str) -> None:
    text = README.read_text()
    match = next((m for m in BLOCK.finditer(text) if m["name"] == name), None)
    assert match is not None, f"README has no <!-- output: {name} --> block"
    actual = OUTPUTS[name]()
    if os.environ.get("UPDATE_README") == "1":
        README.write_text(text[: match.start("body")] + actual + text[match.end("body") :])
        return
    assert match["body"] == actual
