"""Tests of the process-level hook harness (tests/harness), using benchmarks/bare_charm.

The bare charm covers what the cold-start benchmark relies on. A throw-away "probe"
charm drives the ops model API through the fake hook tools, which checks that their
output formats are the ones ops parses.
"""

from __future__ import annotations

import json
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
    assert result.state.statuses["unit"]["status"] == "active"
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


def test_unknown_hook_tool_fails_the_hook(tmp_path: Path) -> None:
    charm = _probe_charm(tmp_path)
    result = run_hook(charm, "remove")

    assert result.returncode != 0
    reboot = result.calls_to("juju-reboot")
    assert len(reboot) == 1 and reboot[0].returncode == 1
    assert any("Uncaught exception" in m for m in result.logs())


def test_unknown_tool_called_directly_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv(hooktool.CALLS_ENV, str(calls))

    assert hooktool.main(["frobnicate-get", "--x"]) == 1
    assert "ERROR frobnicate-get" in capsys.readouterr().err
    assert json.loads(calls.read_text()) == {
        "name": "frobnicate-get",
        "args": ["--x"],
        "stdin": None,
        "rc": 1,
    }


# --- a probe charm that drives the ops model API through the fake tools ---

PROBE_METADATA = """
name: probe-k8s
requires:
  istio-metadata:
    interface: istio_metadata
peers:
  cluster:
    interface: probe_peers
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

PROBE_CHARM = """
import json
import os

import ops


class Probe(ops.CharmBase):
    _stored = ops.StoredState()

    def __init__(self, framework):
        super().__init__(framework)
        self._stored.set_default(hooks=0)
        framework.observe(self.on.install, self._on_install)
        framework.observe(self.on.start, self._on_start)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.update_status, self._on_env)
        framework.observe(self.on["istio-metadata"].relation_departed, self._on_env)

    def _on_install(self, event):
        rel = self.model.get_relation("istio-metadata")
        rel.data[self.app]["written"] = "by-leader"
        rel.data[self.unit]["unit-key"] = "u"
        self.unit.set_ports(8080)
        self.unit.set_workload_version("1.2.3")
        self.unit.status = ops.WaitingStatus("probing")
        secret = self.app.add_secret({"password": "hunter2"}, label="db")
        try:
            self.model.get_secret(label="missing")
            missing = False
        except ops.SecretNotFoundError:
            missing = True
        out = {
            "config": dict(self.config),
            "leader": self.unit.is_leader(),
            "remote_app": rel.app.name,
            "units": sorted(u.name for u in rel.units),
            "remote_app_data": dict(rel.data[rel.app]),
            "remote_unit_data": {u.name: dict(rel.data[u]) for u in rel.units},
            "local_app_data": dict(rel.data[self.app]),
            "peers": self.model.get_relation("cluster") is not None,
            "ports": sorted(p.port for p in self.unit.opened_ports()),
            "address": str(self.model.get_binding("istio-metadata").network.ingress_address),
            "planned": self.app.planned_units(),
            "secret": self.model.get_secret(id=secret.id).get_content(),
            "secret_missing": missing,
            "app_status": self.app.status.name,
            "stored_hooks": self._stored.hooks,
        }
        print(json.dumps(out))

    def _on_start(self, event):
        self._stored.hooks += 1
        print(json.dumps({"stored_hooks": self._stored.hooks}))

    def _on_remove(self, event):
        self.unit.reboot()  # juju-reboot is not implemented by the fake: an "unknown" tool

    def _on_env(self, event):
        print(json.dumps(dict(os.environ)))


if __name__ == "__main__":
    ops.main(Probe, use_juju_for_storage=os.environ.get("PROBE_JUJU_STORAGE") == "1")
