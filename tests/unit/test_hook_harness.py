"""Tests of the process-level hook harness (tests/harness), using benchmarks/bare_charm.

The bare charm covers what the cold-start benchmark relies on. A throw-away "probe"
charm reads, through ops, everything this project's charm reads (config, leadership,
relation data, action parameters), which checks that the fake tools answer in the
formats ops parses. Packed mode is checked with a stand-in `dispatch`.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.harness import HookState, RelationState, hooktool, run_action, run_hook

REPO = Path(__file__).resolve().parents[2]
BARE = REPO / "benchmarks" / "bare_charm"


def _relation(**overrides: Any) -> RelationState:
    fields: dict[str, Any] = {
        "id": "istio-metadata:3",
        "remote_app": "istio-k8s",
        "remote_units": ["istio-k8s/0"],
        "remote_app_data": {"root_namespace": "istio-system"},
        "remote_units_data": {"istio-k8s/0": {"ingress-address": "10.1.0.9"}},
    }
    fields.update(overrides)
    return RelationState(**fields)


@pytest.mark.parametrize("hook", ["install", "start", "update-status"])
def test_lifecycle_hook_sets_active_once(hook: str) -> None:
    result = run_hook(BARE, hook).assert_ok()

    assert result.status_sets() == [("active", "")]
    assert result.app_status_sets() == []
    assert f"Emitting Juju event {hook.replace('-', '_')}." in result.logs()
    assert all(call.returncode == 0 for call in result.calls)
    assert result.duration > 0


def test_charm_dir_stays_clean_and_unit_dir_keeps_ops_state(tmp_path: Path) -> None:
    unit_dir = tmp_path / "unit"
    run_hook(BARE, "install", unit_dir=unit_dir).assert_ok()
    second = run_hook(BARE, "start", unit_dir=unit_dir).assert_ok()

    assert (unit_dir / ".unit-state.db").is_file()
    assert not (BARE / ".unit-state.db").exists()
    # The second hook found the database the first one created.
    assert not any(m.startswith("Initializing SQLite") for m in second.logs())


def test_relation_hook() -> None:
    state = HookState(relations=[_relation()])
    result = run_hook(BARE, "istio-metadata-relation-changed", state=state).assert_ok()

    assert result.status_sets() == [("active", "")]
    relation_lists = result.calls_to("relation-list")
    assert relation_lists and relation_lists[0].args == ["--format=json", "-r", "istio-metadata:3"]
    assert "Emitting Juju event istio_metadata_relation_changed." in result.logs()


def test_relation_hook_needs_the_relation_in_state() -> None:
    with pytest.raises(ValueError, match="istio-metadata"):
        run_hook(BARE, "istio-metadata-relation-changed")


def test_action_results() -> None:
    result = run_action(BARE, "ping").assert_ok()

    assert result.action_results() == {"pong": "yes", "nested": {"key": "v"}}
    assert result.action_failed() is None
    assert result.calls_to("action-set")[0].args == ["pong=yes", "nested.key=v"]
    assert result.status_sets() == [("active", "")]


# --- a probe charm that reads what the project's charm reads, through ops ---

PROBE_METADATA = """
name: probe-k8s
requires:
  istio-metadata:
    interface: istio_metadata
"""

PROBE_CONFIG = """
options:
  log-level:
    type: string
    default: info
  replicas:
    type: int
    default: 2
  unset:
    type: string
"""

PROBE_ACTIONS = """
echo:
  params:
    target:
      type: string
      default: auto
"""

PROBE_CHARM = """
import json
import os

import ops


class Probe(ops.CharmBase):
    def __init__(self, framework):
        super().__init__(framework)
        framework.observe(self.on.install, self._on_install)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.update_status, self._on_env)
        framework.observe(self.on["istio-metadata"].relation_departed, self._on_env)
        framework.observe(self.on.echo_action, self._on_echo)

    def _on_install(self, event):
        rel = self.model.get_relation("istio-metadata")
        self.unit.status = ops.WaitingStatus("probing")
        print(json.dumps({
            "config": dict(self.config),
            "leader": self.unit.is_leader(),
            "remote_app": rel.app.name,
            "units": sorted(u.name for u in rel.units),
            "remote_app_data": dict(rel.data[rel.app]),
            "remote_unit_data": {u.name: dict(rel.data[u]) for u in rel.units},
        }))

    def _on_remove(self, event):
        self.unit.reboot()  # juju-reboot is not implemented by the fake

    def _on_env(self, event):
        print(json.dumps(dict(os.environ)))

    def _on_echo(self, event):
        if event.params["target"] == "fail":
            event.fail("asked to fail")
            return
        event.set_results({"target": event.params["target"], "nested": {"key": "v"}})


if __name__ == "__main__":
    ops.main(Probe)
