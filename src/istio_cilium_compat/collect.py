"""Read a live cluster with lightkube into a `Snapshot` (get and list only).

The collector only fetches; `assemble.build_snapshot` (shared with the manifest
loader) decides nothing either, and the rules decide everything. The number of
requests is constant whatever the cluster size: one list per resource type
across all namespaces with server-side selectors, paged in `CHUNK` items.
Cluster problems never raise: a 403 or an error is recorded on the snapshot, a
missing CRD (404) means "not installed", and after the first connection failure
or timeout the remaining reads are skipped instead of each waiting the timeout.

The reads run one after the other on purpose: running them in threads crashed the
process (SIGSEGV in lightkube's msgspec list decoder, built on first use by two
threads at once; reproduced 9 times in 20 hooks with 4 workers).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx2
from lightkube import ApiError, Client, KubeConfig
from lightkube.core.exceptions import ConfigError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod
from lightkube.resources.networking_v1 import NetworkPolicy

from .assemble import (
    CANONICAL_K8S_CONFIG,
    CILIUM_AGENT_LABEL,
    CILIUM_CONFIG,
    DATAPLANE_MODE_LABEL,
    ISTIO_CNI_LABEL,
    ZTUNNEL_LABEL,
    build_snapshot,
)
from .snapshot import ProblemKind, ReadProblem, Snapshot

CHUNK = 500
"""Page size for lists that grow with the cluster (policies, namespaces)."""
ALL = "*"

CiliumNodeConfigV2 = create_namespaced_resource("cilium.io", "v2", "CiliumNodeConfig", "ciliumnodeconfigs")
CiliumNodeConfigV2alpha1 = create_namespaced_resource(
    "cilium.io", "v2alpha1", "CiliumNodeConfig", "ciliumnodeconfigs"
)
CiliumNetworkPolicy = create_namespaced_resource(
    "cilium.io", "v2", "CiliumNetworkPolicy", "ciliumnetworkpolicies"
)
CiliumClusterwideNetworkPolicy = create_global_resource(
    "cilium.io", "v2", "CiliumClusterwideNetworkPolicy", "ciliumclusterwidenetworkpolicies"
)
PeerAuthenticationV1 = create_namespaced_resource(
    "security.istio.io", "v1", "PeerAuthentication", "peerauthentications"
)
PeerAuthenticationV1beta1 = create_namespaced_resource(
    "security.istio.io", "v1beta1", "PeerAuthentication", "peerauthentications"
)


class CollectError(Exception):
    """No client could be built (bad kubeconfig, no in-cluster credentials)."""


def _timeout(seconds: float) -> httpx2.Timeout:
    return httpx2.Timeout(seconds)


def client_from_kubeconfig(path: str | None, context: str | None, timeout: float = 5.0) -> Client:
    """A client from a kubeconfig file ($KUBECONFIG or ~/.kube/config when `path` is None)."""
    path = path or _first_kubeconfig(os.environ.get("KUBECONFIG", ""))
    try:
        config = KubeConfig.from_file(path) if path else KubeConfig.from_env()
        return Client(config.get(context_name=context), timeout=_timeout(timeout), trust_env=False)
    except (ConfigError, OSError, ValueError, KeyError, TypeError) as exc:
        where = path or "$KUBECONFIG / ~/.kube/config"
        raise CollectError(f"cannot load kubeconfig {where}: {exc}") from exc


def _first_kubeconfig(value: str) -> str | None:
    """Kubectl accepts a KUBECONFIG list (a:b); lightkube reads one file: the first that exists."""
    if os.pathsep not in value:
        return None
    return next((p for p in value.split(os.pathsep) if p and os.path.isfile(p)), None)


def in_cluster_client(timeout: float = 5.0) -> Client:
    """The pod's service account (what `juju trust` grants), else $KUBECONFIG."""
    try:
        return Client(KubeConfig.from_env(), timeout=_timeout(timeout), trust_env=False)
    except (ConfigError, OSError, ValueError, KeyError, TypeError) as exc:
        raise CollectError(f"no Kubernetes credentials: {exc}") from exc


