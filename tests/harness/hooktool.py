"""Fake Juju hook tools: one script for every tool, dispatching on the name it was run as.

The harness (``hooks.py``) puts a directory first on the hook's ``PATH`` holding one
symlink per tool name (``status-set``, ``relation-get``, ...) to a launcher that runs
:func:`main`. Juju's real tools are a single binary (``jujuc``) symlinked under every
name, so this mirrors it. If the script is run directly instead (``python hooktool.py
status-set active``), the first argument is the tool name.

Two environment variables, set by the harness, connect a call to the test:

- ``FAKE_JUJU_STATE``: JSON file ``{"state": <HookState>, "context": {...}}``. ``state``
  is what tools read and change (statuses, relation data, server-side state, ports,
  secrets); ``context`` is the read-only hook context the harness worked out (effective
  config with defaults, action parameters, the hook's relation, endpoint roles).
- ``FAKE_JUJU_CALLS``: JSONL file; every call appends ``{"name", "args", "stdin", "rc"}``.

Output follows Juju's ``cmd`` package: ``--format=json`` is compact JSON with sorted keys
and ``<``, ``>``, ``&`` escaped like Go's ``encoding/json``; the default "smart" format
prints strings bare, booleans as ``True``/``False``, nothing for null, and YAML for
maps and lists. Errors print ``ERROR <message>`` on stderr and exit 1, or 2 for bad
arguments (Juju's ``Init`` stage). Only the standard library is imported up front,
because every tool call is a fresh interpreter and its start-up time counts in
hook-duration benchmarks; PyYAML is imported only when YAML must be read or written.
"""

from __future__ import annotations

import contextlib
import fcntl
import json  # json imports re, so re costs nothing extra
import os
import re
import sys

# Typing names are imported only for type checkers: importing `typing` would add ~2 ms
# to every tool call. base64 and datetime are likewise imported where used.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, NoReturn

    Tool = Callable[["Store", "Call"], None]

STATE_ENV = "FAKE_JUJU_STATE"
CALLS_ENV = "FAKE_JUJU_CALLS"

