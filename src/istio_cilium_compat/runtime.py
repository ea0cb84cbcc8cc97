"""The runtime probe: read what ztunnel itself counted, through the API server's pod proxy.

Configuration says what should happen; ztunnel's `istio_tcp_connections_opened`
counters say what did. For each Ready ztunnel pod this sends one
`GET /api/v1/namespaces/<ns>/pods/<pod>:15020/proxy/metrics` (RBAC: `pods/proxy`
get) and keeps that one family, summed per (reporter, mTLS or not, source,
destination, Service, node) in a `RuntimeSummary`; the rules judge it.

Upstream facts this relies on (istio/ztunnel):
- `src/config.rs`: the stats server listens on `DEFAULT_STATS_PORT` 15020 on the
  wildcard address; `src/metrics/server.rs`: it serves `/metrics` (and
  `/stats/prometheus`), gzip/br/zstd-compressed on request (tower-http
  `CompressionLayer`). The chart names that port `ztunnel-stats`
  (istio/istio `manifests/charts/ztunnel/templates/daemonset.yaml`, pod label
  `app: ztunnel`); the pod proxy needs a numeric port, so the declared one is used.
- `src/proxy/metrics.rs`: `tcp_connections_opened` (prefixed `istio_` by
  `src/metrics.rs` `sub_registry`) with `CommonTrafficLabels`; absent values are
  `unknown` (`DefaultedUnknown`); counted when a connection opens, before
  authorization (`ConnectionResultBuilder::build`).
- `src/proxy/outbound.rs` (`conn_metrics_from_request`): `reporter="source"`,
  `mutual_tls` for HBONE; `destination_service` is the Service the client
  addressed, `unknown` when it addressed a pod IP (`src/state.rs` `find_upstream`);
  `src/proxy/inbound.rs`: `reporter="destination"`, `mutual_tls`;
  `src/proxy/inbound_passthrough.rs`: `reporter="destination"`, `unknown` =
  plaintext that arrived for a captured pod.
- `tests/direct.rs`: families without traffic are absent (prometheus-client 0.24.1).

Bounded and read-only: GET only; one pod list (`limit` = the pod cap, plus one to
know whether more exist); per pod a wall-clock deadline of `timeout` and at most
`max_bytes` of (decompressed) text, streamed and dropped as soon as the family
has ended. The first unreachable API stops the probe, as in the collector; a 403
stops it too (RBAC denies the rest the same way); three timeouts in a row stop it
(the API server cannot reach ztunnel's port: every pod would wait the timeout).

It reuses the collector's connection (`collect.KubeApi`): pods are listed with the
same lightkube client and generic Pod resource as the collector's reads, and, as
lightkube has no call for a GET whose answer is not a Kubernetes object, the
metrics are fetched by an httpx2 client on the collector's transport (same TLS,
connection pool and request count) with lightkube's own authentication for the
kubeconfig user (`lightkube.config.client_adapter.user_auth`).
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, cast
from urllib.parse import quote

import httpx2
from lightkube import ApiError
from lightkube.generic_resource import GenericNamespacedResource

from .assemble import ZTUNNEL_LABEL, as_list, as_map, as_str
from .collect import POD, KubeApi
from .exposition import FamilyScanner
from .snapshot import ConnectionCount, ReadProblem, RuntimeSummary, ZtunnelRead

STATS_PORT = 15020
STATS_PORT_NAME = "ztunnel-stats"
FAMILY = "istio_tcp_connections_opened"
DEFAULT_MAX_PODS = 100
MAX_BYTES = 8 * 1024 * 1024
"""Per pod: the opened family of a busy node is well under 1 MiB; the probe stops after it."""
TIMEOUTS_IN_A_ROW = 3
ERROR_BODY = 4096
"""Bytes of an error body kept for its message."""
INFLATE_STEP = 256 * 1024
"""Most text decompressed at once, so reading stops soon after the family ends."""

_Key = tuple[str, bool, str, str, str, str, str, str]
Decoder = Callable[[bytes, int], Iterator[bytes]]
"""Raw body bytes and the most text one call may produce -> text chunks."""


@dataclass
class ProbeStats:
    """What a probe cost: for the benchmark and tests."""

    requests: int = 0
    """HTTP requests sent (the pod list included)."""
    wire_bytes: int = 0
    """Bytes received for the metrics bodies (compressed when the server compressed)."""
    text_bytes: int = 0
    """Bytes of exposition text scanned (after decompression)."""


@dataclass
class _Probe:
    api: KubeApi
    timeout: float
    max_bytes: int
    stats: ProbeStats
    counts: dict[_Key, int] = field(default_factory=dict)
    _http: httpx2.Client | None = None

    def http(self) -> httpx2.Client:
        """An HTTP client on the collector's transport; never closed here (the transport is the API's)."""
        if self._http is None:
            from lightkube.config.client_adapter import user_auth

            config = self.api.client.config
            self._http = httpx2.Client(
                base_url=self.api.server,
                auth=user_auth(config.user),
                transport=self.api.transport,
                timeout=httpx2.Timeout(self.timeout),
                trust_env=False,
            )
        return self._http

    def read(self, pod: Mapping[str, Any]) -> ZtunnelRead:
        """One pod's metrics; never raises for what the cluster does (timeouts, errors, 403)."""
        meta = as_map(pod.get("metadata"))
        namespace, name = as_str(meta.get("namespace")), as_str(meta.get("name"))
        node = as_str(as_map(pod.get("spec")).get("nodeName"))
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(name, safe='')}:{stats_port(pod)}/proxy/metrics"
        scanner = FamilyScanner(FAMILY)
        deadline = time.monotonic() + self.timeout
        with self.http().stream(
            "GET", path, headers={"Accept": "text/plain", "Accept-Encoding": "gzip"}
        ) as response:
            if response.status_code >= 400:
                message = _error_message(response)
                if response.status_code in (401, 403):
                    return ZtunnelRead(namespace, name, node, False, message, "forbidden")
                return ZtunnelRead(
                    namespace, name, node, False, f"HTTP {response.status_code}: {message}", "error"
                )
            decoder = _decoder(response.headers.get("content-encoding", ""))
            text = 0
            for raw in response.iter_raw():
                self.stats.wire_bytes += len(raw)
                for chunk in decoder(raw, min(INFLATE_STEP, self.max_bytes - text + 1)):
                    text += len(chunk)
                    self.stats.text_bytes += len(chunk)
                    if text > self.max_bytes:
                        return ZtunnelRead(
                            namespace,
                            name,
                            node,
                            False,
                            f"metrics larger than {self.max_bytes // 1024} KiB before {FAMILY} ended: not counted",
                            "too-large",
                        )
                    if scanner.feed(chunk):
                        break
                if scanner.done:
                    break
                if time.monotonic() > deadline:
                    return ZtunnelRead(
                        namespace, name, node, False, f"timed out after {self.timeout:g} s", "timeout"
                    )
            else:
                scanner.close()
        for labels, value in scanner.values():
            key = (
                labels.get("reporter", "unknown"),
                labels.get("connection_security_policy") == "mutual_tls",
                labels.get("source_workload_namespace", "unknown"),
                labels.get("source_workload", "unknown"),
                labels.get("destination_workload_namespace", "unknown"),
                labels.get("destination_workload", "unknown"),
                labels.get("destination_service", "unknown"),
                node,
            )
            self.counts[key] = self.counts.get(key, 0) + value
        note = None
        if scanner.bad_lines:
            note = f"{scanner.bad_lines} malformed {FAMILY} lines skipped ({scanner.first_error})"
        return ZtunnelRead(namespace, name, node, True, note)