"""


def _probe_charm(tmp_path: Path) -> Path:
    charm = tmp_path / "probe"
    (charm / "src").mkdir(parents=True)
    (charm / "metadata.yaml").write_text(PROBE_METADATA)
    (charm / "config.yaml").write_text(PROBE_CONFIG)
    (charm / "src" / "charm.py").write_text(textwrap.dedent(PROBE_CHARM))
    return charm


def test_model_api_round_trips_through_the_fake_tools(tmp_path: Path) -> None:
    charm = _probe_charm(tmp_path)
    state = HookState(config={"replicas": 3}, relations=[_relation()])

    result = run_hook(charm, "install", state=state).assert_ok()
    out = json.loads(result.stdout)

    assert out["config"] == {"log-level": "info", "replicas": 3}
    assert out["leader"] is True
    assert out["remote_app"] == "istio-k8s"
    assert out["units"] == ["istio-k8s/0"]
    assert out["remote_app_data"] == {"root_namespace": "istio-system"}
    assert out["remote_unit_data"] == {"istio-k8s/0": {"ingress-address": "10.1.0.9"}}
    assert out["local_app_data"] == {"written": "by-leader"}
    assert out["peers"] is False
    assert out["ports"] == [8080]
    assert out["address"] == state.address
    assert out["planned"] == 1
    assert out["secret"] == {"password": "hunter2"}
    assert out["secret_missing"] is True
    assert out["app_status"] == "unknown"

    final = result.state
    rel = final.relation("istio-metadata:3")
    assert rel.local_app_data == {"written": "by-leader"}
    assert rel.local_unit_data == {"unit-key": "u"}
    assert final.opened_ports == ["8080/tcp"]
    assert final.workload_version == "1.2.3"
    assert final.statuses["unit"]["status"] == "waiting"
    assert state.opened_ports == []  # the input state is not modified


def test_stored_state_in_juju_survives_hooks_via_state(tmp_path: Path) -> None:
    charm = _probe_charm(tmp_path)
    extra = {"PROBE_JUJU_STORAGE": "1"}
    first = run_hook(charm, "start", env=extra).assert_ok()
    second = run_hook(charm, "start", env=extra, state=first.state).assert_ok()

    assert json.loads(second.stdout) == {"stored_hooks": 2}
    assert any(c.name == "state-set" and c.stdin for c in first.calls)
    assert "StoredStateData[_stored]" in second.state.state


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
    assert "JUJU_AVAILABILITY_ZONE" not in env
    unit_dir = Path(env["JUJU_CHARM_DIR"])
    assert env["PYTHONPATH"].split(":") == [str(unit_dir / "lib"), str(unit_dir / "src"), "/extra"]
    assert env["JUJU_DISPATCH_PATH"] == "hooks/update-status"
    assert env["JUJU_HOOK_NAME"] == "update-status"
    assert env["JUJU_VERSION"] == "3.6.4"
    assert env["JUJU_UNIT_NAME"] == "istio-cilium-compat-k8s/0"
    assert env["PATH"].split(":")[0].endswith("bin")
    # ops adds OPERATOR_DISPATCH itself; everything else is on the harness's list.
    allowed = {"PATH", "PYTHONPATH", "HOME", "LANG", "KUBECONFIG", "OPERATOR_DISPATCH"}
    extra = {k for k in env if k not in allowed and not k.startswith(("JUJU_", "FAKE_JUJU_"))}
    assert extra == set()


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


# --- tool-level behaviour, calling hooktool in-process against a state file ---


@pytest.fixture
def tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Return ``call(state, *argv, context=...) -> (rc, stdout, stderr)``."""

    def call(state: HookState, *argv: str, **context: Any) -> tuple[int, str, str]:
        doc = {
            "state": state.to_dict(),
            "context": {"config": state.config, "endpoints": {}, "bindings": [], **context},
        }
        path = tmp_path / "state.json"
        path.write_text(json.dumps(doc))
        monkeypatch.setenv(hooktool.STATE_ENV, str(path))
        monkeypatch.setenv(hooktool.CALLS_ENV, str(tmp_path / "calls.jsonl"))
        rc = hooktool.main(list(argv))
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    return call


def test_tool_relation_errors_use_juju_wording(tool: Any) -> None:
    follower = HookState(leader=False, relations=[_relation()])

    rc, _, err = tool(follower, "relation-set", "-r", "istio-metadata:3", "--app", "k=v")
    assert (rc, err) == (1, "ERROR cannot write relation settings\n")

    rc, _, err = tool(follower, "relation-get", "--format=json", "-r", "99", "-", "istio-k8s/0")
    assert rc == 2 and 'invalid value "99" for option -r: relation not found' in err

    rc, out, _ = tool(follower, "relation-get", "--format=json", "-r", "3", "--app", "-", "istio-k8s")
    assert (rc, out) == (0, '{"root_namespace":"istio-system"}\n')


def test_tool_output_formats(tool: Any) -> None:
    state = HookState(config={"a": "<b>", "n": 1})

    assert tool(state, "config-get", "--format=json") == (0, '{"a":"\\u003cb\\u003e","n":1}\n', "")
    assert tool(state, "config-get", "n") == (0, "1\n", "")
    assert tool(state, "is-leader") == (0, "True\n", "")
    assert tool(state, "is-leader", "--format=json") == (0, "true\n", "")
    rc, out, _ = tool(state, "status-get", "--include-data", "--format=json", "--application=true")
    assert rc == 0
    assert json.loads(out)["application-status"]["units"] == {
        state.unit_name: {"message": "", "status": "unknown", "status-data": {}}
    }


def test_tool_action_checks(tool: Any) -> None:
    state = HookState()
    action = {"name": "ping", "params": {"n": {"m": 1}}}

    assert tool(state, "action-set", "a=b") == (1, "", "ERROR not running an action\n")
    rc, _, err = tool(state, "action-set", "Bad_Key=1", action=action)
    assert rc == 2 and 'key "Bad_Key" must start and end' in err
    assert tool(state, "action-get", "n.m", "--format=json", action=action) == (0, "1\n", "")