# Every hook tool Juju 3.6 installs for a unit; the harness links each of these names.
# Names without an entry in TOOLS below are "unknown" to the fake: the call is recorded
# and fails with exit code 1, so a charm relying on them fails loudly in tests.
JUJU_TOOL_NAMES: tuple[str, ...] = (
    "action-fail",
    "action-get",
    "action-log",
    "action-set",
    "add-metric",
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
    "payload-register",
    "payload-status-set",
    "payload-unregister",
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
_PORT_RE = re.compile(r"^(?:(\d+)(?:-(\d+))?)(?:/(tcp|udp))?$")


class ToolError(Exception):
    """A hook tool failure: ``ERROR <message>`` on stderr and a non-zero exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.message = message
        self.code = code


class Call:
    """One tool invocation: parsed command line, stdin on demand, and stdout buffer."""

    def __init__(self, name: str, args: list[str]):
        self.name = name
        self.args = args
        self.stdin: str | None = None
        self.out: list[str] = []
        self.err: list[str] = []

    def read_stdin(self) -> str:
        """Read stdin once; only tools given ``--file -`` read it, so others never block."""
        text = self.stdin
        if text is None:
            text = self.stdin = sys.stdin.read()
        return text


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


_BOOL_VALUES = {
    "1": True,
    "t": True,
    "T": True,
    "true": True,
    "TRUE": True,
    "True": True,
    "0": False,
    "f": False,
    "F": False,
    "false": False,
    "FALSE": False,
    "False": False,
}


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
            if has_value and value not in _BOOL_VALUES:
                raise ToolError(f"invalid boolean value {value!r} for flag {arg.split('=')[0]}", 2)
            opts[canonical] = _BOOL_VALUES[value] if has_value else True
        else:
            if not has_value:
                if i >= len(args):
                    raise ToolError(f"flag needs an argument: {arg}", 2)
                value = args[i]
                i += 1
            opts[canonical] = value
    return opts, pos


# --- output formatting (Juju cmd.Output: json, yaml, smart) ---


def _go_json(value: Any) -> str:
    """Encode like Go's json.Marshal: compact, sorted keys, HTML characters escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _yaml(value: Any) -> str:
    import yaml  # lazily: costs ~10 ms of start-up and most tools never need it

    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def emit(call: Call, value: Any, fmt: str | None) -> None:
    """Write ``value`` in the requested format, with Juju's trailing newline."""
    fmt = fmt or "smart"
    if fmt == "json":
        text = _go_json(value)
    elif fmt == "yaml":
        text = "" if value is None else _yaml(value)
    elif fmt == "smart":
        if value is None:
            text = ""
        elif isinstance(value, bool):
            text = "True" if value else "False"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            text = _yaml(value)
    else:
        raise ToolError(f'invalid value "{fmt}" for option --format: unknown format "{fmt}"', 2)
    if text:
        call.out.append(text + "\n")


def _load_mapping(text: str) -> dict[str, Any]:
    """Parse a ``--file`` payload: JSON if it is JSON, YAML otherwise (Juju reads YAML)."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        import yaml

        data = yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ToolError("expected a map of settings")
    return {str(k): v for k, v in data.items()}


# --- state file access ---


class Store:
    """The harness's state file; ``edit()`` holds an exclusive lock for read-modify-write."""

    def __init__(self, path: str):
        self.path = path
        with open(path, encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            doc: dict[str, Any] = json.load(f)
        self.state: dict[str, Any] = doc["state"]
        self.context: dict[str, Any] = doc["context"]

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """Yield the freshest state under lock, and write it back if no error was raised."""
        with open(self.path, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            doc: dict[str, Any] = json.load(f)
            self.state = doc["state"]
            yield self.state
            f.seek(0)
            f.truncate()
            json.dump(doc, f, indent=1, sort_keys=True)

    @property
    def unit(self) -> str:
        return self.state["unit_name"]

    @property
    def app(self) -> str:
        return self.unit.split("/")[0]

    def relation(self, rel_id: int) -> dict[str, Any]:
        for rel in self.state["relations"]:
            if _rel_num(rel["id"]) == rel_id:
                return rel
        raise ToolError("relation not found")

    def hook_relation_id(self) -> int | None:
        rid = self.context.get("relation_id")
        return None if rid is None else _rel_num(rid)


def _rel_num(ref: str | int) -> int:
    return ref if isinstance(ref, int) else int(str(ref).rsplit(":", 1)[-1])


def _relation_option(store: Store, opts: dict[str, Any]) -> dict[str, Any]:
    """Resolve ``-r`` (``endpoint:N`` or ``N``; Juju 3.6 ignores the prefix) or the hook's."""
    ref = opts.get("relation")
    if ref is None:
        rid = store.hook_relation_id()
        if rid is None:
            raise ToolError("no relation id specified", 2)
        return store.relation(rid)
    try:
        rid = _rel_num(ref)
    except ValueError:
        raise ToolError(f'invalid value "{ref}" for option -r: invalid relation id', 2) from None
    try:
        return store.relation(rid)
    except ToolError:
        raise ToolError(f'invalid value "{ref}" for option -r: relation not found', 2) from None


def _need_action(store: Store) -> dict[str, Any]:
    action = store.context.get("action")
    if not action:
        raise ToolError("not running an action")
    return action


def _juju_time() -> str:
    """Time as Juju's FormatTime prints it in goal-state (RFC 3339 with a space)."""
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


# --- the tools ---

TOOLS: dict[str, Tool] = {}


def tool(name: str) -> Callable[[Tool], Tool]:
    """Register an implementation for a hook tool name."""

    def register(fn: Tool) -> Tool:
        TOOLS[name] = fn
        return fn

    return register


@tool("juju-log")
def juju_log(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("debug", "l|log-level=", "format="))
    if not pos:
        raise ToolError("no message specified", 2)
    if opts.get("format"):
        call.err.append('--format flag deprecated for command "juju-log"')


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
        if len(pos) > 1:
            _no_extra(pos[1:])
        emit(call, config.get(pos[0]), opts.get("format"))
        return
    if not opts.get("all"):
        config = {k: v for k, v in config.items() if v is not None}
    emit(call, config, opts.get("format"))


@tool("status-set")
def status_set(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("application"))
    if not pos:
        raise ToolError("invalid args, require <status> [message] [data]", 2)
    status, message = pos[0], pos[1] if len(pos) > 1 else ""
    if status not in SETTABLE_STATUSES:
        expected = " ".join(SETTABLE_STATUSES)
        raise ToolError(f'invalid status "{status}", expected one of [{expected}]', 2)
    key = "application" if opts.get("application") else "unit"
    if key == "application" and not store.state["leader"]:
        raise ToolError("this unit is not the leader")
    with store.edit() as state:
        state["statuses"][key] = {"status": status, "message": message, "status-data": {}}


def _status_details(entry: dict[str, Any], include_data: bool) -> dict[str, Any]:
    details: dict[str, Any] = {"status": entry.get("status", "unknown")}
    if include_data:
        details["message"] = entry.get("message", "")
        details["status-data"] = dict(entry.get("status-data") or {})
    return details


@tool("status-get")
def status_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "include-data", "application"))
    _no_extra(pos)
    fmt, include = opts.get("format") or "smart", bool(opts.get("include-data"))
    statuses: dict[str, Any] = store.state["statuses"]
    if opts.get("application"):
        if not store.state["leader"]:
            raise ToolError("finding application status: this unit is not the leader")
        app = statuses.get("application", {})
        if not include and fmt == "smart":
            emit(call, app.get("status", "unknown"), fmt)
            return
        details = _status_details(app, include)
        details["units"] = {store.unit: _status_details(statuses.get("unit", {}), include)}
        emit(call, {"application-status": details}, fmt)
        return
    unit = statuses.get("unit", {})
    if not include and fmt == "smart":
        emit(call, unit.get("status", "unknown"), fmt)
        return
    emit(call, _status_details(unit, include), fmt)


@tool("application-version-set")
def application_version_set(store: Store, call: Call) -> None:
    _, pos = parse_args(call.args, {})
    if len(pos) != 1:
        raise ToolError("no version specified" if not pos else f"unrecognized args: {pos[1:]}", 2)
    with store.edit() as state:
        state["workload_version"] = pos[0]


# relation tools


@tool("relation-ids")
def relation_ids(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format="))
    if pos:
        name = pos[0]
        _no_extra(pos[1:])
    else:
        rid = store.hook_relation_id()
        if rid is None:
            raise ToolError("no endpoint name specified", 2)
        name = _endpoint(store.relation(rid))
    ids = sorted(r["id"] for r in store.state["relations"] if _endpoint(r) == name)
    emit(call, ids, opts.get("format"))


def _endpoint(rel: dict[str, Any]) -> str:
    return rel.get("endpoint") or str(rel["id"]).rsplit(":", 1)[0]


@tool("relation-list")
def relation_list(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "r|relation=", "app"))
    rel = _relation_option(store, opts)
    _no_extra(pos)
    if opts.get("app"):
        emit(call, rel["remote_app"], opts.get("format"))
        return
    emit(call, sorted(rel.get("remote_units") or []), opts.get("format"))


def _is_unit_name(name: str) -> bool:
    return re.fullmatch(r"[a-z][a-z0-9-]*/\d+", name) is not None


@tool("relation-get")
def relation_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "r|relation=", "app"))
    rel = _relation_option(store, opts)
    key = ""
    if pos:
        key = "" if pos[0] == "-" else pos[0]
        pos = pos[1:]
    app = bool(opts.get("app"))
    hook_rel = store.hook_relation_id() == _rel_num(rel["id"])
    if pos:
        target = pos.pop(0)
        if app and _is_unit_name(target):
            target = target.split("/")[0]
    elif app:
        if not hook_rel:
            raise ToolError("no unit or application specified", 2)
        target = store.context["remote_app"]
    elif hook_rel and store.context.get("remote_unit"):
        target = store.context["remote_unit"]
    elif hook_rel and store.context.get("remote_app"):
        target, app = store.context["remote_app"], True
    else:
        raise ToolError("no unit or application specified", 2)
    _no_extra(pos)
    settings = _read_settings(store, rel, target, app)
    emit(call, settings.get(key) if key else settings, opts.get("format"))