def stats_port(pod: Mapping[str, Any]) -> int:
    """The container port named `ztunnel-stats` (the chart's), else ztunnel's default 15020."""
    for container in as_list(as_map(pod.get("spec")).get("containers")):
        for port in as_list(as_map(container).get("ports")):
            port = as_map(port)
            number = port.get("containerPort")
            if port.get("name") == STATS_PORT_NAME and isinstance(number, int) and 0 < number < 65536:
                return number
    return STATS_PORT


def ready(pod: Mapping[str, Any]) -> bool:
    """The pod's Ready condition is True (ztunnel's readiness: it has its config and certificates)."""
    return any(
        as_str(as_map(c).get("type")) == "Ready" and as_str(as_map(c).get("status")) == "True"
        for c in as_list(as_map(pod.get("status")).get("conditions"))
    )


def _decoder(encoding: str) -> Decoder:
    """Incremental decompression with a bound on what one call may produce (no gzip bombs)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):

        def identity(raw: bytes, _limit: int) -> Iterator[bytes]:
            yield raw

        return identity
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise httpx2.DecodingError(f"unsupported Content-Encoding {encoding!r}")
    inflater = zlib.decompressobj(wbits=31 if "gzip" in encoding else 15)

    def inflate(raw: bytes, limit: int) -> Iterator[bytes]:
        data = raw
        while data:
            try:
                out = inflater.decompress(data, max(limit, 1))
            except zlib.error as exc:
                raise httpx2.DecodingError(f"bad {encoding} body: {exc}") from exc
            yield out
            data = inflater.unconsumed_tail

    return inflate


def _error_message(response: httpx2.Response) -> str:
    """The API's Status message (403, 503 from the proxy), or the start of a (decompressed) text body."""
    decoder = _decoder(response.headers.get("content-encoding", ""))
    body = b""
    for raw in response.iter_raw():
        for piece in decoder(raw, ERROR_BODY):
            body += piece
            if len(body) >= ERROR_BODY:
                break
        if len(body) >= ERROR_BODY:
            break
    text = body[:ERROR_BODY].decode("utf-8", errors="replace").strip()
    try:
        status = json.loads(text)
        if isinstance(status, dict) and isinstance(status.get("message"), str):
            return status["message"][:300]
    except ValueError:
        pass
    return text[:200] or response.reason_phrase or "no message"