@dataclass
class Collector:
    """One check's worth of reads, with the problems met and the requests made."""

    client: Client
    problems: list[ReadProblem] = field(default_factory=list)
    requests: int = 0
    """HTTP requests sent, pages included (counted by an httpx request hook)."""
    unreachable: bool = False
    answered: int = 0
    """Reads the API answered (404 included): none at all means it is down, not broken."""
    transport_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:  # lightkube exposes no hook of its own; its httpx client does
            http = self.client._client._client  # type: ignore[attr-defined]
            hooks = http.event_hooks
            hooks.setdefault("request", []).append(self._count)
            http.event_hooks = hooks
        except Exception:  # pragma: no cover - lightkube internals changed: count stays 0
            pass

    def _count(self, _request: object) -> None:
        self.requests += 1

    def _record(self, resource: str, kind: ProblemKind, message: str, namespace: str | None = None) -> None:
        self.problems.append(
            ReadProblem(resource=resource, kind=kind, message=message[:300], namespace=namespace)
        )

    def _guard(
        self, resource: str, namespace: str | None, read: Callable[[], list[dict[str, Any]]]
    ) -> list[dict[str, Any]] | None:
        """Run one read; None means "not installed / not found", problems are recorded."""
        if self.unreachable:
            return []
        try:
            found = read()
            self.answered += 1
            return found
        except httpx2.HTTPStatusError as exc:  # ApiError, or a plain-text error body
            self.answered += 1
            code = exc.response.status_code
            message = _message(exc) or f"HTTP {code}"
            if code == 404:
                return None
            if code in (401, 403):
                self._record(resource, "forbidden", message, namespace)
            else:
                self._record(resource, "error", f"HTTP {code}: {message}", namespace)
        except (httpx2.ConnectError, httpx2.TimeoutException) as exc:
            self.unreachable = True
            self._record("Kubernetes API", "unreachable", f"{type(exc).__name__}: {exc}")
        except httpx2.HTTPError as exc:  # reset, connection dropped mid-list
            self.transport_errors.append(f"{type(exc).__name__}: {exc}")
            self._record(resource, "error", f"{type(exc).__name__}: {exc}", namespace)
        except Exception as exc:  # undecodable objects, bad JSON: a finding, never a crash
            self._record(resource, "invalid", f"{type(exc).__name__}: {exc}", namespace)
        return []

    def list(
        self,
        res: Any,
        resource: str,
        kind: str,
        *,
        namespace: str | None = ALL,
        labels: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
        chunk_size: int | None = None,
    ) -> list[dict[str, Any]] | None:
        """List objects as plain dicts tagged with their kind."""

        def read() -> list[dict[str, Any]]:
            items = []
            scope = {} if namespace is None else {"namespace": namespace}
            for obj in self.client.list(res, labels=labels, fields=fields, chunk_size=chunk_size, **scope):
                item = obj.to_dict()
                item["kind"] = kind
                items.append(item)
            return items

        return self._guard(resource, None if namespace in (ALL, None) else namespace, read)

    def get(self, res: Any, resource: str, kind: str, name: str, namespace: str) -> list[dict[str, Any]]:
        """Get one object; absent is an empty list."""

        def read() -> list[dict[str, Any]]:
            item = self.client.get(res, name, namespace=namespace).to_dict()
            item["kind"] = kind
            return [item]

        return self._guard(resource, namespace, read) or []

    def list_versions(
        self, versions: Iterable[Any], resource: str, kind: str, *, namespace: str | None = ALL
    ) -> list[dict[str, Any]]:
        """The first served version of a CRD; 404 for all means not installed."""
        for res in versions:
            found = self.list(res, resource, kind, namespace=namespace, chunk_size=CHUNK)
            if found is not None:
                return found
        return []