def _read_settings(store: Store, rel: dict[str, Any], target: str, app: bool) -> dict[str, str]:
    """Return the databag ``target`` (a unit, or an app with ``app``), with Juju's checks."""
    if not app:
        if target == store.unit:
            return dict(rel.get("local_unit_data") or {})
        units_data: dict[str, Any] = rel.get("remote_units_data") or {}
        if target in units_data or target in (rel.get("remote_units") or []):
            return dict(units_data.get(target) or {})
        raise ToolError(
            f'cannot read settings for unit "{target}" in relation "{rel["id"]}": '
            f'unit "{target}": settings not found'
        )
    if target == store.app:
        peer = store.context.get("endpoints", {}).get(_endpoint(rel)) == "peer"
        if store.state["leader"] or peer:
            return dict(rel.get("local_app_data") or {})
        raise ToolError("permission denied")
    if target == rel["remote_app"]:
        return dict(rel.get("remote_app_data") or {})
    raise ToolError("permission denied")


@tool("relation-set")
def relation_set(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "r|relation=", "app", "file="))
    rel = _relation_option(store, opts)
    settings: dict[str, str] = {}
    if "file" in opts:
        path = opts["file"]
        text = call.read_stdin() if path == "-" else _read_file(path)
        for k, v in _load_mapping(text).items():
            settings[k] = "" if v is None else str(v)
    for arg in pos:
        k, sep, v = arg.partition("=")
        if not sep or not k:
            raise ToolError(f'expected "key=value", got "{arg}"', 2)
        settings[k] = v
    if opts.get("format"):
        call.err.append('--format flag deprecated for command "relation-set"')
    app = bool(opts.get("app"))
    if app and not store.state["leader"]:
        raise ToolError("cannot write relation settings")
    with store.edit() as state:
        target = next(r for r in state["relations"] if r["id"] == rel["id"])
        bag_key = "local_app_data" if app else "local_unit_data"
        bag: dict[str, str] = target.setdefault(bag_key, {})
        for k, v in settings.items():
            if v == "":
                bag.pop(k, None)
            else:
                bag[k] = v


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ToolError(str(e)) from None


