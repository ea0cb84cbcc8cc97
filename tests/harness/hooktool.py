"""Fake Juju hook tools: the ones this charm calls, each call recorded. Not a Juju emulator.

The harness (``hooks.py``) puts a directory first on the hook's ``PATH`` with one
symlink per Juju tool name to a launcher that runs :func:`main`, as Juju links every
name to its one ``jujuc`` binary. ``python hooktool.py status-set active`` works too.

Implemented: what ops calls for this charm's hooks and actions (``juju-log``,
``is-leader``, ``config-get``, ``status-set``, ``relation-ids``/``-list``/``-get``,
``action-get``/``-set``/``-fail``/``-log``). Every other Juju tool name is linked as
well and fails with exit 1 after being recorded: a charm change that starts calling one
shows up as a failing hook, which is the cue to add it here (small, with a test).

Two environment variables connect a call to the test:

- ``FAKE_JUJU_STATE``: JSON ``{"state": <HookState>, "context": {...}}``, read-only here
  (the only state change, ``status-set``, is read back from the call log). ``context``
  is what the harness worked out: effective config, action parameters, the hook's relation.
- ``FAKE_JUJU_CALLS``: JSONL; every call appends ``{"name", "args", "stdin", "rc", "cpu_s"}``
  (``cpu_s``: the tool process's user + system seconds, start-up included).

Output follows Juju's ``cmd`` package for what ops asks: ``--format=json`` (compact,
sorted keys, ``<>&`` escaped like Go), and the default "smart" format for ``is-leader``
and ``config-get <key>``. Errors print ``ERROR <message>`` on stderr and exit 1, or 2
for bad arguments. Standard library only: every call is a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

TYPE_CHECKING = False  # `typing` costs ~2 ms per tool call: import it for type checkers only
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Tool = Callable[["Store", "Call"], None]

STATE_ENV = "FAKE_JUJU_STATE"
CALLS_ENV = "FAKE_JUJU_CALLS"

# Every hook tool Juju 3.6 installs for a unit (all linked; only TOOLS are implemented).
JUJU_TOOL_NAMES: tuple[str, ...] = (
    "action-fail",
    "action-get",
    "action-log",
    "action-set",
    "application-version-set",
    "close-port",
    "config-get",
    "credential-get",
    "goal-state",
    "is-leader",
    "juju-log",
    "juju-reboot",
    "k8s-raw-get",
    "k8s-raw-set",
    "k8s-spec-get",
    "k8s-spec-set",
    "leader-get",
    "leader-set",
    "network-get",
    "open-port",
    "opened-ports",
    "pod-spec-get",
    "pod-spec-set",
    "relation-get",
    "relation-ids",
    "relation-list",
    "relation-model-get",
    "relation-set",
    "resource-get",
    "secret-add",
    "secret-get",
    "secret-grant",
    "secret-ids",
    "secret-info-get",
    "secret-remove",
    "secret-revoke",
    "secret-set",
    "state-delete",
    "state-get",
    "state-set",
    "status-get",
    "status-set",
    "storage-add",
    "storage-get",
    "storage-list",
    "unit-get",
)

SETTABLE_STATUSES = ("maintenance", "blocked", "waiting", "active")
ACTION_FAIL_DEFAULT = "action failed without reason given, check action for errors"
_ACTION_KEY_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


class ToolError(Exception):
    """A hook tool failure: ``ERROR <message>`` on stderr and a non-zero exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.message = message
        self.code = code


class Call:
    """One tool invocation: its name, arguments and output buffer."""

    def __init__(self, name: str, args: list[str]):
        self.name = name
        self.args = args
        self.out: list[str] = []


# --- argument parsing (gnuflag-like: -x and --x alike, interspersed, "--" ends flags) ---

Flags = dict[str, tuple[str, str]]  # spelling -> (canonical name, 'bool' | 'str')


def _flags(*specs: str) -> Flags:
    """Build a flag table from specs like ``'format='``, ``'app'``, ``'r|relation='``."""
    table: Flags = {}
    for spec in specs:
        kind = "str" if spec.endswith("=") else "bool"
        names = spec.rstrip("=").split("|")
        for n in names:
            table[n] = (names[-1], kind)
    return table


