"""A fake Kubernetes API server for tests: real HTTP, read-only, kube-apiserver-shaped answers.

Tests drive the product's real lightkube client against this server, so whatever the fake says
must be what kube-apiserver would say on the same request: paths, Status bodies, list shape,
selectors, paging, 403/404 wording. It is deliberately read-only: every non-GET request is
recorded and refused, so tests can prove the product never writes to a cluster.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import datetime as dt
import json
import os
import posixpath
import re
import socket
import ssl
import struct
import sys
import threading
import traceback
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from .resources import DEFAULT_RESOURCES, ResourceType, check_registry

JSON = "application/json"
TLS_DIR = Path(__file__).resolve().parent / "tls"
"""Test-only CA and server certificate (for 127.0.0.1) used by ``FakeKube(tls=True)``."""
NotFoundBody = Literal["text", "status"]

_EPOCH = "2024-01-01T00:00:00Z"
_FIRST_RESOURCE_VERSION = 1000
_WHITESPACE = " \t\r\n"


# --------------------------------------------------------------------------- public records


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it, so tests can assert what the product asked for."""

    method: str
    path: str
    query: dict[str, list[str]]


@dataclass
class Fault:
    """A misbehaviour injected on requests whose target contains ``match``.

    ``match`` is searched in the request target (path plus ``?query``), so "/configmaps" hits
    every configmap request and "continue=" only the second and later pages of a chunked list.
    """

    match: str
    delay: float = 0.0
    status: int | None = None
    reset: bool = False
    truncate: bool = False
    body: bytes | None = None
    """Answer 200 with this text/html body (a proxy's page where the API's JSON belongs)."""
    times: int | None = None
    hits: int = 0
    """How many requests this fault has been applied to so far."""

    def active(self) -> bool:
        """Whether the fault still applies (``times`` not used up)."""
        return self.times is None or self.hits < self.times


@dataclass(frozen=True)
class _Rule:
    """A permission denial; RBAC is allow-only, so the fake models what is missing."""

    resource: str
    group: str
    namespace: str | None
    verbs: frozenset[str]


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    chunk: int = 0
    """Write the body in pieces of this size (0: at once), `pause` seconds apart (a slow upstream)."""
    pause: float = 0.0


@dataclass
class PodPort:
    """What a pod's port answers through the API server's pod proxy (`pods/<name>:<port>/proxy/...`).

    The defaults are ztunnel's stats server (istio/ztunnel src/metrics/server.rs): `/metrics`
    and `/stats/prometheus`, any other path 404 with an empty body, text/plain, and a
    gzip-compressed body when the client accepts gzip (tower-http CompressionLayer).
    """

    body: bytes = b""
    status: int = 200
    content_type: str = "text/plain; charset=utf-8"
    paths: tuple[str, ...] = ("/metrics", "/stats/prometheus")
    gzip: bool = True
    chunk: int = 64 * 1024
    pause: float = 0.0
    """Seconds between body pieces: a slow (or stalled) pod."""
    _gzipped: bytes | None = field(default=None, repr=False, compare=False)


# --------------------------------------------------------------------------- Status bodies

_REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

# What kube-apiserver (or the client-go error constructors it uses) says for these codes.
_FAULT_MESSAGES: dict[int, str] = {
    401: "Unauthorized",
    404: "the server could not find the requested resource",
    410: (
        "The provided continue parameter is too old to display a consistent list result. "
        "You can start a new list without the continue parameter."
    ),
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: fault injected by FakeKube",
    503: "the server is currently unable to handle the request",
    504: "Timeout: request did not complete within requested timeout - context deadline exceeded",
}


def _dump(body: Any, *, sort_keys: bool = False) -> bytes:
    """Compact JSON with the trailing newline kube-apiserver's encoder writes."""
    return json.dumps(body, separators=(",", ":"), sort_keys=sort_keys).encode() + b"\n"