def _list_pods(
    api: KubeApi, namespace: str | None, max_pods: int
) -> tuple[list[dict[str, Any]], bool, ReadProblem | None]:
    """One list request: up to `max_pods` ztunnel pods, whether more exist, or why none could be listed."""
    pod = cast(type[GenericNamespacedResource], POD.classes()[0][1])  # Pod is namespaced
    where = namespace or "*"
    try:
        found = [
            dict(obj)
            for obj in islice(
                api.client.list(
                    pod, namespace=where, labels={ZTUNNEL_LABEL[0]: ZTUNNEL_LABEL[1]}, chunk_size=max_pods + 1
                ),
                max_pods + 1,
            )
        ]
    except httpx2.HTTPStatusError as exc:
        code = exc.response.status_code
        message = _api_message(exc)
        kind = "forbidden" if code in (401, 403) else "error"
        return [], False, ReadProblem("pods", kind, message[:300], namespace)
    except (httpx2.ConnectError, httpx2.TimeoutException) as exc:
        return [], False, ReadProblem("Kubernetes API", "unreachable", f"{type(exc).__name__}: {exc}"[:300])
    except Exception as exc:  # undecodable pods, a dropped connection: a finding, never a crash
        return [], False, ReadProblem("pods", "error", f"{type(exc).__name__}: {exc}"[:300], namespace)
    return found[:max_pods], len(found) > max_pods, None


def _api_message(exc: httpx2.HTTPStatusError) -> str:
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.message:
        return exc.status.message
    return f"HTTP {exc.response.status_code}"


def probe(
    api: KubeApi,
    *,
    namespace: str | None,
    timeout: float = 5.0,
    max_pods: int = DEFAULT_MAX_PODS,
    max_bytes: int = MAX_BYTES,
    stats: ProbeStats | None = None,
) -> RuntimeSummary:
    """Read the ztunnel pods of `namespace` (Istio's root; None: every namespace)."""
    stats = stats if stats is not None else ProbeStats()
    before = api.transport.requests
    try:
        return _run(api, namespace, timeout, max_pods, max_bytes, stats)
    finally:
        stats.requests += api.transport.requests - before


def _run(
    api: KubeApi, namespace: str | None, timeout: float, max_pods: int, max_bytes: int, stats: ProbeStats
) -> RuntimeSummary:
    limits: dict[str, Any] = {"max_pods": max_pods, "max_bytes": max_bytes, "timeout": timeout}
    pods, more, problem = _list_pods(api, namespace, max_pods)
    if problem is not None:
        return RuntimeSummary(list_problem=problem, **limits)
    pods.sort(
        key=lambda p: (
            as_str(as_map(p.get("metadata")).get("namespace")),
            as_str(as_map(p.get("metadata")).get("name")),
        )
    )
    work = _Probe(api, timeout, max_bytes, stats)
    reads: list[ZtunnelRead] = []
    stop: str | None = None
    timeouts = 0
    for pod in pods:
        meta, spec = as_map(pod.get("metadata")), as_map(pod.get("spec"))
        identity = (as_str(meta.get("namespace")), as_str(meta.get("name")), as_str(spec.get("nodeName")))
        if not ready(pod):
            phase = as_str(as_map(pod.get("status")).get("phase")) or "unknown"
            reads.append(ZtunnelRead(*identity, False, f"not Ready (phase {phase}): not read", "not-ready"))
            continue
        if stop is not None:
            reads.append(ZtunnelRead(*identity, False, stop, "skipped"))
            continue
        try:
            result = work.read(pod)
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
            stop = f"not read: Kubernetes API unreachable ({type(exc).__name__})"
            result = ZtunnelRead(
                *identity,
                False,
                f"Kubernetes API unreachable: {type(exc).__name__}: {exc}"[:300],
                "error",
            )
        except httpx2.TimeoutException as exc:
            result = ZtunnelRead(
                *identity, False, f"timed out after {timeout:g} s ({type(exc).__name__})", "timeout"
            )
        except httpx2.HTTPError as exc:  # reset, bad compression, dropped mid-body
            result = ZtunnelRead(*identity, False, f"{type(exc).__name__}: {exc}"[:300], "error")
        reads.append(result)
        timeouts = timeouts + 1 if result.reason == "timeout" else 0
        if result.reason == "forbidden":
            stop = "not read: pods/proxy get is forbidden (see the first pod)"
        elif timeouts >= TIMEOUTS_IN_A_ROW:
            stop = f"not read: {TIMEOUTS_IN_A_ROW} pods in a row timed out (can the API server reach port {STATS_PORT}?)"
    connections = tuple(
        ConnectionCount(*key, count=count) for key, count in sorted(work.counts.items()) if count > 0
    )
    return RuntimeSummary(pods=tuple(reads), connections=connections, more_pods=more, **limits)
