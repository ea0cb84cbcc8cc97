"""Build a `Snapshot` from saved YAML/JSON (what `kubectl get -o yaml|json` writes).

Files are untrusted input: size-capped, binary refused, YAML parsed by a loader
that neither constructs objects from tags nor expands alias bombs. yaml-rs is
used because it parses Kubernetes dumps an order of magnitude faster than
PyYAML; JSON goes through the standard library.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .assemble import build_snapshot
from .snapshot import Snapshot

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest manifest file read; a 5,000-namespace cluster dump is about 15 MiB."""
MAX_ALIAS_EVENTS = 1_000_000
SUFFIXES = (".yaml", ".yml", ".json")
_LINE = re.compile(r"line (\d+)")


class ManifestError(Exception):
    """A manifest could not be read; the message names the file (and line)."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, and manifest files under directories named, in a stable order."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise ManifestError(path, "no such file or directory")
    return files


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ManifestError(path, f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(path, exc.strerror or str(exc)) from exc
    if b"\x00" in data:
        raise ManifestError(path, "binary data, not YAML or JSON")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(path, f"not UTF-8 text (byte {exc.start})") from exc


def _parse_yaml(path: Path, text: str) -> list[Any]:
    try:
        import yaml_rs
    except ImportError:  # pragma: no cover - platform without a yaml-rs wheel
        return _parse_yaml_slow(path, text)
    try:
        loaded = yaml_rs.loads(
            text,
            parse_datetime=False,
            duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.LastWins,
            alias_limits=yaml_rs.AliasLimits(max_total_replayed_events=MAX_ALIAS_EVENTS),
        )
    except (ValueError, RecursionError) as exc:
        message = str(exc).strip()
        first = message.splitlines()[0] if message else "invalid YAML"
        last = message.splitlines()[-1].strip() if message else ""
        match = _LINE.search(first)
        reason = f"invalid YAML: {last}" if match and last and last != first else f"invalid YAML: {first}"
        raise ManifestError(path, reason, int(match[1]) if match else None) from exc
    # Several documents come back as a list; `_expand` flattens lists anyway.
    return loaded if isinstance(loaded, list) else [loaded]


def _parse_yaml_slow(path: Path, text: str) -> list[Any]:
    import yaml

    try:
        return list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ManifestError(path, f"invalid YAML: {exc}", mark.line + 1 if mark else None) from exc


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a parser builds a large tree of containers.

    Every container the parser allocates counts towards a collection, and each full
    collection walks the whole tree built so far: on a 20 MiB dump that is about half the
    parse time. Nothing is lost: any cycle made meanwhile is collected once it is back on.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parse(path: Path) -> list[Any]:
    text = _read_text(path)
    with _gc_paused():
        return _parse_text(path, text)


def _parse_text(path: Path, text: str) -> list[Any]:
    if path.suffix.lower() == ".json":
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            raise ManifestError(path, f"invalid JSON: {exc.msg}", exc.lineno) from exc
        except RecursionError as exc:
            raise ManifestError(path, "invalid JSON: nested too deeply") from exc
    return _parse_yaml(path, text)


def _expand(doc: Any, depth: int = 0) -> Iterator[Any]:
    """Flatten `kind: List` (and `*List`) documents into their items."""
    if isinstance(doc, list):
        for item in doc:
            yield from _expand(item, depth)
        return
    if not isinstance(doc, dict):
        return
    kind = doc.get("kind")
    items = doc.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list) and depth < 4:
        item_kind = kind[: -len("List")]
        for item in items:
            if isinstance(item, dict) and "kind" not in item and item_kind:
                item = {**item, "kind": item_kind}
            yield from _expand(item, depth + 1)
        return
    yield doc


def load_objects(paths: Iterable[str | Path]) -> list[Any]:
    """Every Kubernetes object in the given files and directories."""
    objects: list[Any] = []
    for path in manifest_files(paths):
        for doc in _parse(path):
            objects.extend(_expand(doc))
    return objects


def load_snapshot(
    paths: Iterable[str | Path],
    *,
    istio_namespace: str | None = None,
    cilium_namespace: str | None = None,
) -> Snapshot:
    """A snapshot of a saved cluster."""
    paths = list(paths)
    # Paused until the raw objects are dropped: resumed earlier, the next young collections
    # would walk every parsed object once more (a quarter of the time on a large dump).
    with _gc_paused():
        return build_snapshot(
            load_objects(paths),
            source="manifests: " + ", ".join(str(p) for p in paths),
            istio_namespace=istio_namespace,
            cilium_namespace=cilium_namespace,
        )
