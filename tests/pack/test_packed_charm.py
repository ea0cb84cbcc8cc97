"""The packed .charm, as Juju's unit agent runs it, against the fake API serving the examples.

Each hook is `./dispatch` of the unpacked artefact in a fresh process: Juju's environment
only (`JUJU_DISPATCH_PATH` and the rest of the uniter's variables, no PYTHONPATH of ours),
fake hook tools on PATH, the unit's Python 3.12 as `python3`, and `$KUBECONFIG` pointing at
`tests/fakekube` (on a unit, lightkube finds the pod's service account instead). The
source-tree behaviour (exact messages per cluster) is tested in tests/unit; here: the
artefact's contents, and that what users deploy runs every event and action correctly.
"""

from __future__ import annotations

import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakekube import FakeKube
from tests.harness import HookResult, HookState, RelationState, run_action, run_hook

from .conftest import REPO, TIMINGS, Build, mode_of, unpack

BROKEN = REPO / "examples" / "canonical-k8s-1.36-charmed-istio"
RECOMMENDED = REPO / "examples" / "canonical-k8s-1.36-recommended"
RELATION = RelationState(
    id="istio-metadata:7",
    remote_app="istio-k8s",
    remote_units=["istio-k8s/0"],
    remote_app_data={"root_namespace": "istio-system"},
)
# In the order Juju runs them for a unit deployed, related to istio-k8s, then unrelated.
LIFECYCLE = [
    "install",
    "leader-elected",
    "config-changed",
    "start",
    "istio-metadata-relation-created",
    "istio-metadata-relation-joined",
    "istio-metadata-relation-changed",
    "update-status",
    "upgrade-charm",
    "istio-metadata-relation-departed",
    "istio-metadata-relation-broken",
]
COMPILED = ("pydantic_core", "msgspec", "yaml_rs")
SO_TAG = re.compile(r"\.cpython-(\d+)-x86_64-linux-gnu\.so$")


def timed(what: str, result: HookResult) -> HookResult:
    TIMINGS.append((what, result.duration))
    return result


@pytest.fixture(scope="module")
def broken_kube() -> Iterator[FakeKube]:
    with FakeKube.from_paths(BROKEN) as fake:
        yield fake


def kube_env(fake: FakeKube, tmp_path: Path) -> dict[str, str]:
    return {"KUBECONFIG": str(fake.write_kubeconfig(tmp_path / "kubeconfig"))}


def dispatch(build: Build, unit: Path, hook: str, env: dict[str, str], **kwargs: Any) -> HookResult:
    result = run_hook(
        unit, hook, state=kwargs.pop("state", HookState(relations=[RELATION])), env=env,
        packed=True, python=str(build.python), unit_dir=unit, tool_python=sys.executable, **kwargs,
    )  # fmt: skip
    return timed(hook, result)


def action(build: Build, unit: Path, name: str, params: dict[str, str], env: dict[str, str]) -> HookResult:
    result = run_action(
        unit, name, params, state=HookState(relations=[RELATION]), env=env,
        packed=True, python=str(build.python), unit_dir=unit, tool_python=sys.executable,
    )  # fmt: skip
    return timed(" ".join([name, *(f"{k}={v}" for k, v in params.items())]), result)


def assert_one_status(result: HookResult, what: str) -> tuple[str, str]:
    assert result.returncode == 0, f"{what} exited {result.returncode}:\n{result.stderr}\n{result.logs()}"
    sets = result.status_sets()
    assert len(sets) == 1, f"{what}: {sets}"  # collect-status: one status-set per dispatch
    status, message = sets[0]
    assert 0 < len(message) <= 120 and "\n" not in message, message
    return status, message


# ----------------------------------------------------------------------------- the artefact


def test_charmcraft_analyse_reports_no_error(build: Build) -> None:
    results = {r["name"]: r["result"] for r in build.analysis}
    assert not [name for name, result in results.items() if result in ("error", "fatal")], results
    assert results["entrypoint"] == "ok"  # dispatch's entrypoint exists and is executable
    assert results["language"] == "python"
    assert results["metadata"] == results["juju-actions"] == results["juju-config"] == "ok"
    assert results["pip-check"] == "ok"


