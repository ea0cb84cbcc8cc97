"""Deploy istio-k8s and this charm on a live Juju controller, integrate them, run both actions.

Run with `tox -e integration` (pytest<9, pytest-operator). Without a reachable Juju
controller (no `juju` binary, or no current controller) every test is skipped with the
reason, before pytest-operator's fixtures try to connect. The charm deployed is
$CHARM_PATH, else the one `tox -e pack` left in the repository, else `charmcraft pack`
(which needs LXD). ISTIO_K8S_CHANNEL picks the istio-k8s channel (default dev/edge, where
istio-k8s's main branch is released).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml


def _controller_problem() -> str | None:
    """Why no Juju controller can be used here, or None when one can."""
    juju = shutil.which("juju")
    if juju is None:
        return "no `juju` binary on PATH"
    try:
        out = subprocess.run(
            [juju, "controllers", "--format", "json"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`juju controllers` failed: {exc}"
    if out.returncode != 0:
        return f"`juju controllers` failed: {out.stderr.strip()[:200]}"
    try:
        current = (json.loads(out.stdout or "{}") or {}).get("current-controller")
    except json.JSONDecodeError:
        return "`juju controllers --format json` printed no JSON"
    if not current:
        return "no current Juju controller (`juju switch <controller>`)"
    return None


_PROBLEM = _controller_problem()
# Each test is collected and skipped with the reason (pytest then exits 0, not 5 "no tests"),
# before pytest-operator's fixtures try to connect.
pytestmark = pytest.mark.skipif(
    bool(_PROBLEM), reason=f"integration tests need a Juju controller: {_PROBLEM}"
)
if not _PROBLEM:
    pytest.importorskip(
        "pytest_operator", reason="integration tests need pytest-operator (tox -e integration)"
    )

if TYPE_CHECKING:
    from pytest_operator.plugin import OpsTest  # pyright: ignore[reportMissingImports]

REPO = Path(__file__).resolve().parents[2]
APP = yaml.safe_load((REPO / "metadata.yaml").read_text())["name"]
ISTIO = "istio-k8s"
ISTIO_CHANNEL = os.environ.get("ISTIO_K8S_CHANNEL", "dev/edge")
STATUS = re.compile(r"^(Cilium .*: compatible|CIC0\d\d: )")


NO_CONFIG = "(no Cilium setting to change)"  # render.action_results: results are never empty


def _leaves(results: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for value in results.values():
        out.extend(_leaves(value) if isinstance(value, dict) else [value])  # pyright: ignore[reportUnknownArgumentType]
    return out


async def _run_action(ops_test: OpsTest, action: str, **params: Any) -> dict[str, Any]:
    assert ops_test.model is not None
    unit = ops_test.model.applications[APP].units[0]
    task = await (await unit.run_action(action, **params)).wait()
    assert task.status == "completed", f"{action}: {task.status} {task.results}"
    results = dict(task.results)
    # Juju adds return-code (and stdout/stderr when the charm printed any).
    results.pop("return-code", None)
    results.pop("stdout", None)
    results.pop("stderr", None)
    # The charm never sends an empty value (whether Juju keeps one is unverified): none arrives.
    assert all(value not in ("", None) for value in _leaves(results)), results
    return results


@pytest.mark.abort_on_fail
async def test_deploy_and_integrate(ops_test: OpsTest, packed_charm: Path | None) -> None:
    assert ops_test.model is not None
    charm = packed_charm or await ops_test.build_charm(".")
    await ops_test.model.deploy(ISTIO, application_name=ISTIO, channel=ISTIO_CHANNEL, trust=True)
    await ops_test.model.deploy(charm, application_name=APP, trust=True)
    # `--trust` on deploy may grant only model scope on some Juju versions; ask for cluster scope.
    await ops_test.juju("trust", APP, "--scope=cluster")
    await ops_test.model.integrate(f"{APP}:istio-metadata", f"{ISTIO}:istio-metadata")
    await ops_test.model.wait_for_idle(apps=[APP, ISTIO], raise_on_error=True, timeout=1800, idle_period=30)


async def test_status_says_what_was_checked(ops_test: OpsTest) -> None:
    assert ops_test.model is not None
    # A check runs at every hook; update-status makes sure one ran after the relation data arrived.
    await ops_test.model.set_config({"update-status-hook-interval": "10s"})
    await ops_test.model.wait_for_idle(apps=[APP], timeout=600, idle_period=30)
    await ops_test.model.set_config({"update-status-hook-interval": "5m"})
    unit = ops_test.model.applications[APP].units[0]
    assert unit.workload_status in {"active", "blocked"}, unit.workload_status_message
    assert STATUS.match(unit.workload_status_message), unit.workload_status_message
    assert len(unit.workload_status_message) <= 120


async def test_check_compatibility(ops_test: OpsTest) -> None:
    assert ops_test.model is not None
    results = await _run_action(ops_test, "check-compatibility")
    assert results["verdict"] in {"compatible", "incompatible"}
    assert STATUS.match(results["summary"]), results["summary"]
    assert f"Verdict: {results['verdict']} (" in results["report"]
    # istio-k8s publishes its model's name as the root namespace.
    assert f"Istio root namespace {ops_test.model.name} (relation)" in results["report"]
    findings: dict[str, Any] = results.get("findings", {})
    if results["verdict"] == "incompatible":
        assert any(f["severity"] == "error" for f in findings.values()), findings
    for key, finding in findings.items():
        assert re.fullmatch(r"cic0\d\d", key), key
        assert finding["severity"] in {"error", "warning", "info"}, finding
        assert key.upper() in results["report"], key


async def test_render_cilium_config(ops_test: OpsTest) -> None:
    results = await _run_action(ops_test, "render-cilium-config", target="helm")
    assert results["target"] == "helm"
    assert results["nothing-to-change"] in {"true", "false"}
    if results["config"] != NO_CONFIG:
        assert isinstance(yaml.safe_load(results["config"]), dict), results["config"]
    auto = await _run_action(ops_test, "render-cilium-config")
    assert auto["target"] in {"helm", "cilium-cli", "configmap-patch", "canonical-k8s", "canonical-k8s-charm"}