def collect(
    client: Client,
    *,
    istio_namespace: str | None = None,
    istio_namespace_source: str = "option",
    cilium_namespace: str | None = None,
    collector: Collector | None = None,
    objects_out: list[dict[str, Any]] | None = None,
) -> Snapshot:
    """Read what the rules need, with a constant number of requests.

    `objects_out` receives the raw objects read (for `istio-cilium-compat dump`).
    """
    c = collector or Collector(client)
    objects: list[dict[str, Any]] = []
    if cilium_namespace:
        objects += c.get(ConfigMap, "configmaps", "ConfigMap", CILIUM_CONFIG, cilium_namespace)
    else:
        objects += c.list(ConfigMap, "configmaps", "ConfigMap", fields={"metadata.name": CILIUM_CONFIG}) or []
    objects += c.get(ConfigMap, "configmaps", "ConfigMap", CANONICAL_K8S_CONFIG[1], CANONICAL_K8S_CONFIG[0])
    daemonsets = c.list(
        DaemonSet,
        "daemonsets.apps",
        "DaemonSet",
        labels={CILIUM_AGENT_LABEL[0]: (CILIUM_AGENT_LABEL[1], ISTIO_CNI_LABEL[1])},
    )
    objects += daemonsets or []
    objects += (
        c.list(
            DaemonSet,
            "daemonsets.apps",
            "DaemonSet",
            labels={ZTUNNEL_LABEL[0]: ZTUNNEL_LABEL[1]},  # everywhere: a wrong root namespace shows
        )
        or []
    )
    cilium_ns = cilium_namespace or _agent_namespace(objects)
    objects += (
        c.list(
            Pod,
            "pods",
            "Pod",
            namespace=cilium_ns or ALL,
            labels={CILIUM_AGENT_LABEL[0]: CILIUM_AGENT_LABEL[1]},
        )
        or []
    )
    objects += c.list_versions(
        (CiliumNodeConfigV2, CiliumNodeConfigV2alpha1),
        "ciliumnodeconfigs.cilium.io",
        "CiliumNodeConfig",
        namespace=cilium_ns or ALL,
    )
    objects += (
        c.list(
            Namespace,
            "namespaces",
            "Namespace",
            namespace=None,
            labels={DATAPLANE_MODE_LABEL: None},
            chunk_size=CHUNK,
        )
        or []
    )
    objects += c.list_versions(
        (PeerAuthenticationV1, PeerAuthenticationV1beta1),
        "peerauthentications.security.istio.io",
        "PeerAuthentication",
    )
    objects += (
        c.list(NetworkPolicy, "networkpolicies.networking.k8s.io", "NetworkPolicy", chunk_size=CHUNK) or []
    )
    objects += c.list_versions(
        (CiliumNetworkPolicy,), "ciliumnetworkpolicies.cilium.io", "CiliumNetworkPolicy"
    )
    objects += c.list_versions(
        (CiliumClusterwideNetworkPolicy,),
        "ciliumclusterwidenetworkpolicies.cilium.io",
        "CiliumClusterwideNetworkPolicy",
        namespace=None,
    )
    if objects_out is not None:
        objects_out.extend(objects)
    problems = c.problems
    if c.answered == 0 and c.transport_errors and not c.unreachable:
        # Every connection was reset: the API is down, not one resource broken.
        problems = [ReadProblem("Kubernetes API", "unreachable", c.transport_errors[0][:300])]
    return build_snapshot(
        objects,
        source=f"cluster: {_server(client)}",
        istio_namespace=istio_namespace,
        istio_namespace_source=istio_namespace_source,
        cilium_namespace=cilium_namespace,
        problems=problems,
    )


def _message(exc: httpx2.HTTPStatusError) -> str:
    """The API's Status message, or the start of a non-JSON body."""
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.message:
        return exc.status.message
    try:
        return exc.response.text.strip()[:200]
    except Exception:
        return ""


def _agent_namespace(objects: list[dict[str, Any]]) -> str | None:
    """Where the cilium agent runs (to read only its pods and node configs)."""
    for obj in objects:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if obj.get("kind") == "DaemonSet" and labels.get(CILIUM_AGENT_LABEL[0]) == CILIUM_AGENT_LABEL[1]:
            return (obj.get("metadata") or {}).get("namespace")
    return None


def _server(client: Client) -> str:
    try:
        return str(client._client.config.cluster.server)  # type: ignore[attr-defined]
    except Exception:
        return "(unknown server)"