@tool("relation-model-get")
def relation_model_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "r|relation="))
    rel = _relation_option(store, opts)
    _no_extra(pos)
    uuid = rel.get("remote_model_uuid") or store.state["model_uuid"]
    emit(call, {"uuid": uuid}, opts.get("format"))


# network and ports


@tool("network-get")
def network_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(
        call.args,
        _flags(
            "format=",
            "r|relation=",
            "primary-address",
            "bind-address",
            "ingress-address",
            "egress-subnets",
        ),
    )
    if "relation" in opts:
        _relation_option(store, opts)
    if len(pos) != 1:
        raise ToolError("no arguments specified" if not pos else f"unrecognized args: {pos[1:]}", 2)
    binding = pos[0]
    if binding not in store.context.get("bindings", []):
        raise ToolError(f'no network config found for binding "{binding}"')
    address: str = store.state["address"]
    cidr = f"{address}/32"
    addr = {"hostname": "", "value": address, "cidr": cidr, "address": address}
    bind = {
        "mac-address": "",
        "interface-name": "eth0",
        "addresses": [addr],
        "macaddress": "",
        "interfacename": "eth0",
    }
    info = {"bind-addresses": [bind], "egress-subnets": [cidr], "ingress-addresses": [address]}
    if opts.get("bind-address") or opts.get("primary-address") or opts.get("ingress-address"):
        emit(call, address, opts.get("format"))
    elif opts.get("egress-subnets"):
        emit(call, cidr, opts.get("format"))
    else:
        emit(call, info, opts.get("format"))


