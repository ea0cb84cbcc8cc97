"""Run a charm hook or action the way Juju does: a fresh process, with fake hook tools.

``ops.testing`` runs the charm inside the test process, which hides what a real hook
pays for and depends on: interpreter start-up, ``import ops``, the environment Juju
hands over, and a subprocess per hook tool call. :func:`run_hook` reproduces that:

- Source mode (the default) runs ``python <charm>/src/charm.py`` with
  ``PYTHONPATH=lib:src``, for a charm directory that is a source tree.
- Packed mode (``packed=True``) runs the unpacked ``.charm``'s own ``./dispatch``, as
  Juju's unit agent does: no ``PYTHONPATH`` of ours, and ``python3`` on ``PATH`` is the
  given interpreter (the unit's Python).
- Either way ``JUJU_DISPATCH_PATH`` is ``hooks/<hook>`` or ``actions/<action>``, and the
  environment holds only what Juju's uniter sets (its ``HookVars``:
  juju/juju internal/worker/uniter/runner/context/context.go) plus ``PATH``, a temporary
  ``HOME`` and explicit extras such as a ``KUBECONFIG`` for a fake Kubernetes API (on a
  unit, lightkube finds the pod's service account instead). Nothing else leaks.
- Hook tools are ``tests/harness/hooktool.py`` linked under every Juju tool name in a
  directory put first on ``PATH``; the tools this charm calls are implemented, every
  call is logged, and :class:`HookResult` exposes the log.
- ops keeps its SQLite state in ``$JUJU_CHARM_DIR/.unit-state.db``. So that nothing is
  written into a source tree, ``JUJU_CHARM_DIR`` (and the working directory) is a unit
  directory mirroring the charm with one symlink per top-level entry. Pass the same
  ``unit_dir`` to several calls to keep ops' stored state between hooks; an unpacked
  ``.charm`` may be its own unit directory (``unit_dir=charm_dir``), as on a unit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import hooktool

JUJU_VERSION = "3.6.4"
HARNESS_DIR = Path(__file__).resolve().parent
HOOKTOOL = HARNESS_DIR / "hooktool.py"
UNIT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""``PATH`` of a charm container (Ubuntu), after the hook tools and, packed, the unit's python3."""

RELATION_HOOK_KINDS = ("created", "joined", "changed", "departed", "broken")


def _str_dict() -> dict[str, str]:
    return {}


@dataclass(kw_only=True)
class RelationState:
    """One established relation as this unit sees it.

    ``id`` is Juju's relation key, ``<endpoint>:<number>``; ``endpoint`` defaults to
    its prefix. ``remote_units`` is what ``relation-list`` prints (Juju leaves the
    departing unit out of it during ``-relation-departed``).
    """

    id: str
    remote_app: str
    endpoint: str = ""
    remote_units: list[str] = field(default_factory=list[str])
    remote_app_data: dict[str, str] = field(default_factory=_str_dict)
    remote_units_data: dict[str, dict[str, str]] = field(default_factory=dict[str, dict[str, str]])
    local_app_data: dict[str, str] = field(default_factory=_str_dict)
    local_unit_data: dict[str, str] = field(default_factory=_str_dict)

    def __post_init__(self) -> None:
        if ":" not in self.id or not self.id.rsplit(":", 1)[1].isdigit():
            raise ValueError(f'relation id must look like "endpoint:3", not {self.id!r}')
        if not self.endpoint:
            self.endpoint = self.id.rsplit(":", 1)[0]


@dataclass(kw_only=True)
class HookState:
    """What the hook tools answer from: the unit, its config and its relations.

    JSON-serialisable (the tools run in other processes and read it from a file).
    ``config`` holds explicitly set options; :func:`run_hook` adds the defaults from the
    charm's ``config.yaml``, as Juju's ``config-get`` does.
    """

    unit_name: str = "istio-cilium-compat-k8s/0"
    model_name: str = "test-model"
    model_uuid: str = "b0e2c7a5-5a0e-4f5e-8b1e-2d1c6c0f7a11"
    leader: bool = True
    config: dict[str, Any] = field(default_factory=dict[str, Any])
    relations: list[RelationState] = field(default_factory=list[RelationState])

    def relation(self, ref: str) -> RelationState:
        """Find a relation by its ``"endpoint:3"`` id."""
        for rel in self.relations:
            if rel.id == ref:
                return rel
        raise KeyError(f"no relation {ref!r} in HookState")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ToolCall:
    """One hook tool invocation."""

    name: str
    args: list[str]
    returncode: int = 0
    cpu_s: float = 0.0
    """The tool process's CPU time (user + system), as it recorded it."""