def test_artefact_holds_the_charm_and_nothing_of_the_repository_tooling(archive: zipfile.ZipFile) -> None:
    names = archive.namelist()
    templates = {
        f"src/istio_cilium_compat/templates/{p.name}"
        for p in (REPO / "src/istio_cilium_compat/templates").glob("*.j2")
    }
    assert templates and templates <= set(names), sorted(templates - set(names))
    for top in ("tests/", "benchmarks/", "examples/", ".ci/", ".tox/", "parts/", "prime/", "stage/"):
        assert not [n for n in names if n.startswith(top)], top
    assert "src/charm.py" in names and "src/istio_cilium_compat/rules/__init__.py" in names
    assert mode_of(archive, "src/charm.py") & 0o111 and mode_of(archive, "dispatch") & 0o111
    # The engine is shipped once, from src/: the uv plugin installs dependencies only.
    assert not [n for n in names if n.startswith("venv/") and "/istio_cilium_compat" in n]
    # Juju reads these from the artefact: requires/assumes must not have been dropped.
    for name in ("metadata.yaml", "actions.yaml", "config.yaml"):
        assert yaml.safe_load(archive.read(name)) == yaml.safe_load((REPO / name).read_text()), name
    assert archive.read("dispatch") == (REPO / "dispatch").read_bytes()


def test_compiled_modules_are_built_for_the_units_python(archive: zipfile.ZipFile) -> None:
    """Ubuntu 24.04's Python is 3.12: a module built for another version would not import."""
    sos = [n for n in archive.namelist() if n.endswith(".so")]
    tags = {m.group(1) for n in sos if (m := SO_TAG.search(n))}
    assert tags == {"312"}, sorted(sos)
    for package in COMPILED:
        assert [n for n in sos if n.startswith(f"venv/lib/python3.12/site-packages/{package}/")], package
    assert {n.split("/")[2] for n in archive.namelist() if n.startswith("venv/lib/")} == {"python3.12"}


def test_modules_ship_compiled_for_the_units_python(archive: zipfile.ZipFile) -> None:
    """Hash-based bytecode for 3.12: valid whatever mtimes unpacking gives the sources."""
    names = set(archive.namelist())
    sources = [n for n in names if n.endswith(".py") and n.startswith(("src/istio_cilium_compat/", "venv/"))]
    assert len(sources) > 100
    for source in sources:
        folder, _, module = source.rpartition("/")
        pyc = f"{folder}/__pycache__/{module[:-3]}.cpython-312.pyc"
        assert pyc in names, source
        flags = int.from_bytes(archive.read(pyc)[4:8], "little")  # PEP 552: bit 0 = hash-based
        assert flags & 1, f"{pyc} is timestamp-based"
        assert bool(flags & 2) == source.startswith("src/"), f"{pyc}: checked only for src/"


def test_installed_distributions_are_the_locked_versions(archive: zipfile.ZipFile) -> None:
    import tomllib

    locked = {(p["name"], p["version"]) for p in tomllib.loads((REPO / "uv.lock").read_text())["package"]}
    installed = set()
    for name in archive.namelist():
        match = re.fullmatch(r"venv/lib/python3\.12/site-packages/([^/]+)-([^/-]+)\.dist-info/METADATA", name)
        if match:
            installed.add((match.group(1).lower().replace("_", "-"), match.group(2)))
    assert installed, "no dist-info in venv/"
    assert installed <= locked, sorted(installed - locked)
    direct = {"ops", "lightkube", "jinja2", "pyyaml", "yaml-rs", "charmlibs-interfaces-istio-metadata"}
    assert direct <= {name for name, _ in installed}


# ----------------------------------------------------------------------------- as Juju runs it