def _parse_port(arg: str) -> str:
    """Normalise ``80``, ``80/tcp``, ``1000-2000/udp`` or ``icmp`` to Juju's port range text."""
    if arg == "icmp":
        return "icmp"
    m = _PORT_RE.match(arg)
    if not m:
        raise ToolError(f'invalid port or range "{arg}"', 2)
    start, end, proto = m.group(1), m.group(2), m.group(3) or "tcp"
    return f"{start}-{end}/{proto}" if end else f"{start}/{proto}"


def _port_key(port: str) -> tuple[str, int]:
    if port == "icmp":
        return ("icmp", 0)
    num, proto = port.split("/")
    return (proto, int(num.split("-")[0]))


def _port_tool(store: Store, call: Call, opening: bool) -> None:
    _, pos = parse_args(call.args, _flags("endpoints=", "format="))
    if len(pos) != 1:
        raise ToolError("no port or range specified" if not pos else f"unrecognized args: {pos[1:]}", 2)
    port = _parse_port(pos[0])
    with store.edit() as state:
        ports: list[str] = state.setdefault("opened_ports", [])
        if opening and port not in ports:
            ports.append(port)
        elif not opening and port in ports:
            ports.remove(port)
        ports.sort(key=_port_key)  # --endpoints is accepted but ports are opened for all


@tool("open-port")
def open_port(store: Store, call: Call) -> None:
    _port_tool(store, call, opening=True)


@tool("close-port")
def close_port(store: Store, call: Call) -> None:
    _port_tool(store, call, opening=False)


@tool("opened-ports")
def opened_ports(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "endpoints"))
    _no_extra(pos)
    ports: list[str] = list(store.state.get("opened_ports") or [])
    if opts.get("endpoints"):
        ports = [f"{p} (*)" for p in ports]
    emit(call, ports, opts.get("format"))


# goal state, credentials, resources, storage


@tool("goal-state")
def goal_state(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format="))
    _no_extra(pos)
    since = _juju_time()
    units = {u: {"status": "active", "since": since} for u in [store.unit, *store.state["peer_units"]]}
    relations: dict[str, dict[str, Any]] = {}
    for rel in store.state["relations"]:
        goals = relations.setdefault(_endpoint(rel), {})
        goals[rel["remote_app"]] = {"status": "joined", "since": since}
        for unit in rel.get("remote_units") or []:
            goals[unit] = {"status": "active", "since": since}
    emit(call, {"units": units, "relations": relations}, opts.get("format"))


@tool("credential-get")
def credential_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format="))
    _no_extra(pos)
    if store.state.get("credential") is None:
        raise ToolError("cannot access cloud credentials: permission denied")
    emit(call, store.state["credential"], opts.get("format"))


@tool("resource-get")
def resource_get(store: Store, call: Call) -> None:
    _, pos = parse_args(call.args, {})
    if len(pos) != 1:
        raise ToolError("missing required resource name" if not pos else f"unrecognized args: {pos[1:]}", 2)
    path = (store.state.get("resources") or {}).get(pos[0])
    if path is None:
        raise ToolError(f"could not download resource: resource#{store.app}/{pos[0]} not found")
    call.out.append(f"{path}\n")


@tool("storage-list")
def storage_list(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format="))
    ids = sorted(store.state.get("storage") or {})
    if pos:
        ids = [i for i in ids if i.split("/")[0] == pos[0]]
    emit(call, ids, opts.get("format"))


@tool("storage-get")
def storage_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "s="))
    sid = opts.get("s") or store.context.get("storage_id")
    if not sid:
        raise ToolError("no storage instance specified", 2)
    storage: dict[str, str] = store.state.get("storage") or {}
    if sid not in storage:
        raise ToolError(f'invalid value "{sid}" for option -s: storage instance "{sid}" not found', 2)
    info = {"kind": "filesystem", "location": storage[sid]}
    emit(call, info.get(pos[0]) if pos else info, opts.get("format"))


# server-side charm state (ops' JujuStorage uses these for podspec-era k8s charms)


@tool("state-get")
def state_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "strict"))
    values: dict[str, str] = store.state["state"]
    key = "" if not pos or pos[0] == "-" else pos[0]
    _no_extra(pos[1:])
    if not key:
        emit(call, values, opts.get("format"))
        return
    if key not in values and opts.get("strict"):
        raise ToolError(f'"{key}" not found')
    emit(call, values.get(key), opts.get("format"))