def parse_args(args: list[str], table: Flags) -> tuple[dict[str, Any], list[str]]:
    """Split ``args`` into options and positionals the way Juju's gnuflag does."""
    opts: dict[str, Any] = {}
    pos: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            pos.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            pos.append(arg)
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        if name not in table:
            raise ToolError(f"flag provided but not defined: {arg.split('=')[0]}", 2)
        canonical, kind = table[name]
        if kind == "bool":
            if has_value and value.lower() not in ("true", "false", "1", "0"):
                raise ToolError(f"invalid boolean value {value!r} for flag {arg.split('=')[0]}", 2)
            opts[canonical] = value.lower() in ("true", "1") if has_value else True
        else:
            if not has_value:
                if i >= len(args):
                    raise ToolError(f"flag needs an argument: {arg}", 2)
                value = args[i]
                i += 1
            opts[canonical] = value
    return opts, pos


def emit(call: Call, value: Any, fmt: str | None) -> None:
    """Write ``value`` as Go's json.Marshal would, or in Juju's "smart" format for scalars."""
    if fmt == "json":
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    elif fmt in (None, "smart") and not isinstance(value, (dict, list)):
        text = (
            "" if value is None else ("True" if value else "False") if isinstance(value, bool) else str(value)
        )
    else:
        raise ToolError(
            f"format {fmt or 'smart'} for {type(value).__name__} is not implemented by the fake", 2
        )
    if text:
        call.out.append(text + "\n")


class Store:
    """The harness's state file, read once per call."""

    def __init__(self, path: str):
        with open(path, encoding="utf-8") as f:
            doc: dict[str, Any] = json.load(f)
        self.state: dict[str, Any] = doc["state"]
        self.context: dict[str, Any] = doc["context"]

    @property
    def unit(self) -> str:
        return self.state["unit_name"]

    @property
    def app(self) -> str:
        return self.unit.split("/")[0]

    def relation(self, opts: dict[str, Any]) -> dict[str, Any]:
        """The relation of ``-r`` (``endpoint:N`` or ``N``; Juju ignores the prefix) or the hook's."""
        ref = opts.get("relation", self.context.get("relation_id"))
        if ref is None:
            raise ToolError("no relation id specified", 2)
        number = str(ref).rsplit(":", 1)[-1]
        for rel in self.state["relations"]:
            if rel["id"].rsplit(":", 1)[-1] == number:
                return rel
        raise ToolError(f'invalid value "{ref}" for option -r: relation not found', 2)

    def action(self) -> dict[str, Any]:
        action = self.context.get("action")
        if not action:
            raise ToolError("not running an action")
        return action


def _no_extra(pos: list[str]) -> None:
    if pos:
        raise ToolError(f"unrecognized args: {pos}", 2)


TOOLS: dict[str, Tool] = {}


def tool(name: str) -> Callable[[Tool], Tool]:
    """Register an implementation for a hook tool name."""

    def register(fn: Tool) -> Tool:
        TOOLS[name] = fn
        return fn

    return register


@tool("juju-log")
def juju_log(store: Store, call: Call) -> None:
    _, pos = parse_args(call.args, _flags("debug", "l|log-level=", "format="))
    if not pos:
        raise ToolError("no message specified", 2)


@tool("is-leader")
def is_leader(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format="))
    _no_extra(pos)
    emit(call, bool(store.state["leader"]), opts.get("format"))


@tool("config-get")
def config_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "a|all"))
    config: dict[str, Any] = store.context["config"]
    if pos:
        _no_extra(pos[1:])
        emit(call, config.get(pos[0]), opts.get("format"))
        return
    if not opts.get("all"):
        config = {k: v for k, v in config.items() if v is not None}
    emit(call, config, opts.get("format"))


@tool("status-set")
def status_set(store: Store, call: Call) -> None:
    _, pos = parse_args(call.args, _flags("application"))
    if not pos:
        raise ToolError("invalid args, require <status> [message] [data]", 2)
    if pos[0] not in SETTABLE_STATUSES:
        raise ToolError(f'invalid status "{pos[0]}", expected one of [{" ".join(SETTABLE_STATUSES)}]', 2)