_STATUS_FLAGS = hooktool._flags("application")  # pyright: ignore[reportPrivateUsage]
_LOG_FLAGS = hooktool._flags("debug", "l|log-level=", "format=")  # pyright: ignore[reportPrivateUsage]


@dataclass
class HookResult:
    """The outcome of one hook process: exit code, output and the tool calls it made."""

    returncode: int
    stdout: str
    stderr: str
    calls: list[ToolCall]
    duration: float

    def calls_to(self, name: str) -> list[ToolCall]:
        """Successful and failed calls of one tool, in order."""
        return [c for c in self.calls if c.name == name]

    def _status_sets(self, application: bool) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for call in self.calls_to("status-set"):
            if call.returncode != 0:
                continue
            opts, pos = hooktool.parse_args(call.args, _STATUS_FLAGS)
            if bool(opts.get("application")) == application and pos:
                out.append((pos[0], pos[1] if len(pos) > 1 else ""))
        return out

    def status_sets(self) -> list[tuple[str, str]]:
        """(status, message) of each successful unit ``status-set``."""
        return self._status_sets(application=False)

    def app_status_sets(self) -> list[tuple[str, str]]:
        """(status, message) of each successful ``status-set --application``."""
        return self._status_sets(application=True)

    def action_results(self) -> dict[str, Any]:
        """Merge successful ``action-set`` calls, expanding dotted keys like Juju does."""
        results: dict[str, Any] = {}
        for call in self.calls_to("action-set"):
            if call.returncode != 0:
                continue
            for arg in call.args:
                key, _, value = arg.partition("=")
                _add_value_to_map(key.split("."), value, results)
        return results

    def action_failed(self) -> str | None:
        """The message of the last successful ``action-fail``, or None if not failed."""
        message: str | None = None
        for call in self.calls_to("action-fail"):
            if call.returncode == 0:
                _, pos = hooktool.parse_args(call.args, {})
                message = pos[0] if pos else hooktool.ACTION_FAIL_DEFAULT
        return message

    def log_records(self) -> list[tuple[str, str]]:
        """(level, message) of each ``juju-log`` call."""
        out: list[tuple[str, str]] = []
        for call in self.calls_to("juju-log"):
            opts, pos = hooktool.parse_args(call.args, _LOG_FLAGS)
            level = "DEBUG" if opts.get("debug") else str(opts.get("log-level") or "INFO")
            out.append((level, " ".join(pos)))
        return out

    def logs(self) -> list[str]:
        """Messages of ``juju-log`` calls (ops sends every Python log record there)."""
        return [message for _, message in self.log_records()]

    def assert_ok(self) -> HookResult:
        """Raise with the hook's stderr and logs if it failed; return self for chaining."""
        if self.returncode != 0:
            logs = "\n".join(self.logs())
            raise AssertionError(
                f"hook exited {self.returncode}\n--- stderr ---\n{self.stderr}\n--- juju-log ---\n{logs}"
            )
        return self


def _add_value_to_map(keys: list[str], value: Any, target: dict[str, Any]) -> None:
    """Juju's addValueToMap: nest along ``keys``, replacing non-map values on the way."""
    node = target
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child  # pyright: ignore[reportUnknownVariableType]
    node[keys[-1]] = value


# --- charm metadata (read here, with PyYAML, so the hook tools stay stdlib-only) ---


def _load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


@dataclass
class _CharmInfo:
    config_defaults: dict[str, Any]
    actions: dict[str, Any]


def _charm_info(charm_dir: Path) -> _CharmInfo:
    """Config defaults and actions, from config.yaml/actions.yaml (or charmcraft.yaml)."""
    charmcraft = _load_yaml(charm_dir / "charmcraft.yaml")
    config = _load_yaml(charm_dir / "config.yaml") or charmcraft.get("config") or {}
    defaults = {str(name): (opt or {}).get("default") for name, opt in (config.get("options") or {}).items()}
    actions = _load_yaml(charm_dir / "actions.yaml") or charmcraft.get("actions") or {}
    return _CharmInfo(defaults, actions)