@tool("state-set")
def state_set(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("file="))
    updates: dict[str, str] = {}
    if "file" in opts:
        path = opts["file"]
        text = call.read_stdin() if path == "-" else _read_file(path)
        updates.update({k: "" if v is None else str(v) for k, v in _load_mapping(text).items()})
    for arg in pos:
        k, sep, v = arg.partition("=")
        if not sep or not k:
            raise ToolError(f'expected "key=value", got "{arg}"', 2)
        updates[k] = v
    with store.edit() as state:
        for k, v in updates.items():
            if v == "":
                state["state"].pop(k, None)
            else:
                state["state"][k] = v


@tool("state-delete")
def state_delete(store: Store, call: Call) -> None:
    _, pos = parse_args(call.args, {})
    if len(pos) != 1:
        raise ToolError("no key specified" if not pos else f"unrecognized args: {pos[1:]}", 2)
    with store.edit() as state:
        state["state"].pop(pos[0], None)


# actions


@tool("action-get")
def action_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format="))
    params: Any = _need_action(store)["params"]
    if pos:
        for part in pos[0].split("."):
            params = params.get(part) if isinstance(params, dict) else None
    emit(call, params, opts.get("format"))


@tool("action-set")
def action_set(store: Store, call: Call) -> None:
    _need_action(store)
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
    _need_action(store)
    _, pos = parse_args(call.args, {})
    if len(pos) > 1:
        raise ToolError(f"unrecognized args: {pos[1:]}", 2)


@tool("action-log")
def action_log(store: Store, call: Call) -> None:
    _need_action(store)
    _, pos = parse_args(call.args, {})
    if not pos:
        raise ToolError("no message specified", 2)


# secrets: a small in-state store, enough for "not found" and simple round trips


def _find_secret(state: dict[str, Any], ref: str | None, label: str | None) -> tuple[str, dict[str, Any]]:
    secrets: dict[str, dict[str, Any]] = state.setdefault("secrets", {})
    if ref:
        sid = _secret_uri(ref)
        if sid in secrets:
            return sid, secrets[sid]
        raise ToolError(f'secret "{_secret_bare(ref)}" not found')
    for sid, secret in secrets.items():
        if label is not None and secret.get("label") == label:
            return sid, secret
    raise ToolError(f'secret "{label}" not found')


def _secret_bare(ref: str) -> str:
    return ref.removeprefix("secret:").rsplit("/", 1)[-1]


def _secret_uri(ref: str) -> str:
    return f"secret:{_secret_bare(ref)}"


def _secret_content(args: list[str]) -> dict[str, str]:
    """Parse ``key=value``, ``key#base64=...`` and ``key#file=path`` content arguments."""
    content: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ToolError(f'invalid key value "{arg}"', 2)
        if key.endswith("#file"):
            key, value = key[: -len("#file")], _read_file(value)
        elif key.endswith("#base64"):
            import base64

            key, value = key[: -len("#base64")], base64.b64decode(value).decode()
        content[key] = value
    return content


_SECRET_META_FLAGS = ("label=", "description=", "expire=", "rotate=", "owner=", "file=")


@tool("secret-add")
def secret_add(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags(*_SECRET_META_FLAGS))
    content = _secret_content(pos)
    if not content:
        raise ToolError("missing secret value or filename", 2)
    owner = opts.get("owner", "application")
    if owner == "application" and not store.state["leader"]:
        raise ToolError("this unit is not the leader")
    import base64

    sid = "secret:" + base64.b32encode(os.urandom(12)).decode().lower().rstrip("=")
    with store.edit() as state:
        state.setdefault("secrets", {})[sid] = {
            "content": content,
            "revision": 1,
            "owner": owner,
            "label": opts.get("label"),
            "description": opts.get("description"),
            "expire": opts.get("expire"),
            "rotate": opts.get("rotate"),
        }
    call.out.append(f"{sid}\n")