def _status(
    code: int,
    message: str,
    *,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> _Response:
    """A failure ``Status`` body, field for field as metav1.Status serialises."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    body["message"] = message
    reason = _REASONS.get(code, "") if reason is None else reason
    if reason:
        body["reason"] = reason
    if details is not None:
        body["details"] = {k: v for k, v in details.items() if v not in ("", None)}
    body["code"] = code
    return _Response(code, _dump(body), JSON, dict(headers or {}))


def _bad_request(message: str) -> _Response:
    return _status(400, message)


def _fault_response(code: int) -> _Response:
    message = _FAULT_MESSAGES.get(code, f"fault injected by FakeKube (HTTP {code})")
    details: dict[str, Any] | None = None
    headers: dict[str, str] = {}
    if code == 500:
        details = {"causes": [{"message": "fault injected by FakeKube"}]}
    elif code == 429:
        details = {"retryAfterSeconds": 1}
        headers["Retry-After"] = "1"
    return _status(code, message, details=details, headers=headers)


# --------------------------------------------------------------------------- label selectors


class SelectorError(ValueError):
    """A label or field selector kube-apiserver would reject with 400 BadRequest."""


_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_SPECIAL = "=!(),<>"
_TWO_CHAR_TOKENS = {"!=": "NEQ", "==": "DEQ"}
_ONE_CHAR_TOKENS = {"!": "NOT", "(": "LPAREN", ")": "RPAREN", ",": "COMMA", "=": "EQ", ">": "GT", "<": "LT"}
_OPERATOR_TOKENS = {
    "IN": "in",
    "NOTIN": "notin",
    "EQ": "=",
    "DEQ": "==",
    "NEQ": "!=",
    "GT": "gt",
    "LT": "lt",
}


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector (``key op values``)."""

    key: str
    operator: str
    """One of: exists, !, in, notin, =, ==, !=, gt, lt."""
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Same truth table as k8s.io/apimachinery labels.Requirement.Matches."""
        present = self.key in labels
        op = self.operator
        if op == "exists":
            return present
        if op == "!":
            return not present
        if op in ("in", "=", "=="):
            return present and labels[self.key] in self.values
        if op in ("notin", "!="):
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        try:
            have, want = int(labels[self.key]), int(self.values[0])
        except ValueError:
            return False
        return have > want if op == "gt" else have < want


def _label_key_error(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) > 2:
        return "a qualified name must consist of alphanumeric characters, '-', '_' or '.'"
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            return "prefix part must be non-empty"
        if len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix):
            return "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


def _lex_labels(text: str) -> list[tuple[str, str]]:
    """Tokenise like apimachinery's selector lexer (longest special-symbol match)."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in _WHITESPACE:
            i += 1
        elif char in _SPECIAL:
            pair = text[i : i + 2]
            if pair in _TWO_CHAR_TOKENS:
                tokens.append((_TWO_CHAR_TOKENS[pair], pair))
                i += 2
            else:
                tokens.append((_ONE_CHAR_TOKENS[char], char))
                i += 1
        else:
            j = i
            while j < len(text) and text[j] not in _WHITESPACE and text[j] not in _SPECIAL:
                j += 1
            word = text[i:j]
            tokens.append(({"in": "IN", "notin": "NOTIN"}.get(word, "ID"), word))
            i = j
    tokens.append(("END", ""))
    return tokens


class _LabelParser:
    """Recursive-descent parser mirroring k8s.io/apimachinery/pkg/labels/selector.go."""

    def __init__(self, text: str) -> None:
        self._tokens = _lex_labels(text)
        self._pos = 0

    def _peek(self, values: bool = False) -> tuple[str, str]:
        kind, literal = self._tokens[self._pos]
        if values and kind in ("IN", "NOTIN"):
            kind = "ID"
        return kind, literal

    def _next(self, values: bool = False) -> tuple[str, str]:
        token = self._peek(values)
        self._pos = min(self._pos + 1, len(self._tokens) - 1)
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self._peek(values=True)
            if kind == "END":
                return requirements
            if kind not in ("ID", "NOT"):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            requirements.append(self._requirement())
            kind, literal = self._next(values=True)
            if kind == "END":
                return requirements
            if kind != "COMMA":
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self._peek(values=True)
            if kind not in ("ID", "NOT"):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        operator = ""
        kind, literal = self._next(values=True)
        if kind == "NOT":
            operator = "!"
            kind, literal = self._next(values=True)
        if kind != "ID":
            raise SelectorError(f"found '{literal}', expected: identifier")
        key = literal
        error = _label_key_error(key)
        if error:
            raise SelectorError(f'key: Invalid value: "{key}": {error}')
        if self._peek(values=True)[0] in ("END", "COMMA") and operator != "!":
            operator = "exists"
        if operator in ("!", "exists"):
            return Requirement(key, operator)
        kind, literal = self._next()
        if kind not in _OPERATOR_TOKENS:
            raise SelectorError(f"found '{literal}', expected: {_BINARY_OPERATORS}")
        operator = _OPERATOR_TOKENS[kind]
        values = self._set_values() if operator in ("in", "notin") else self._exact_value()
        return _new_requirement(key, operator, values)

    def _exact_value(self) -> list[str]:
        if self._peek(values=True)[0] in ("END", "COMMA"):
            return [""]
        kind, literal = self._next(values=True)
        if kind != "ID":
            raise SelectorError(f"found '{literal}', expected: identifier")
        return [literal]

    def _set_values(self) -> list[str]:
        kind, literal = self._next(values=True)
        if kind != "LPAREN":
            raise SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self._peek(values=True)
        if kind == "RPAREN":
            self._next(values=True)
            return [""]
        if kind not in ("ID", "COMMA"):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self._identifiers()
        kind, _ = self._next(values=True)
        if kind != "RPAREN":
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def _identifiers(self) -> list[str]:
        values: list[str] = []
        while True:
            kind, literal = self._next(values=True)
            if kind == "ID":
                values.append(literal)
                kind2, literal2 = self._peek(values=True)
                if kind2 == "RPAREN":
                    return values
                if kind2 != "COMMA":
                    raise SelectorError(f"found '{literal2}', expected: ',' or ')'")
            elif kind == "COMMA":
                if not values:
                    values.append("")
                kind2, _ = self._peek(values=True)
                if kind2 == "RPAREN":
                    values.append("")
                    return values
                if kind2 == "COMMA":
                    self._next(values=True)
                    values.append("")
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")


def _new_requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """Validate like labels.NewRequirement."""
    unique = tuple(sorted(set(values)))
    if operator in ("in", "notin") and not unique:
        raise SelectorError("values: Invalid value: for 'in', 'notin' operators, values set can't be empty")
    if operator in ("=", "==", "!=") and len(unique) != 1:
        raise SelectorError("values: Invalid value: exact-match compatibility requires one single value")
    if operator in ("gt", "lt"):
        if len(unique) != 1:
            raise SelectorError(
                "values: Invalid value: for 'Gt', 'Lt' operators, exactly one value is required"
            )
        try:
            int(unique[0])
        except ValueError:
            raise SelectorError(
                f"values[0]: Invalid value: \"{unique[0]}\": for 'Gt', 'Lt' operators, the value must be an integer"
            ) from None
    for index, value in enumerate(unique):
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            raise SelectorError(
                f'values[{index}][{key}]: Invalid value: "{value}": a valid label must be an empty string or '
                "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character"
            )
    return Requirement(key, operator, unique)


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse a ``labelSelector`` query value; an empty string selects everything."""
    return _LabelParser(text).parse()


# --------------------------------------------------------------------------- field selectors


def _split_unescaped_commas(text: str) -> list[str]:
    terms: list[str] = []
    start = 0
    escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _unescape_field_value(value: str) -> str:
    out: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(char)}")
        else:
            out.append(char)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    """Parse a ``fieldSelector`` into (field, operator, value) terms like fields.ParseSelector."""
    terms: list[tuple[str, str, str]] = []
    if not text:
        return terms
    for part in sorted(_split_unescaped_commas(text)):
        if not part:
            continue
        for i in range(len(part)):
            operator = next((op for op in ("!=", "==", "=") if part.startswith(op, i)), None)
            if operator is not None:
                value = _unescape_field_value(part[i + len(operator) :])
                terms.append((part[:i], "!=" if operator == "!=" else "=", value))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    return terms


_FIELD_DEFAULTS = {"spec.hostNetwork": "false", "spec.unschedulable": "false"}


def _field_value(obj: Mapping[str, Any], label: str) -> str:
    """The value kube-apiserver indexes for a selectable field of ``obj``."""
    meta = obj.get("metadata") or {}
    if label == "metadata.name":
        return str(meta.get("name") or "")
    if label == "metadata.namespace":
        return str(meta.get("namespace") or "")
    current: Any = obj
    for part in label.split("."):
        current = current.get(part) if isinstance(current, Mapping) else None
    if isinstance(current, bool):
        return "true" if current else "false"
    if current is None:
        return _FIELD_DEFAULTS.get(label, "")
    return str(current)


# --------------------------------------------------------------------------- continue tokens


def encode_continue(start: str, resource_version: int) -> str:
    """Encode a continue token the way the etcd3 storage does (raw urlsafe base64 of JSON)."""
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": resource_version, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[str, int]:
    """Return (start key, resourceVersion); raise ValueError with the apiserver's wording."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", token):
        raise ValueError("continue key is not valid: illegal base64 data")
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded: Any = json.loads(data)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"continue key is not valid: {exc}") from None
    if not isinstance(decoded, dict):
        raise ValueError("continue key is not valid: not a JSON object")
    token_data = cast(dict[str, Any], decoded)
    version = token_data.get("v")
    if version != "meta.k8s.io/v1":
        raise ValueError(
            f'continue key is not valid: server does not recognize this encoded version "{version}"'
        )
    rv = token_data.get("rv")
    if not isinstance(rv, int) or isinstance(rv, bool) or rv == 0:
        raise ValueError(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        )
    start = token_data.get("start")
    if not isinstance(start, str) or not start:
        raise ValueError("continue key is not valid: encoded start key empty (version meta.k8s.io/v1)")
    key = start if start.startswith("/") else "/" + start
    if posixpath.normpath(key) != key:
        raise ValueError(f"continue key is not valid: {start}")
    return key[1:], rv