"""


def _probe_charm(tmp_path: Path) -> Path:
    charm = tmp_path / "probe"
    (charm / "src").mkdir(parents=True)
    (charm / "metadata.yaml").write_text(PROBE_METADATA)
    (charm / "config.yaml").write_text(PROBE_CONFIG)
    (charm / "actions.yaml").write_text(PROBE_ACTIONS)
    (charm / "src" / "charm.py").write_text(textwrap.dedent(PROBE_CHARM))
    return charm


def test_what_the_charm_reads_round_trips_through_the_fake_tools(tmp_path: Path) -> None:
    charm = _probe_charm(tmp_path)
    state = HookState(config={"replicas": 3}, relations=[_relation()])

    result = run_hook(charm, "install", state=state).assert_ok()
    out = json.loads(result.stdout)

    assert out == {
        "config": {"log-level": "info", "replicas": 3},
        "leader": True,
        "remote_app": "istio-k8s",
        "units": ["istio-k8s/0"],
        "remote_app_data": {"root_namespace": "istio-system"},
        "remote_unit_data": {"istio-k8s/0": {"ingress-address": "10.1.0.9"}},
    }
    assert result.status_sets() == [("waiting", "probing")]


def test_action_params_defaults_results_and_failure(tmp_path: Path) -> None:
    charm = _probe_charm(tmp_path)

    done = run_action(charm, "echo").assert_ok()
    assert done.action_results() == {"target": "auto", "nested": {"key": "v"}}
    assert done.action_failed() is None
    failed = run_action(charm, "echo", {"target": "fail"}).assert_ok()
    assert failed.action_failed() == "asked to fail"
    assert failed.action_results() == {}


def test_unknown_hook_tool_is_recorded_and_fails_the_hook(tmp_path: Path) -> None:
    result = run_hook(_probe_charm(tmp_path), "remove")

    assert result.returncode != 0
    reboot = result.calls_to("juju-reboot")
    assert len(reboot) == 1 and reboot[0].returncode == 1
    assert any("Uncaught exception" in m and "juju-reboot" in m for m in result.logs())


def test_unknown_tool_called_directly_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv(hooktool.CALLS_ENV, str(calls))

    assert hooktool.main(["frobnicate-get", "--x"]) == 1
    assert "ERROR frobnicate-get" in capsys.readouterr().err
    record = json.loads(calls.read_text())
    cpu = record.pop("cpu_s")
    assert record == {"name": "frobnicate-get", "args": ["--x"], "stdin": None, "rc": 1}
    assert isinstance(cpu, float) and cpu > 0  # this process's CPU time so far


JUJU_VARIABLES = {
    "CHARM_DIR",
    "CLOUD_API_VERSION",
    "JUJU_AGENT_SOCKET_ADDRESS",
    "JUJU_AGENT_SOCKET_NETWORK",
    "JUJU_API_ADDRESSES",
    "JUJU_AVAILABILITY_ZONE",
    "JUJU_CHARM_DIR",
    "JUJU_CHARM_FTP_PROXY",
    "JUJU_CHARM_HTTPS_PROXY",
    "JUJU_CHARM_HTTP_PROXY",
    "JUJU_CHARM_NO_PROXY",
    "JUJU_CONTEXT_ID",
    "JUJU_DISPATCH_PATH",
    "JUJU_HOOK_NAME",
    "JUJU_MACHINE_ID",
    "JUJU_MODEL_NAME",
    "JUJU_MODEL_UUID",
    "JUJU_PRINCIPAL_UNIT",
    "JUJU_UNIT_NAME",
    "JUJU_VERSION",
    "APT_LISTCHANGES_FRONTEND",
    "DEBIAN_FRONTEND",
    "LANG",
    "PATH",
}
"""Juju's uniter HookVars + its Ubuntu variables (juju/juju internal/worker/uniter/runner/context)."""


def test_environment_is_only_what_juju_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOULD_NOT_LEAK", "1")
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "zone-from-parent")
    charm = _probe_charm(tmp_path)
    result = run_hook(
        charm, "update-status", env={"KUBECONFIG": "/tmp/kubeconfig", "PYTHONPATH": "/extra"}
    ).assert_ok()
    env: dict[str, str] = json.loads(result.stdout)

    assert env["KUBECONFIG"] == "/tmp/kubeconfig"
    assert "SHOULD_NOT_LEAK" not in env
    assert env["JUJU_AVAILABILITY_ZONE"] == ""
    unit_dir = Path(env["JUJU_CHARM_DIR"])
    assert env["PYTHONPATH"].split(":") == [str(unit_dir / "lib"), str(unit_dir / "src"), "/extra"]
    assert env["JUJU_DISPATCH_PATH"] == "hooks/update-status"
    assert env["JUJU_HOOK_NAME"] == "update-status"
    assert env["JUJU_VERSION"] == "3.6.4"
    assert env["JUJU_UNIT_NAME"] == "istio-cilium-compat-k8s/0"
    assert env["PATH"].split(":")[0].endswith("bin")
    # ops adds OPERATOR_DISPATCH itself; the harness adds HOME, its two files and the extras.
    allowed = JUJU_VARIABLES | {"PYTHONPATH", "HOME", "KUBECONFIG", "OPERATOR_DISPATCH"}
    assert set(env) - allowed == {hooktool.STATE_ENV, hooktool.CALLS_ENV}


