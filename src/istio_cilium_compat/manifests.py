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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

from .assemble import build_snapshot
from .helm_values import looks_like_values
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
    return _read(paths).objects


@dataclass
class _Read:
    files: list[Path]
    documents: int = 0
    objects: list[Any] = field(default_factory=list)
    values_files: list[Path] = field(default_factory=list)


def _read(paths: Iterable[str | Path]) -> _Read:
    read = _Read(manifest_files(paths))
    for path in read.files:
        documents = [doc for doc in _parse(path) if doc is not None]
        read.documents += len(documents)
        if documents and all(looks_like_values(doc) for doc in documents):
            read.values_files.append(path)
            continue
        for doc in documents:
            read.objects.extend(_expand(doc))
    return read


@dataclass(frozen=True)
class Loaded:
    """A snapshot of saved manifests, with how much of the input the checks could use."""

    snapshot: Snapshot
    files: int
    """Manifest files read (directories expanded)."""
    documents: int
    """Non-empty YAML/JSON documents in them."""
    objects: int
    """Kubernetes-shaped objects among them (a mapping with apiVersion and kind; Lists expanded)."""
    relevant: int
    """Objects that made it into the snapshot: what the checks read."""
    values_files: tuple[str, ...] = ()
    """Files skipped because they hold Cilium Helm chart values, not Kubernetes objects."""
    replaced: int = 0
    """Cilium objects of the manifests replaced by those rendered from Helm values."""


def relevant_count(snapshot: Snapshot) -> int:
    """Objects a snapshot holds (every collection but `problems`): zero means nothing to check."""
    count = int(snapshot.canonical_k8s)
    for item in fields(snapshot):
        value = getattr(snapshot, item.name)
        if item.name != "problems" and isinstance(value, tuple):
            count += len(value)
    return count


def _kubernetes_shaped(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and isinstance(obj.get("apiVersion"), str)
        and isinstance(obj.get("kind"), str)
    )


def _is_cilium_side(obj: object) -> bool:
    """What a Cilium chart installs and the checks read: cilium-config and the agents."""
    if not isinstance(obj, Mapping):
        return False
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    labels = meta.get("labels")
    labels = labels if isinstance(labels, Mapping) else {}
    kind = obj.get("kind")
    if kind == "ConfigMap":
        return meta.get("name") == "cilium-config"
    return kind in ("DaemonSet", "Pod") and labels.get("k8s-app") == "cilium"


def load(
    paths: Iterable[str | Path],
    *,
    istio_namespace: str | None = None,
    cilium_namespace: str | None = None,
    cilium_objects: Sequence[Mapping[str, Any]] | None = None,
    source: str | None = None,
) -> Loaded:
    """Read saved manifests; `cilium_objects` (rendered Helm values) replace their Cilium side."""
    paths = list(paths)
    # Paused until the raw objects are dropped: resumed earlier, the next young collections
    # would walk every parsed object once more (a quarter of the time on a large dump).
    with _gc_paused():
        read = _read(paths)
        label = source or "manifests: " + ", ".join(str(p) for p in paths)
        snapshot = build_snapshot(
            read.objects, source=label, istio_namespace=istio_namespace, cilium_namespace=cilium_namespace
        )
        relevant = relevant_count(snapshot)
        replaced = 0
        if cilium_objects is not None:
            kept = [o for o in read.objects if not _is_cilium_side(o)]
            replaced = len(read.objects) - len(kept)
            snapshot = build_snapshot(
                [*kept, *cilium_objects],
                source=label,
                istio_namespace=istio_namespace,
                cilium_namespace=cilium_namespace,
            )
        return Loaded(
            snapshot=snapshot,
            files=len(read.files),
            documents=read.documents,
            objects=sum(1 for o in read.objects if _kubernetes_shaped(o)),
            relevant=relevant,
            values_files=tuple(str(p) for p in read.values_files),
            replaced=replaced,
        )


def load_snapshot(
    paths: Iterable[str | Path],
    *,
    istio_namespace: str | None = None,
    cilium_namespace: str | None = None,
) -> Snapshot:
    """A snapshot of a saved cluster."""
    return load(paths, istio_namespace=istio_namespace, cilium_namespace=cilium_namespace).snapshot


def load_values(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Helm values files, read the way Helm reads them (YAML 1.1: `yes`/`on`/`n` are booleans).

    The safe loader runs first (size cap, alias-bomb limit, file and line in errors); then
    PyYAML's YAML 1.1 resolver, extended with Go yaml.v2's `y`/`n`, gives the types Helm sees.
    """
    layers: list[dict[str, Any]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            raise ManifestError(path, "a directory; --cilium-values takes a values file")
        if not path.is_file():
            raise ManifestError(path, "no such file")
        text = _read_text(path)
        with _gc_paused():
            documents = [d for d in _parse_yaml(path, text) if d is not None]
        if not documents:
            layers.append({})  # an empty values file: the chart's defaults
            continue
        if len(documents) > 1 or not isinstance(documents[0], Mapping):
            raise ManifestError(path, "not a Helm values file (expected one YAML mapping)")
        if "apiVersion" in documents[0] and "kind" in documents[0]:
            raise ManifestError(
                path, f"a Kubernetes manifest, not Helm values; pass it with --manifests {path}"
            )
        layers.append(_helm_yaml(path, text))
    return layers


def _helm_yaml(path: Path, text: str) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.load(text, Loader=_helm_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ManifestError(path, f"invalid YAML: {exc}", mark.line + 1 if mark else None) from exc
    return loaded if isinstance(loaded, dict) else {}


@cache
def _helm_loader() -> type[Any]:
    import yaml

    class HelmLoader(yaml.SafeLoader):
        """YAML 1.1 as Go's yaml.v2 (Helm) resolves it: `y`/`n` are booleans too."""

    def construct_bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
        return str(loader.construct_scalar(node)).lower() in ("y", "yes", "true", "on")

    HelmLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
    HelmLoader.add_constructor("tag:yaml.org,2002:bool", construct_bool)
    return HelmLoader