# --------------------------------------------------------------------------- loading objects


def _jsonable(value: Any) -> Any:
    """Turn YAML-loaded data into plain JSON types (YAML turns bare timestamps into datetimes)."""
    if isinstance(value, Mapping):
        mapping = cast(Mapping[Any, Any], value)
        return {str(k): _jsonable(v) for k, v in mapping.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in cast(Iterable[Any], value)]
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot serve a {type(value).__name__} value as JSON: {value!r}")


def load_objects(*paths: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read Kubernetes objects from YAML/JSON files or directories (recursively, sorted)."""
    documents: list[dict[str, Any]] = []
    for base in map(Path, paths):
        if not base.exists():
            raise FileNotFoundError(base)
        if base.is_dir():
            files = sorted(
                p for p in base.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json")
            )
        else:
            files = [base]
        for file in files:
            text = file.read_text(encoding="utf-8")
            docs: list[Any] = [json.loads(text)] if file.suffix == ".json" else list(yaml.safe_load_all(text))
            for doc in docs:
                if doc is None:
                    continue
                if not isinstance(doc, dict):
                    raise ValueError(f"{file}: expected a mapping, got {type(doc).__name__}")
                documents.append(cast(dict[str, Any], doc))
    return documents


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Kube version ordering: GA > beta > alpha, then higher numbers (v2 > v1 > v1beta1)."""
    found = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not found:
        return (-1, 0, 0, version)
    stage = {"alpha": 0, "beta": 1}.get(found.group(2) or "", 2)
    return (stage, int(found.group(1)), int(found.group(3) or 0), version)


# --------------------------------------------------------------------------- the fake


class FakeKube:
    """An in-process, read-only fake kube-apiserver speaking real HTTP on 127.0.0.1."""

    username = "system:serviceaccount:test:test"
    """The user named in 403 messages (what the product's service account would be)."""

    def __init__(
        self,
        objects: Iterable[Mapping[str, Any]] = (),
        *,
        git_version: str = "v1.31.0",
        not_found_body: NotFoundBody = "text",
        resources: Iterable[ResourceType] = DEFAULT_RESOURCES,
        tls: bool = False,
    ) -> None:
        """Create a stopped server holding ``objects``.

        ``tls`` serves HTTPS with the test certificate in ``tls/`` and makes
        ``write_kubeconfig`` name its CA, as an in-cluster client has the service account's
        ``ca.crt``; otherwise plain HTTP with ``insecure-skip-tls-verify``.

        ``not_found_body`` picks how a path that no resource type serves (an absent CRD, an
        unserved CRD version) answers: "text" is ``404 page not found`` as text/plain, what
        released kube-apiservers send (lightkube then raises a bare httpx2.HTTPStatusError,
        not ApiError); "status" is the JSON Status newer releases send
        (kubernetes/kubernetes#138219).
        """
        self._lock = threading.RLock()
        self._types: list[ResourceType] = list(resources)
        check_registry(self._types)
        self._installed: set[tuple[str, str, str]] = {
            (rt.group, v, rt.plural) for rt in self._types for v in rt.versions
        }
        self._store: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._rv = _FIRST_RESOURCE_VERSION
        self._rules: list[_Rule] = []
        self._faults: list[Fault] = []
        self._requests: list[RecordedRequest] = []
        self._errors: list[str] = []
        self._pod_ports: dict[tuple[str, str, str], PodPort] = {}
        self._accept_encoding = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.git_version = git_version
        self.not_found_body: NotFoundBody = not_found_body
        self.tls = tls
        self.add(*objects)

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_paths(cls, *paths: str | os.PathLike[str], **kwargs: Any) -> FakeKube:
        """Build a fake from YAML/JSON files or directories, e.g. a ``kubectl get -o yaml`` dump."""
        return cls(load_objects(*paths), **kwargs)

    def add(self, *objects: Mapping[str, Any]) -> None:
        """Store objects (replacing same-named ones); ``List`` documents are expanded."""
        with self._lock:
            for obj in self._expand(objects):
                self._put(obj)

    def register(self, resource: ResourceType) -> None:
        """Teach the fake another resource type (all its versions installed)."""
        with self._lock:
            check_registry([*self._types, resource])
            self._types.append(resource)
            self._installed.update((resource.group, v, resource.plural) for v in resource.versions)

    def _expand(self, objects: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for obj in objects:
            if not isinstance(obj, Mapping):
                raise TypeError(f"expected a Kubernetes object mapping, got {type(obj).__name__}")
            kind = obj.get("kind")
            items = obj.get("items")
            api_version = obj.get("apiVersion")
            group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
            is_list = isinstance(kind, str) and kind.endswith("List") and isinstance(items, list)
            if is_list and self._type_for_kind(group, cast(str, kind)) is None:
                yield from self._expand(self._list_items(obj, cast(str, kind), cast(list[Any], items)))
            else:
                yield obj

    def _list_items(self, obj: Mapping[str, Any], kind: str, items: list[Any]) -> list[Mapping[str, Any]]:
        """Items of a List; raw ``<Kind>List`` API dumps omit apiVersion/kind on built-in items."""
        out: list[Mapping[str, Any]] = []
        item_kind = kind[: -len("List")]
        for item in items:
            if not isinstance(item, Mapping):
                raise TypeError(f"{kind} item is not a mapping: {item!r}")
            entry = dict(cast(Mapping[str, Any], item))
            if item_kind and "kind" not in entry:
                entry["kind"] = item_kind
            if "apiVersion" not in entry and "apiVersion" in obj:
                entry["apiVersion"] = obj["apiVersion"]
            out.append(entry)
        return out

    def _type_for_kind(self, group: str, kind: str) -> ResourceType | None:
        return next((rt for rt in self._types if rt.group == group and rt.kind == kind), None)

    def _put(self, obj: Mapping[str, Any]) -> None:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError(f"object needs string apiVersion and kind: {dict(obj)!r:.200}")
        group, _, version = api_version.rpartition("/")
        rt = self._type_for_kind(group, kind)
        if rt is None:
            raise ValueError(f"unknown resource type {kind} ({api_version}); add it with FakeKube.register()")
        if version not in rt.versions:
            raise ValueError(f"{kind}: version {version} not in {rt.versions}; register it")
        data: dict[str, Any] = _jsonable(obj)
        meta = data.setdefault("metadata", {})
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
            raise ValueError(f"{kind} without metadata.name")
        meta = cast(dict[str, Any], meta)
        name: str = meta["name"]
        for field_name in ("labels", "annotations"):
            values = meta.get(field_name) or {}
            if not isinstance(values, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in cast(dict[Any, Any], values).items()
            ):
                # The real API rejects these; an unquoted YAML `true` or `1` is the usual cause.
                raise ValueError(
                    f"{kind} {name}: metadata.{field_name} values must all be strings: {values!r}"
                )
        if rt.namespaced:
            namespace = meta.get("namespace") or "default"
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = ""
        self._rv += 1
        given_rv = meta.get("resourceVersion")
        if isinstance(given_rv, str) and given_rv.isdigit():
            self._rv = max(self._rv, int(given_rv))
        else:
            meta["resourceVersion"] = str(self._rv)
        meta.setdefault(
            "uid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"fakekube:{group}/{kind}/{namespace}/{name}"))
        )
        meta.setdefault("creationTimestamp", _EPOCH)
        if group == "" and kind == "Namespace":
            # kube-apiserver always stamps this label and a phase on namespaces.
            labels = meta.get("labels") or {}
            labels.setdefault("kubernetes.io/metadata.name", name)
            meta["labels"] = labels
            data.setdefault("spec", {"finalizers": ["kubernetes"]})
            data.setdefault("status", {"phase": "Active"})
        self._store.setdefault((group, kind), {})[(namespace, name)] = data
        if rt.namespaced:
            self._ensure_namespace(namespace)

    def _ensure_namespace(self, namespace: str) -> None:
        """A real cluster cannot hold objects in a namespace that does not exist."""
        if self._type_for_kind("", "Namespace") is None:
            return
        if ("", namespace) not in self._store.get(("", "Namespace"), {}):
            self._put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeKube:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        with self._lock:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = _Server(self)
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fakekube", daemon=True
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving now, cutting keep-alive connections and interrupting delay faults."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        server = self._server
        if server is None:
            raise RuntimeError("FakeKube is not started")
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{server.server_port}"

    def write_kubeconfig(
        self,
        path: str | os.PathLike[str],
        namespace: str = "default",
        ca: str | os.PathLike[str] | None = None,
    ) -> Path:
        """Write a kubeconfig (context ``fake``, dummy bearer token) pointing here.

        With TLS it names the CA (``ca``, default the one that signed the server's
        certificate); over plain http it skips verification, which spares the client
        loading the system CA bundle (~20 ms per process) that an in-cluster client never
        loads (it reads one ca.crt).
        """
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls:
            cluster["certificate-authority"] = str(ca or TLS_DIR / "ca.crt")
        else:
            cluster["insecure-skip-tls-verify"] = True
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": "fake", "cluster": cluster}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [
                {"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}
            ],
            "current-context": "fake",
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return target

    # ----------------------------------------------------------------- cluster shape

    def _registered(self, group: str, version: str, plural: str) -> ResourceType:
        for rt in self._types:
            if rt.group == group and rt.plural == plural and version in rt.versions:
                return rt
        raise ValueError(f"no registered resource {plural} in {group or 'core'}/{version}")

    def uninstall(self, group: str, version: str, plural: str) -> None:
        """Stop serving ``group/version/plural`` (a CRD absent, or without that version)."""
        with self._lock:
            self._registered(group, version, plural)
            self._installed.discard((group, version, plural))

    def install(self, group: str, version: str, plural: str) -> None:
        """Serve ``group/version/plural`` again."""
        with self._lock:
            self._registered(group, version, plural)
            self._installed.add((group, version, plural))

    def forbid(
        self,
        plural: str,
        group: str = "",
        namespace: str | None = None,
        *,
        verbs: Iterable[str] = ("get", "list", "watch"),
    ) -> None:
        """Deny reads of ``plural`` and its subresources (or only ``"daemonsets/status"``) with a real 403.

        With ``namespace`` only that namespace is denied, plus the all-namespaces list of the
        resource: RBAC cannot grant a cluster-wide list while withholding one namespace.
        """
        with self._lock:
            self._rules.append(_Rule(plural, group, namespace, frozenset(verbs)))

    def allow(self, plural: str, group: str = "", namespace: str | None = None) -> None:
        """Undo ``forbid``: the rules for that namespace, or every rule of the resource if None."""
        with self._lock:
            self._rules = [
                r
                for r in self._rules
                if not (
                    r.resource == plural
                    and r.group == group
                    and (namespace is None or r.namespace == namespace)
                )
            ]

    def fault(
        self,
        match: str,
        *,
        delay: float = 0,
        status: int | None = None,
        reset: bool = False,
        truncate: bool = False,
        body: bytes | None = None,
        times: int | None = None,
    ) -> Fault:
        """Inject a fault on requests whose target contains ``match``; first active fault wins.

        ``delay`` sleeps before answering; ``status`` answers that code with a Status body;
        ``reset`` drops the connection with a TCP RST and no answer; ``truncate`` sends the full
        Content-Length but only half the body, then closes; ``body`` answers 200 with that
        text/html body. ``times`` limits how many requests it hits (None: all).
        """
        if status is not None and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error code (400-599)")
        if reset and (status is not None or truncate or body is not None):
            raise ValueError("reset sends no answer; it cannot be combined with status, truncate or body")
        if body is not None and status is not None:
            raise ValueError("body answers 200; it cannot be combined with status")
        if delay < 0 or (times is not None and times < 0):
            raise ValueError("delay and times must not be negative")
        injected = Fault(
            match, delay=delay, status=status, reset=reset, truncate=truncate, body=body, times=times
        )
        with self._lock:
            self._faults.append(injected)
        return injected

    def serve_pod_port(self, namespace: str, pod: str, port: int | str, answer: PodPort) -> None:
        """Make ``GET .../pods/<pod>:<port>/proxy/<path>`` reach ``answer`` (the Pod object must exist)."""
        with self._lock:
            self._pod_ports[(namespace, pod, str(port))] = answer

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    @property
    def server_errors(self) -> list[str]:
        """Tracebacks of bugs in the fake itself (answered as 500); tests may assert it is empty."""
        with self._lock:
            return list(self._errors)

    # ----------------------------------------------------------------- request plumbing

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _note_error(self, text: str) -> None:
        with self._lock:
            self._errors.append(text)

    def _take_fault(self, target: str) -> Fault | None:
        with self._lock:
            for injected in self._faults:
                if injected.match in target and injected.active():
                    injected.hits += 1
                    return injected
        return None

    def _respond(
        self, method: str, path: str, query: dict[str, list[str]], accept_encoding: str = ""
    ) -> _Response:
        """Build the answer to one request; bugs in the fake become a 500 and are remembered."""
        try:
            with self._lock:
                self._accept_encoding = accept_encoding  # read by the pod proxy, under the lock
                if method != "GET":
                    return _status(
                        405,
                        f"{method} is not supported by FakeKube: the product must only read from the cluster",
                    )
                return self._get(path, query)
        except Exception as exc:
            self._note_error(traceback.format_exc())
            return _status(500, f"Internal error occurred: FakeKube bug: {exc!r}")

    # ----------------------------------------------------------------- routing

    def _get(self, path: str, query: dict[str, list[str]]) -> _Response:
        segments = [unquote(s) for s in path.split("/") if s]
        if not segments:
            return self._json(200, {"paths": self._root_paths()})
        head = segments[0]
        if segments == ["version"]:
            return self._json(200, self._version_info())
        if len(segments) == 1 and head in ("healthz", "livez", "readyz"):
            return _Response(200, b"ok", "text/plain; charset=utf-8")
        if head == "api":
            if len(segments) == 1:
                return self._json(200, self._api_versions())
            group, version, rest = "", segments[1], segments[2:]
        elif head == "apis":
            if len(segments) == 1:
                return self._json(200, self._group_list())
            if len(segments) == 2:
                return self._group_discovery(segments[1])
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            return self._not_found_path()
        if not rest:
            return self._resource_discovery(group, version)
        return self._resource_request(group, version, rest, query)

    def _resource_request(
        self, group: str, version: str, rest: list[str], query: dict[str, list[str]]
    ) -> _Response:
        # Mirrors apiserver's RequestInfoFactory: /namespaces/{ns}/... scopes the request, and
        # GET /namespaces/{name} is a namespace whose request namespace is its own name.
        namespace = ""
        parts = rest
        if parts[0] == "namespaces" and len(parts) > 1:
            namespace = parts[1]
            if len(parts) > 2 and parts[2] not in ("status", "finalize"):
                parts = parts[2:]
        if group == "" and len(parts) >= 3 and parts[0] == "pods" and parts[2] == "proxy" and namespace:
            return self._pod_proxy(namespace, parts[1], "/" + "/".join(parts[3:]), query)
        if len(parts) > 3:
            return self._no_route(group, version)
        resource = parts[0]
        name = parts[1] if len(parts) > 1 else ""
        subresource = parts[2] if len(parts) > 2 else ""
        watch = (query.get("watch") or [""])[0] in ("true", "1")
        verb = "get" if name else ("watch" if watch else "list")

        denied = self._authorize(group, resource, subresource, namespace, name, verb)
        if denied is not None:
            return denied

        rt = self._served_type(group, version, resource)
        if rt is None:
            return self._no_route(group, version)
        namespace_quirk = rt.group == "" and rt.plural == "namespaces" and name == namespace
        if rt.namespaced and not namespace and verb == "get":
            return self._no_route(group, version)
        if not rt.namespaced and namespace and not namespace_quirk:
            return self._no_route(group, version)
        if subresource and subresource not in rt.subresources:
            if rt.builtin:
                return self._no_route(group, version)
            return self._object_not_found(rt, name)
        if watch:
            return _status(405, "watch is not supported by FakeKube")
        if verb == "get":
            return self._get_object(rt, version, "" if namespace_quirk else namespace, name)
        return self._list(rt, version, namespace, query)

    def _pod_proxy(self, namespace: str, target: str, path: str, query: dict[str, list[str]]) -> _Response:
        """The API server's pod proxy (connect verb `get` on `pods/proxy`), as kube-apiserver answers it."""
        name, _, port = target.partition(":")
        denied = self._authorize("", "pods", "proxy", namespace, name, "get")
        if denied is not None:
            return denied
        pod = self._store.get(("", "Pod"), {}).get((namespace, name))
        if pod is None:
            return _status(404, f'pods "{name}" not found', details={"name": name, "kind": "pods"})
        ip = str((pod.get("status") or {}).get("podIP") or "10.1.0.9")
        answer = self._pod_ports.get((namespace, name, port or "80"))
        if not port.isdigit() or answer is None:
            # Nothing listens there; a named port is not resolved for pods (the address is ip:name).
            reason = "connect: connection refused" if port.isdigit() or not port else "unknown port"
            return _status(503, f"error trying to reach service: dial tcp {ip}:{port or 80}: {reason}")
        if path not in answer.paths:
            return _Response(404, b"", "", {})
        body, headers = answer.body, {}
        accepted = self._accept_encoding.lower()
        if answer.gzip and body and "gzip" in accepted:
            if answer._gzipped is None:
                import gzip

                answer._gzipped = gzip.compress(body, compresslevel=6, mtime=0)
            body = answer._gzipped
            headers["Content-Encoding"] = "gzip"
        return _Response(
            answer.status, body, answer.content_type, headers, chunk=answer.chunk, pause=answer.pause
        )

    def _served_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        for rt in self._types:
            if rt.group == group and rt.plural == plural and version in rt.versions:
                return rt if (group, version, plural) in self._installed else None
        return None

    def _builtin_group_version_served(self, group: str, version: str) -> bool:
        return any(
            rt.builtin and rt.group == group and (group, version, rt.plural) in self._installed
            for rt in self._types
        )

    def _no_route(self, group: str, version: str) -> _Response:
        """404 for a path no handler serves, worded by whichever apiserver layer would answer."""
        if self._builtin_group_version_served(group, version):
            # go-restful inside kube-apiserver: the group/version exists, the route does not.
            return _status(404, "the server could not find the requested resource", details={})
        # CRD paths and unknown group/versions fall through to the final not-found handler.
        return self._not_found_path()

    def _not_found_path(self) -> _Response:
        if self.not_found_body == "status":
            return _status(404, "the server could not find the requested resource")
        return _Response(
            404, b"404 page not found\n", "text/plain; charset=utf-8", {"X-Content-Type-Options": "nosniff"}
        )

    def _authorize(
        self, group: str, resource: str, subresource: str, namespace: str, name: str, verb: str
    ) -> _Response | None:
        """Return a 403 worded like the RBAC authorizer's, or None when allowed."""
        full = f"{resource}/{subresource}" if subresource else resource
        for rule in self._rules:
            # A role missing "daemonsets" realistically misses "daemonsets/status" too.
            if rule.group != group or rule.resource not in (full, resource) or verb not in rule.verbs:
                continue
            cluster_wide_list = not namespace and verb in ("list", "watch")
            if rule.namespace is None or rule.namespace == namespace or cluster_wide_list:
                break
        else:
            return None
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        why = f'User "{self.username}" cannot {verb} resource "{full}" in API group "{group}" {scope}'
        group_resource = f"{resource}.{group}" if group else resource
        subject = f'{group_resource} "{name}"' if name else group_resource
        return _status(
            403, f"{subject} is forbidden: {why}", details={"name": name, "group": group, "kind": resource}
        )

    # ----------------------------------------------------------------- objects

    def _serve(
        self, rt: ResourceType, version: str, obj: Mapping[str, Any], *, in_list: bool
    ) -> dict[str, Any]:
        body = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("apiVersion", "kind")}
        if in_list and rt.builtin:
            # Built-in types' list items carry no apiVersion/kind on the wire; CRs keep them.
            return body
        return {"kind": rt.kind, "apiVersion": rt.api_version(version), **body}

    def _object_not_found(self, rt: ResourceType, name: str) -> _Response:
        return _status(
            404,
            f'{rt.group_resource} "{name}" not found',
            details={"name": name, "group": rt.group, "kind": rt.plural},
        )

    def _get_object(self, rt: ResourceType, version: str, namespace: str, name: str) -> _Response:
        obj = self._store.get((rt.group, rt.kind), {}).get((namespace, name))
        if obj is None:
            return self._object_not_found(rt, name)
        return self._json(200, self._serve(rt, version, obj, in_list=False), sort_keys=not rt.builtin)

    def _list(self, rt: ResourceType, version: str, namespace: str, query: dict[str, list[str]]) -> _Response:
        def first(key: str) -> str:
            return (query.get(key) or [""])[0]

        label_text, field_text = first("labelSelector"), first("fieldSelector")
        try:
            requirements = parse_label_selector(label_text)
            terms = parse_field_selector(field_text)
        except SelectorError as exc:
            return _bad_request(str(exc))
        for label, _, _ in terms:
            if not rt.accepts_field(label):
                return _bad_request(rt.field_error_message(label))
        limit = 0
        if first("limit"):
            try:
                limit = int(first("limit"))
            except ValueError:
                return _bad_request(f'strconv.ParseInt: parsing "{first("limit")}": invalid syntax')
        token = first("continue")
        if token and first("resourceVersion"):
            return _bad_request("specifying resource version is not allowed when using continue")

        resource_version = self._rv
        start = ""
        if token:
            try:
                start, resource_version = decode_continue(token)
            except ValueError as exc:
                return _bad_request(f"invalid continue token: {exc}")

        # Keys as etcd orders them: "<namespace>/<name>" across namespaces, else "<name>".
        def key_of(obj_key: tuple[str, str]) -> str:
            ns, obj_name = obj_key
            return f"{ns}/{obj_name}" if rt.namespaced and not namespace else obj_name

        stored = self._store.get((rt.group, rt.kind), {})
        candidates = sorted(
            (
                (key_of(k), obj)
                for k, obj in stored.items()
                if (not (rt.namespaced and namespace) or k[0] == namespace) and key_of(k) >= start
            ),
            key=lambda pair: pair[0],
        )

        def selected(obj: Mapping[str, Any]) -> bool:
            labels = cast(Mapping[str, str], (obj.get("metadata") or {}).get("labels") or {})
            if not all(req.matches(labels) for req in requirements):
                return False
            return all((_field_value(obj, f) == v) == (op == "=") for f, op, v in terms)

        # The etcd3 storage walk: stop once `limit` items matched; more keys left => continue.
        items: list[Mapping[str, Any]] = []
        last_key = ""
        stopped_at: int | None = None
        for index, (key, obj) in enumerate(candidates):
            if limit > 0 and len(items) >= limit:
                stopped_at = index
                break
            last_key = key
            if selected(obj):
                items.append(obj)

        metadata: dict[str, Any] = {"resourceVersion": str(resource_version)}
        if stopped_at is not None:
            metadata["continue"] = encode_continue(last_key + "\x00", resource_version)
            if not requirements and not terms:
                # Only exact without selectors, so the apiserver omits it otherwise.
                metadata["remainingItemCount"] = len(candidates) - stopped_at
        elif not rt.builtin:
            metadata["continue"] = ""  # unstructured lists always carry the key
        body = {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version(version),
            "metadata": metadata,
            "items": [self._serve(rt, version, obj, in_list=True) for obj in items],
        }
        return self._json(200, body, sort_keys=not rt.builtin)

    # ----------------------------------------------------------------- discovery

    def _json(self, code: int, body: Any, *, sort_keys: bool = False) -> _Response:
        return _Response(code, _dump(body, sort_keys=sort_keys))

    def _version_info(self) -> dict[str, str]:
        found = re.match(r"v(\d+)\.(\d+)", self.git_version)
        major, minor = (found.group(1), found.group(2)) if found else ("", "")
        return {
            "major": major,
            "minor": minor,
            "gitVersion": self.git_version,
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": _EPOCH,
            "goVersion": "go1.22.5",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _group_versions(self, group: str) -> list[str]:
        versions = {
            v
            for rt in self._types
            if rt.group == group
            for v in rt.versions
            if (group, v, rt.plural) in self._installed
        }
        return sorted(versions, key=_version_priority, reverse=True)

    def _groups(self) -> list[str]:
        groups: list[str] = []
        for rt in self._types:
            if rt.group and rt.group not in groups and self._group_versions(rt.group):
                groups.append(rt.group)
        return groups

    def _group_body(self, group: str) -> dict[str, Any]:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in self._group_versions(group)]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def _group_list(self) -> dict[str, Any]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group_body(g) for g in self._groups()],
        }

    def _group_discovery(self, group: str) -> _Response:
        if group not in self._groups():
            return self._not_found_path()
        return self._json(200, {"kind": "APIGroup", "apiVersion": "v1", **self._group_body(group)})

    def _api_versions(self) -> dict[str, Any]:
        server = self._server
        address = f"127.0.0.1:{server.server_port}" if server is not None else ""
        return {
            "kind": "APIVersions",
            "versions": self._group_versions(""),
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }

    def _resource_discovery(self, group: str, version: str) -> _Response:
        resources: list[dict[str, Any]] = []
        for rt in self._types:
            if rt.group != group or (group, version, rt.plural) not in self._installed:
                continue
            resources.append(
                {
                    "name": rt.plural,
                    "singularName": rt.kind.lower(),
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": [
                        "create",
                        "delete",
                        "deletecollection",
                        "get",
                        "list",
                        "patch",
                        "update",
                        "watch",
                    ],
                }
            )
            for sub in rt.subresources:
                resources.append(
                    {
                        "name": f"{rt.plural}/{sub}",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "kind": rt.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        if not resources:
            return self._not_found_path()
        body = {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }
        return self._json(200, body)

    def _root_paths(self) -> list[str]:
        paths = ["/api", "/apis", "/healthz", "/livez", "/readyz", "/version"]
        paths += [f"/api/{v}" for v in self._group_versions("")]
        for group in self._groups():
            paths.append(f"/apis/{group}")
            paths += [f"/apis/{group}/{v}" for v in self._group_versions(group)]
        return sorted(paths)


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers its connections so ``stop()`` can cut them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeKube) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.tls: ssl.SSLContext | None = None
        if fake.tls:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(TLS_DIR / "server.crt", TLS_DIR / "server.key")
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[Any, Any]:
        """Accept; with TLS the handshake runs later, in the connection's own thread."""
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (timeouts, resets) are expected; anything else is a fake bug."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        self.fake._note_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections eventually free their thread
    disable_nagle_algorithm = True  # headers and body go out in separate writes; avoid 40 ms stalls

    @property
    def _fake_server(self) -> _Server:
        return cast(_Server, self.server)

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()  # a client refusing the certificate ends here (OSError)
        super().setup()
        self._fake_server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._fake_server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet; the request log is on FakeKube.requests."""

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_GET
    do_POST = do_GET
    do_PUT = do_GET
    do_PATCH = do_GET
    do_DELETE = do_GET
    do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        fake = self._fake_server.fake
        stopping = fake._stopping
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True  # body not consumed; do not reuse the connection
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
        target = self.path
        split = urlsplit(target)
        query = parse_qs(split.query, keep_blank_values=True)
        fake._record(RecordedRequest(self.command, split.path, query))
        injected = fake._take_fault(target)
        if injected is not None and injected.delay > 0 and stopping.wait(injected.delay):
            self._reset()
            return
        if injected is not None and injected.reset:
            self._reset()
            return
        if injected is not None and injected.status is not None:
            response = _fault_response(injected.status)
        elif injected is not None and injected.body is not None:
            response = _Response(200, injected.body, content_type="text/html")
        else:
            response = fake._respond(self.command, split.path, query, self.headers.get("Accept-Encoding", ""))
        self._send(response, truncate=injected is not None and injected.truncate)

    def _send(self, response: _Response, *, truncate: bool) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            body = response.body[: len(response.body) // 2] if truncate else response.body
            if response.chunk and response.pause:
                self._send_paced(body, response.chunk, response.pause)
            else:
                self.wfile.write(body)
        if truncate:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_paced(self, body: bytes, chunk: int, pause: float) -> None:
        """A slow upstream: the body in pieces, `pause` apart (cut short when the fake stops)."""
        stopping = self._fake_server.fake._stopping
        for start in range(0, len(body), chunk):
            self.wfile.write(body[start : start + chunk])
            self.wfile.flush()
            if stopping.wait(pause):
                self.close_connection = True
                return

    def _reset(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0) and no answer, like a crashed peer or middlebox."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