@tool("relation-ids")
def relation_ids(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format="))
    if len(pos) != 1:
        raise ToolError("expected one endpoint name", 2)
    ids = sorted(r["id"] for r in store.state["relations"] if r["endpoint"] == pos[0])
    emit(call, ids, opts.get("format"))


@tool("relation-list")
def relation_list(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "r|relation=", "app"))
    _no_extra(pos)
    rel = store.relation(opts)
    emit(call, rel["remote_app"] if opts.get("app") else sorted(rel["remote_units"]), opts.get("format"))


@tool("relation-get")
def relation_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "r|relation=", "app"))
    rel = store.relation(opts)
    if len(pos) != 2:  # ops always passes the key ("-" for all) and the unit or app
        raise ToolError("expected <key> <unit or app>", 2)
    key, target = ("" if pos[0] == "-" else pos[0]), pos[1]
    if opts.get("app"):
        bags = {rel["remote_app"]: rel["remote_app_data"], store.app: rel["local_app_data"]}
    else:
        bags = {store.unit: rel["local_unit_data"], **rel["remote_units_data"]}
        bags.update({u: bags.get(u, {}) for u in rel["remote_units"]})
    if target not in bags:
        raise ToolError(f'cannot read settings for "{target}" in relation "{rel["id"]}": not found')
    settings: dict[str, str] = bags[target]
    emit(call, settings.get(key) if key else settings, opts.get("format"))


@tool("action-get")
def action_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format="))
    _no_extra(pos)
    emit(call, store.action()["params"], opts.get("format"))


@tool("action-set")
def action_set(store: Store, call: Call) -> None:
    store.action()
    _, pos = parse_args(call.args, {})
    for arg in pos:
        key, sep, _ = arg.partition("=")
        if not sep:
            raise ToolError(f'argument "{arg}" must be of the form key...=value', 2)
        for part in key.split("."):
            if not _ACTION_KEY_RE.match(part):
                raise ToolError(
                    f'key "{part}" must start and end with lowercase alphanumeric, '
                    "and contain only lowercase alphanumeric, hyphens and periods",
                    2,
                )


@tool("action-fail")
def action_fail(store: Store, call: Call) -> None:
    store.action()
    _, pos = parse_args(call.args, {})
    if len(pos) > 1:
        raise ToolError(f"unrecognized args: {pos[1:]}", 2)


@tool("action-log")
def action_log(store: Store, call: Call) -> None:
    store.action()
    if not parse_args(call.args, {})[1]:
        raise ToolError("no message specified", 2)


# --- entry point ---


def _record(name: str, args: list[str], rc: int) -> None:
    """Append one JSON line with a single O_APPEND write, so concurrent calls never interleave."""
    path = os.environ.get(CALLS_ENV)
    if not path:
        return
    # The tool process's CPU time so far (interpreter start-up included): what the hook's own
    # CPU time is told apart from (benchmarks/run.py); only interpreter shutdown is left out.
    # (time.process_time: os.times() counts whole clock ticks, 10 ms, and so reads 0 for most calls.)
    cpu = round(time.process_time(), 6)
    line = json.dumps({"name": name, "args": args, "stdin": None, "rc": rc, "cpu_s": cpu}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def run(name: str, args: list[str]) -> int:
    """Run tool ``name``; print its output; record the call; return its exit code."""
    call = Call(name, args)
    rc, err = 0, ""
    try:
        impl = TOOLS.get(name)
        if impl is None:
            raise ToolError(f"{name}: hook tool not implemented by the fake Juju")
        state_path = os.environ.get(STATE_ENV)
        if not state_path:
            raise ToolError(f"{STATE_ENV} is not set: run hooks through tests/harness/hooks.py")
        impl(Store(state_path), call)
    except ToolError as e:
        rc, err = e.code, f"ERROR {e.message}\n"
        call.out.clear()
    sys.stdout.write("".join(call.out))
    sys.stderr.write(err)
    sys.stdout.flush()
    _record(name, args, rc)
    return rc


def main(argv: list[str] | None = None) -> int:
    """Dispatch on the invoked name; ``hooktool[.py] <tool> args...`` also works."""
    argv = list(sys.argv if argv is None else argv)
    name = os.path.basename(argv[0])
    args = argv[1:]
    if name in ("hooktool", "hooktool.py", ".hooktool"):
        if not args:
            sys.stderr.write("usage: hooktool.py <tool-name> [args...]\n")
            return 2
        name, args = args[0], args[1:]
    return run(name, args)


if __name__ == "__main__":
    sys.exit(main())