def test_every_lifecycle_and_relation_hook_runs_and_only_reads(
    build: Build, unit: Path, broken_kube: FakeKube, tmp_path: Path
) -> None:
    env = kube_env(broken_kube, tmp_path)
    broken_kube.clear_requests()
    statuses = []
    for hook in LIFECYCLE:
        statuses.append(assert_one_status(dispatch(build, unit, hook, env), hook))
    assert len(set(statuses)) == 1, statuses  # the same cluster: the same verdict every time
    status, message = statuses[0]
    assert status == "blocked"
    assert message.startswith("CIC001: ") and message.endswith("check-compatibility"), message
    # dispatch linked the unit's python3 as the venv's interpreter, once.
    assert (unit / "venv" / "bin" / "python").resolve() == build.python.resolve()
    assert (unit / ".unit-state.db").is_file()  # ops kept its state in the charm directory
    # The shipped bytecode stayed valid: no hook compiled a module again (about 1 s of CPU).
    with zipfile.ZipFile(build.charm) as archive:
        shipped = {n: archive.read(n) for n in archive.namelist() if n.endswith(".pyc")}
    now = {str(p.relative_to(unit)): p.read_bytes() for p in unit.rglob("*.pyc")}
    assert set(now) == set(shipped), sorted(set(now) ^ set(shipped))[:5]
    assert [n for n in shipped if now[n] != shipped[n]] == []
    requests = broken_kube.requests
    assert len(requests) >= 10 * len(LIFECYCLE)
    assert {r.method for r in requests} == {"GET"}
    assert not [r.path for r in requests if "secret" in r.path.lower()]
    assert broken_kube.server_errors == []


def test_a_compatible_cluster_is_active(build: Build, unit: Path, tmp_path: Path) -> None:
    with FakeKube.from_paths(RECOMMENDED) as fake:
        result = dispatch(build, unit, "update-status", kube_env(fake, tmp_path))
        assert {r.method for r in fake.requests} == {"GET"}
    status, message = assert_one_status(result, "update-status")
    assert status == "active"
    # Canonical Kubernetes 1.36 ships Cilium 1.19.4 (examples/canonical-k8s-1.36-recommended).
    assert re.fullmatch(r"Cilium 1\.19\.4: compatible with Istio ambient \(\d+ checks\)", message), message


def test_check_compatibility_action(build: Build, unit: Path, broken_kube: FakeKube, tmp_path: Path) -> None:
    result = action(build, unit, "check-compatibility", {}, kube_env(broken_kube, tmp_path))
    _, status_message = assert_one_status(result, "check-compatibility")
    assert result.action_failed() is None
    results = result.action_results()
    assert results["verdict"] == "incompatible"
    assert results["summary"] == status_message
    assert "CIC001" in results["report"]
    assert "cic001" in results["findings"]
    for finding, fields in results["findings"].items():
        assert set(fields) == {"severity", "summary", "evidence", "fix"}, finding
        assert fields["severity"] in ("error", "warning", "info"), finding
    # Whether Juju accepts an empty result value is unverified (DESIGN.md): send none.
    assert all(value for value in _leaves(results)), results
    assert {r.method for r in broken_kube.requests} == {"GET"}


@pytest.mark.parametrize(
    ("target", "resolved"),
    [("cilium-cli", "cilium-cli"), ("helm", "canonical-k8s")],  # k8sd owns the Helm release
)
def test_render_cilium_config_action(
    target: str, resolved: str, build: Build, unit: Path, broken_kube: FakeKube, tmp_path: Path
) -> None:
    result = action(build, unit, "render-cilium-config", {"target": target}, kube_env(broken_kube, tmp_path))
    assert_one_status(result, "render-cilium-config")
    assert result.action_failed() is None
    results = result.action_results()
    assert results["target"] == resolved
    assert results["scope"] == "changes"
    assert results["nothing-to-change"] == "false"
    assert "bpf-lb-sock-hostns-only" in results["config"] + results["apply"]
    assert all(value for value in _leaves(results)), results
    assert {r.method for r in broken_kube.requests} == {"GET"}


def test_render_with_an_unreachable_api_fails_the_action_not_the_hook(
    build: Build, unit: Path, tmp_path: Path
) -> None:
    result = action(build, unit, "render-cilium-config", {}, {"KUBECONFIG": str(tmp_path / "absent")})
    status, _ = assert_one_status(result, "render-cilium-config")
    assert status == "waiting"
    assert (result.action_failed() or "").startswith("cannot reach the Kubernetes API")


def _leaves(results: dict[str, Any]) -> Iterator[str]:
    for value in results.values():
        if isinstance(value, dict):
            yield from _leaves(value)  # pyright: ignore[reportUnknownArgumentType]
        else:
            yield value


def test_unpack_keeps_modes(build: Build, tmp_path: Path) -> None:
    """The fixture's extraction is what the hooks above relied on: exec bits as archived."""
    target = unpack(build.charm, tmp_path / "again")
    assert (target / "dispatch").stat().st_mode & 0o111
    assert (target / "src" / "charm.py").stat().st_mode & 0o111