def _action_params(info: _CharmInfo, action: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Juju fills in schema defaults for parameters the user did not pass."""
    spec: dict[str, Any] = info.actions.get(action) or {}
    params: dict[str, Any] = {}
    for name, schema in (spec.get("params") or {}).items():
        if isinstance(schema, dict) and "default" in schema:
            params[str(name)] = schema["default"]
    params.update(given)
    return params


# --- process set-up ---


def _make_unit_dir(charm_dir: Path, unit_dir: Path) -> None:
    """Mirror the charm's top-level entries into ``unit_dir`` as symlinks (idempotent)."""
    unit_dir.mkdir(parents=True, exist_ok=True)
    if unit_dir.samefile(charm_dir):  # an unpacked .charm is its own unit directory
        return
    for entry in charm_dir.iterdir():
        if entry.name == ".unit-state.db":
            continue
        link = unit_dir / entry.name
        if link.is_symlink() and os.readlink(link) == str(entry):
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(entry)


def _make_tool_dir(bin_dir: Path, python: str) -> None:
    """One launcher plus a symlink per Juju hook tool name, like Juju's jujuc links."""
    bin_dir.mkdir()
    launcher = bin_dir / ".hooktool"
    if len(python) < 120 and not any(c.isspace() for c in python):
        # -I: ignore the hook's PYTHONPATH and user site; import (not exec) for a cached .pyc.
        launcher.write_text(
            f"#!{python} -I\n"
            "import sys\n"
            f"sys.path.insert(0, {str(HARNESS_DIR)!r})\n"
            "import hooktool\n"
            "sys.exit(hooktool.main())\n"
        )
    else:  # a shebang cannot hold this interpreter path; go through sh instead
        launcher.write_text(
            f'#!/bin/sh\nexec {shlex.quote(python)} -I {shlex.quote(str(HOOKTOOL))} "${{0##*/}}" "$@"\n'
        )
    launcher.chmod(0o755)
    for name in hooktool.JUJU_TOOL_NAMES:
        (bin_dir / name).symlink_to(launcher.name)


def _relation_env(
    state: HookState,
    hook: str,
    relation: str | None,
    remote_unit: str | None,
    departing_unit: str | None,
) -> tuple[dict[str, str], RelationState | None]:
    """JUJU_RELATION* and JUJU_REMOTE_* for ``<endpoint>-relation-<kind>`` hooks."""
    endpoint, sep, kind = hook.rpartition("-relation-")
    if not sep or kind not in RELATION_HOOK_KINDS:
        if relation is not None:
            raise ValueError(f"{hook!r} is not a relation hook, but relation={relation!r} was given")
        return {}, None
    if relation is not None:
        rel = state.relation(relation)
    else:
        matches = [r for r in state.relations if r.endpoint == endpoint]
        if len(matches) != 1:
            raise ValueError(
                f"{hook!r} needs exactly one {endpoint!r} relation in HookState.relations "
                f"(found {len(matches)}); add one or pass relation="
            )
        rel = matches[0]
    if rel.endpoint != endpoint:
        raise ValueError(f"relation {rel.id!r} is not on endpoint {endpoint!r}")
    env = {"JUJU_RELATION": rel.endpoint, "JUJU_RELATION_ID": rel.id, "JUJU_REMOTE_APP": rel.remote_app}
    if kind in ("joined", "changed", "departed"):
        unit = remote_unit
        if unit is None and kind == "departed":
            unit = departing_unit
        if unit is None:  # empty for an app-data-only relation-changed, as in Juju
            unit = (rel.remote_units or [""])[0]
        env["JUJU_REMOTE_UNIT"] = unit
        if kind == "departed":
            env["JUJU_DEPARTING_UNIT"] = departing_unit or unit
    return env, rel


def juju_env(state: HookState, unit: Path, dispatch_path: str, hook: str) -> dict[str, str]:
    """What Juju's uniter exports to every hook (HookVars and the Ubuntu variables), but PATH."""
    return {
        "CHARM_DIR": str(unit),
        "JUJU_CHARM_DIR": str(unit),
        "JUJU_CONTEXT_ID": f"{state.unit_name}-{hook or 'run-action'}-1",
        "JUJU_HOOK_NAME": hook,
        "JUJU_AGENT_SOCKET_ADDRESS": "@/var/lib/juju/agents/unit-fake/agent.socket",
        "JUJU_AGENT_SOCKET_NETWORK": "unix",
        "JUJU_UNIT_NAME": state.unit_name,
        "JUJU_MODEL_UUID": state.model_uuid,
        "JUJU_MODEL_NAME": state.model_name,
        "JUJU_API_ADDRESSES": "10.152.183.1:17070",
        "JUJU_MACHINE_ID": "",
        "JUJU_PRINCIPAL_UNIT": "",
        "JUJU_AVAILABILITY_ZONE": "",
        "JUJU_VERSION": JUJU_VERSION,
        "CLOUD_API_VERSION": "",
        "JUJU_CHARM_HTTP_PROXY": "",
        "JUJU_CHARM_HTTPS_PROXY": "",
        "JUJU_CHARM_FTP_PROXY": "",
        "JUJU_CHARM_NO_PROXY": "",
        "JUJU_DISPATCH_PATH": dispatch_path,
        "APT_LISTCHANGES_FRONTEND": "none",
        "DEBIAN_FRONTEND": "noninteractive",
        "LANG": "C.UTF-8",
    }


def run_hook(
    charm_dir: Path,
    hook: str,
    *,
    state: HookState | None = None,
    action: str | None = None,
    action_params: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    packed: bool = False,
    timeout: float = 60,
    relation: str | None = None,
    remote_unit: str | None = None,
    departing_unit: str | None = None,
    unit_dir: Path | None = None,
    tool_python: str = sys.executable,
) -> HookResult:
    """Run one hook (or, with ``action``, one action) of the charm in a fresh process.

    ``hook`` is a Juju hook name (``install``, ``istio-metadata-relation-changed``);
    for an action pass ``action="name"`` and ``hook=""`` (or use :func:`run_action`).
    A relation hook uses the HookState relation on that endpoint, or ``relation``
    (``"endpoint:3"``) if there are several; ``remote_unit`` defaults to its first
    remote unit. ``env`` adds variables (in source mode, a ``PYTHONPATH`` there is
    appended to the charm's). ``python`` runs the charm: in source mode as
    ``python src/charm.py``; with ``packed``, its directory (which must hold a ``python3``)
    is put on ``PATH`` for ``./dispatch``. ``unit_dir`` keeps ops' ``.unit-state.db`` across calls; by default
    every call starts from a fresh unit. ``tool_python`` runs the fake hook tools.
    """
    charm_dir = Path(charm_dir).resolve()
    if action is not None:
        if hook not in ("", action):
            raise ValueError(f'pass hook="" with action={action!r}, not hook={hook!r}')
        hook = ""
    elif not hook:
        raise ValueError("a hook name (or action=) is required")
    elif action_params is not None:
        raise ValueError("action_params need action=")
    state = state or HookState()
    info = _charm_info(charm_dir)
    rel_env, rel = _relation_env(state, hook, relation, remote_unit, departing_unit)

    with tempfile.TemporaryDirectory(prefix="fake-juju-") as tmp_name:
        tmp = Path(tmp_name)
        unit = Path(unit_dir).resolve() if unit_dir is not None else tmp / "unit"
        _make_unit_dir(charm_dir, unit)
        _make_tool_dir(tmp / "bin", tool_python)
        (tmp / "home").mkdir()
        state_file, calls_file = tmp / "state.json", tmp / "calls.jsonl"
        calls_file.touch()

        extra = dict(env or {})
        context: dict[str, Any] = {
            "config": {**info.config_defaults, **state.config},
            "relation_id": rel.id if rel else None,
            "action": None,
        }
        dispatch_path = f"hooks/{hook}"
        if action is not None:
            dispatch_path = f"actions/{action}"
            context["action"] = {"name": action, "params": _action_params(info, action, action_params or {})}
        hook_env = juju_env(state, unit, dispatch_path, hook)
        if action is not None:
            hook_env |= {"JUJU_ACTION_NAME": action, "JUJU_ACTION_UUID": "1", "JUJU_ACTION_TAG": "action-1"}
        hook_env |= rel_env
        state_file.write_text(json.dumps({"state": state.to_dict(), "context": context}))

        path = [str(tmp / "bin")]
        if packed:
            # ./dispatch links the python3 it finds on PATH as the venv's interpreter, once:
            # the unit's python3 must stay where it is from hook to hook, as /usr/bin does.
            python_dir = Path(python).parent
            if not (python_dir / "python3").exists():
                raise ValueError(f"packed mode needs a python3 next to {python}")
            path.append(str(python_dir))
            command = [str(unit / "dispatch")]
        else:
            pythonpath = [str(unit / "lib"), str(unit / "src")]
            if extra.get("PYTHONPATH"):
                pythonpath.append(extra.pop("PYTHONPATH"))
            hook_env["PYTHONPATH"] = os.pathsep.join(pythonpath)
            command = [python, str(unit / "src" / "charm.py")]
        hook_env |= {
            "PATH": os.pathsep.join([*path, UNIT_PATH]),
            "HOME": str(tmp / "home"),
            hooktool.STATE_ENV: str(state_file),
            hooktool.CALLS_ENV: str(calls_file),
        }
        hook_env |= extra

        start = time.perf_counter()
        proc = subprocess.Popen(
            command,
            cwd=unit,
            env=hook_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so a timeout can kill the hook and any tools it spawned
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        duration = time.perf_counter() - start

        calls = [
            ToolCall(d["name"], d["args"], d.get("rc", 0), d.get("cpu_s", 0.0))
            for d in map(json.loads, calls_file.read_text(encoding="utf-8").splitlines())
        ]
    return HookResult(proc.returncode, stdout, stderr, calls, duration)


def run_action(
    charm_dir: Path, action: str, params: Mapping[str, Any] | None = None, **kwargs: Any
) -> HookResult:
    """Run an action: :func:`run_hook` with ``JUJU_DISPATCH_PATH=actions/<action>``."""
    return run_hook(charm_dir, "", action=action, action_params=params or {}, **kwargs)