def test_relation_hook_environment(tmp_path: Path) -> None:
    charm = _probe_charm(tmp_path)
    state = HookState(relations=[_relation(remote_units=["istio-k8s/0", "istio-k8s/1"])])
    result = run_hook(
        charm, "istio-metadata-relation-departed", state=state, departing_unit="istio-k8s/2"
    ).assert_ok()
    env: dict[str, str] = json.loads(result.stdout)

    assert env["JUJU_DISPATCH_PATH"] == "hooks/istio-metadata-relation-departed"
    assert env["JUJU_RELATION"] == "istio-metadata"
    assert env["JUJU_RELATION_ID"] == "istio-metadata:3"
    assert env["JUJU_REMOTE_APP"] == "istio-k8s"
    assert env["JUJU_REMOTE_UNIT"] == "istio-k8s/2"
    assert env["JUJU_DEPARTING_UNIT"] == "istio-k8s/2"


def test_packed_mode_runs_dispatch_with_the_units_python3_and_no_pythonpath(tmp_path: Path) -> None:
    """An unpacked .charm is its own unit directory; ./dispatch finds python3 on PATH."""
    charm = tmp_path / "unpacked"
    charm.mkdir()
    (charm / "dispatch").write_text(
        "#!/bin/sh\nexec python3 -c 'import json, os, sys; "
        'print(json.dumps({"env": dict(os.environ), "python": os.path.realpath(sys.executable), "cwd": os.getcwd()}))\'\n'
    )
    (charm / "dispatch").chmod(0o755)
    result = run_action(charm, "check", packed=True, python=sys.executable, unit_dir=charm).assert_ok()
    out = json.loads(result.stdout)

    assert "PYTHONPATH" not in out["env"]
    assert out["env"]["JUJU_DISPATCH_PATH"] == "actions/check"
    assert out["env"]["JUJU_ACTION_NAME"] == "check"
    assert out["cwd"] == out["env"]["JUJU_CHARM_DIR"] == str(charm.resolve())
    assert out["python"] == os.path.realpath(Path(sys.executable).with_name("python3"))
    assert sorted(p.name for p in charm.iterdir()) == ["dispatch"]  # nothing mirrored into itself


# --- tool-level behaviour, calling hooktool in-process against a state file ---


@pytest.fixture
def tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Return ``call(state, *argv, context=...) -> (rc, stdout, stderr)``."""

    def call(state: HookState, *argv: str, **context: Any) -> tuple[int, str, str]:
        doc = {"state": state.to_dict(), "context": {"config": state.config, **context}}
        path = tmp_path / "state.json"
        path.write_text(json.dumps(doc))
        monkeypatch.setenv(hooktool.STATE_ENV, str(path))
        monkeypatch.setenv(hooktool.CALLS_ENV, str(tmp_path / "calls.jsonl"))
        rc = hooktool.main(list(argv))
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    return call


def test_tool_relation_reads(tool: Any) -> None:
    state = HookState(leader=False, relations=[_relation()])

    rc, _, err = tool(state, "relation-get", "--format=json", "-r", "99", "-", "istio-k8s/0")
    assert rc == 2 and 'invalid value "99" for option -r: relation not found' in err
    rc, out, _ = tool(state, "relation-get", "--format=json", "-r", "3", "--app", "-", "istio-k8s")
    assert (rc, out) == (0, '{"root_namespace":"istio-system"}\n')
    rc, out, _ = tool(state, "relation-list", "--format=json", "-r", "istio-metadata:3", "--app")
    assert (rc, out) == (0, '"istio-k8s"\n')
    assert tool(state, "relation-ids", "--format=json", "istio-metadata") == (0, '["istio-metadata:3"]\n', "")


def test_tool_output_formats(tool: Any) -> None:
    state = HookState(config={"a": "<b>", "n": 1})

    assert tool(state, "config-get", "--format=json") == (0, '{"a":"\\u003cb\\u003e","n":1}\n', "")
    assert tool(state, "config-get", "n") == (0, "1\n", "")
    assert tool(state, "is-leader") == (0, "True\n", "")
    assert tool(state, "is-leader", "--format=json") == (0, "true\n", "")
    assert tool(state, "status-set", "--application=False", "frozen", "x")[0] == 2


def test_tool_action_checks(tool: Any) -> None:
    state = HookState()
    action = {"name": "ping", "params": {"n": {"m": 1}}}

    assert tool(state, "action-set", "a=b") == (1, "", "ERROR not running an action\n")
    rc, _, err = tool(state, "action-set", "Bad_Key=1", action=action)
    assert rc == 2 and 'key "Bad_Key" must start and end' in err
    assert tool(state, "action-get", "--format=json", action=action) == (0, '{"n":{"m":1}}\n', "")