@tool("secret-set")
def secret_set(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags(*_SECRET_META_FLAGS))
    if not pos:
        raise ToolError("missing secret URI", 2)
    content = _secret_content(pos[1:])
    with store.edit() as state:
        _, secret = _find_secret(state, pos[0], None)
        if content:
            secret["content"] = content
            secret["revision"] = int(secret.get("revision", 1)) + 1
        for key in ("label", "description", "expire", "rotate", "owner"):
            if key in opts:
                secret[key] = opts[key]


@tool("secret-get")
def secret_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "label=", "refresh", "peek"))
    ref = pos[0] if pos else None
    key = pos[1] if len(pos) > 1 else None
    if ref is None and opts.get("label") is None:
        raise ToolError("require either a secret URI or label", 2)
    with store.edit() as state:
        _, secret = _find_secret(state, ref, opts.get("label") if ref is None else None)
        if ref is not None and opts.get("label") is not None:
            secret["label"] = opts["label"]
    content: dict[str, str] = secret["content"]
    emit(call, content.get(key) if key else content, opts.get("format"))


@tool("secret-info-get")
def secret_info_get(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format=", "label="))
    sid, secret = _find_secret(store.state, pos[0] if pos else None, opts.get("label"))
    info: dict[str, Any] = {"revision": secret.get("revision", 1), "owner": secret.get("owner")}
    for key in ("label", "description", "expire", "rotate"):
        if secret.get(key):
            info["expiry" if key == "expire" else "rotation" if key == "rotate" else key] = secret[key]
    emit(call, {_secret_bare(sid): info}, opts.get("format"))


@tool("secret-ids")
def secret_ids(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("format="))
    _no_extra(pos)
    emit(call, sorted(store.state.get("secrets") or {}), opts.get("format"))


@tool("secret-remove")
def secret_remove(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("revision="))
    if not pos:
        raise ToolError("missing secret URI", 2)
    with store.edit() as state:
        secrets: dict[str, Any] = state.setdefault("secrets", {})
        sid = _secret_uri(pos[0])
        if sid in secrets and "revision" not in opts:
            del secrets[sid]


@tool("secret-grant")
def secret_grant(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("r|relation=", "unit="))
    if not pos:
        raise ToolError("missing secret URI", 2)
    _relation_option(store, opts)
    _find_secret(store.state, pos[0], None)


@tool("secret-revoke")
def secret_revoke(store: Store, call: Call) -> None:
    opts, pos = parse_args(call.args, _flags("r|relation=", "unit=", "app="))
    if not pos:
        raise ToolError("missing secret URI", 2)
    if "relation" in opts:
        _relation_option(store, opts)


def _no_extra(pos: list[str]) -> None:
    if pos:
        raise ToolError(f"unrecognized args: {pos}", 2)


# --- entry point ---


def _record(name: str, args: list[str], stdin: str | None, rc: int) -> None:
    """Append one JSON line with a single O_APPEND write, so concurrent calls never interleave."""
    path = os.environ.get(CALLS_ENV)
    if not path:
        return
    line = json.dumps({"name": name, "args": args, "stdin": stdin, "rc": rc}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def _die_unknown(name: str) -> NoReturn:
    raise ToolError(f"{name}: hook tool not implemented by the fake Juju")


def run(name: str, args: list[str]) -> int:
    """Run tool ``name``; print its output; record the call; return its exit code."""
    call = Call(name, args)
    rc = 0
    try:
        impl = TOOLS.get(name)
        if impl is None:
            _die_unknown(name)
        state_path = os.environ.get(STATE_ENV)
        if not state_path:
            raise ToolError(f"{STATE_ENV} is not set: run hooks through tests/harness/hooks.py")
        impl(Store(state_path), call)
    except ToolError as e:
        rc = e.code
        call.out.clear()
        call.err.append(f"ERROR {e.message}")
    sys.stdout.write("".join(call.out))
    err = "\n".join(m for m in call.err if m)
    if err:
        sys.stderr.write(err + "\n")
    sys.stdout.flush()
    _record(name, args, call.stdin, rc)
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
