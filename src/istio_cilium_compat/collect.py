"""Read raw objects (dicts) from a live cluster with lightkube: get and list only.

The collector only fetches; `assemble.build_snapshot` (shared with the manifest
loader) turns what it read into a `Snapshot`, and the rules decide everything.
The number of requests is constant whatever the cluster size: one list per
resource type across all namespaces with server-side selectors, paged in `CHUNK`
items. Cluster problems never raise: a 403 or an error is recorded as a problem,
a missing CRD (404) means "not installed", and after the first connection
failure or timeout the remaining reads are skipped instead of each waiting the
timeout.

Every type, built-in ones included, is read as a lightkube *generic resource*
(`lightkube.generic_resource.create_namespaced_resource`): lightkube 1.0's public
way to list and get objects that it decodes as plain dicts, without validating
them against its typed models. Typed models decode strictly (msgspec), so one
object with a field of the wrong type would lose its whole list; as dicts, each
object is judged on its own by `assemble`. It also spares importing and building
the typed models. Requests are counted by the transport handed to
`lightkube.Client(transport=...)`, the one supported place to see them.

The reads run one after the other on purpose: running them in threads crashed the
process (SIGSEGV in lightkube's msgspec list decoder, built on first use by two
threads at once; reproduced 9 times in 20 hooks with 4 workers). Importing this module
in a thread is safe (the charm does, while ops waits on hook tools): nothing decodes then.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx2
from lightkube import ApiError, Client, KubeConfig, SingleConfig
from lightkube.config.kubeconfig import DEFAULT_KUBECONFIG
from lightkube.core.exceptions import ConfigError
from lightkube.generic_resource import (
    GenericGlobalResource,
    GenericNamespacedResource,
    create_global_resource,
    create_namespaced_resource,
    get_generic_resource,
)

from .assemble import (
    CANONICAL_K8S_CONFIG,
    CILIUM_AGENT_LABEL,
    CILIUM_CONFIG,
    DATAPLANE_MODE_LABEL,
    ISTIO_CNI_LABEL,
    USE_WAYPOINT_LABEL,
    ZTUNNEL_NAME,
    build_snapshot,
    object_ref,
)
from .snapshot import ProblemKind, ReadProblem, Snapshot
from .transport import KubeTransport

CHUNK = 500
"""Page size of every list."""
ALL = "*"

Resource = type[GenericNamespacedResource] | type[GenericGlobalResource]


class Kind:
    """One API type as the collector reads it: the versions to try, newest first.

    Plain classes here, not dataclasses: creating a dataclass costs about 0.3 ms at import,
    in every hook (see docs/performance.md).
    """

    __slots__ = ("group", "kind", "namespaced", "plural", "versions")

    def __init__(
        self, kind: str, group: str, plural: str, versions: tuple[str, ...], namespaced: bool = True
    ) -> None:
        self.kind, self.group, self.plural, self.versions = kind, group, plural, versions
        self.namespaced = namespaced

    def __repr__(self) -> str:
        return f"Kind({self.resource}, {'/'.join(self.versions)})"

    @property
    def resource(self) -> str:
        """`plural.group`, as Kubernetes names it in errors (and the charm in its status)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def api_version(self, version: str) -> str:
        """`group/version`, or `version` for the core group."""
        return f"{self.group}/{version}" if self.group else version

    def classes(self) -> list[tuple[str, Resource]]:
        """(apiVersion, generic resource class) per version, created once per process."""
        return [(self.api_version(v), _generic_class(self, v)) for v in self.versions]


_CLASSES: dict[tuple[str, str, str], Resource] = {}


def _generic_class(kind: Kind, version: str) -> Resource:
    # Looked up before it is created: lightkube 1.0.1 looks core-group classes up under "/v1"
    # but files them under "v1", so creating one a second time (here or by another module of
    # the same process) raises.
    key = (kind.group, version, kind.kind)
    if key not in _CLASSES:
        found = get_generic_resource(kind.api_version(version), kind.kind)
        if found is None:
            create = create_namespaced_resource if kind.namespaced else create_global_resource
            found = create(kind.group, version, kind.kind, kind.plural)
        _CLASSES[key] = found
    return _CLASSES[key]


CONFIG_MAP = Kind("ConfigMap", "", "configmaps", ("v1",))
DAEMON_SET = Kind("DaemonSet", "apps", "daemonsets", ("v1",))
POD = Kind("Pod", "", "pods", ("v1",))
NAMESPACE = Kind("Namespace", "", "namespaces", ("v1",), namespaced=False)
NETWORK_POLICY = Kind("NetworkPolicy", "networking.k8s.io", "networkpolicies", ("v1",))
CILIUM_NODE_CONFIG = Kind("CiliumNodeConfig", "cilium.io", "ciliumnodeconfigs", ("v2", "v2alpha1"))
CILIUM_NETWORK_POLICY = Kind("CiliumNetworkPolicy", "cilium.io", "ciliumnetworkpolicies", ("v2",))
CILIUM_CLUSTERWIDE_NETWORK_POLICY = Kind(
    "CiliumClusterwideNetworkPolicy",
    "cilium.io",
    "ciliumclusterwidenetworkpolicies",
    ("v2",),
    namespaced=False,
)
PEER_AUTHENTICATION = Kind(
    "PeerAuthentication", "security.istio.io", "peerauthentications", ("v1", "v1beta1")
)
SERVICE = Kind("Service", "", "services", ("v1",))
AUTHORIZATION_POLICY = Kind(
    "AuthorizationPolicy", "security.istio.io", "authorizationpolicies", ("v1", "v1beta1")
)
GATEWAY_API = "gateway.networking.k8s.io"
HTTP_ROUTE = Kind("HTTPRoute", GATEWAY_API, "httproutes", ("v1", "v1beta1"))
GRPC_ROUTE = Kind("GRPCRoute", GATEWAY_API, "grpcroutes", ("v1", "v1alpha2"))
GATEWAY = Kind("Gateway", GATEWAY_API, "gateways", ("v1", "v1beta1"))


class CollectError(Exception):
    """No client could be built (bad kubeconfig, no in-cluster credentials)."""


class KubeApi:
    """A lightkube client and the transport under it (which counts requests)."""

    __slots__ = ("client", "transport")

    def __init__(self, client: Client, transport: KubeTransport) -> None:
        self.client, self.transport = client, transport

    @property
    def server(self) -> str:
        """The API server's URL, as the kubeconfig gives it."""
        return str(self.client.config.cluster.server)

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()


def _ssl_context(config: SingleConfig) -> ssl.SSLContext:
    """Verification as kubectl does it: the cluster's CA when given, the system's otherwise."""
    cluster, user = config.cluster, config.user
    if cluster.insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.certificate_auth:
        context = ssl.create_default_context(cafile=str(config.abs_file(cluster.certificate_auth)))
    elif cluster.certificate_auth_data:
        context = ssl.create_default_context(cadata=base64.b64decode(cluster.certificate_auth_data).decode())
    else:
        context = ssl.create_default_context()
    if user is not None and (user.client_cert or user.client_cert_data):
        _load_client_cert(context, config)
    return context


def _load_client_cert(context: ssl.SSLContext, config: SingleConfig) -> None:
    user = config.user
    assert user is not None
    if user.client_cert_data and user.client_key_data:
        # The ssl module loads certificates from files only; these live for the call.
        with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
            cert.write(base64.b64decode(user.client_cert_data))
            key.write(base64.b64decode(user.client_key_data))
            cert.flush()
            key.flush()
            context.load_cert_chain(cert.name, key.name)
    elif user.client_cert and user.client_key:
        context.load_cert_chain(str(config.abs_file(user.client_cert)), str(config.abs_file(user.client_key)))


def _connect(config: SingleConfig | None, timeout: float) -> KubeApi:
    """A client on our transport, whose SSL context is built on the first https connection."""
    if config is None:
        raise ConfigError("no current context")
    transport = KubeTransport(lambda: _ssl_context(config))
    client = Client(config, timeout=httpx2.Timeout(timeout), trust_env=False, transport=transport)
    return KubeApi(client, transport)


def client_from_kubeconfig(path: str | None, context: str | None, timeout: float = 5.0) -> KubeApi:
    """A client from a kubeconfig file ($KUBECONFIG or ~/.kube/config when `path` is None)."""
    path = path or _first_kubeconfig(os.environ.get("KUBECONFIG", ""))
    try:
        config = _load_kubeconfig(path) if path else _from_env()
        return _connect(config.get(context_name=context), timeout)
    except (ConfigError, OSError, ValueError, KeyError, TypeError, ssl.SSLError) as exc:
        where = path or "$KUBECONFIG / ~/.kube/config"
        raise CollectError(f"cannot load kubeconfig {where}: {exc}") from exc


def _from_env() -> KubeConfig:
    """As `KubeConfig.from_env`: the pod's service account, else $KUBECONFIG, else ~/.kube/config."""
    try:
        return KubeConfig.from_service_account()
    except ConfigError:
        return _load_kubeconfig(os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG)


def _load_kubeconfig(path: str | os.PathLike[str]) -> KubeConfig:
    """As `KubeConfig.from_file`, parsed by libyaml's C loader where PyYAML has it.

    lightkube parses with PyYAML's pure-Python loader: about 2 ms for a small kubeconfig,
    in every hook that reads one (the CLI, the benchmark; a pod's service account has none).
    """
    import yaml  # already imported by ops and lightkube: no cost here

    filepath = Path(path).expanduser()
    if not filepath.is_file():
        raise ConfigError(f"Configuration file {path} not found")
    try:
        data = yaml.load(
            filepath.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
    except yaml.YAMLError as exc:
        raise ConfigError(f"not a kubeconfig: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("not a kubeconfig: not a YAML mapping")
    return KubeConfig.from_dict(data, fname=filepath)


def _first_kubeconfig(value: str) -> str | None:
    """Kubectl accepts a KUBECONFIG list (a:b); lightkube reads one file: the first that exists."""
    if os.pathsep not in value:
        return None
    return next((p for p in value.split(os.pathsep) if p and os.path.isfile(p)), None)


def in_cluster_client(timeout: float = 5.0) -> KubeApi:
    """The pod's service account (what `juju trust` grants), else $KUBECONFIG."""
    try:
        return _connect(_from_env().get(), timeout)
    except (ConfigError, OSError, ValueError, KeyError, TypeError, ssl.SSLError) as exc:
        raise CollectError(f"no Kubernetes credentials: {exc}") from exc


@dataclass(frozen=True)
class Reads:
    """What one check read: raw objects, the problems met, the requests sent."""

    objects: tuple[dict[str, Any], ...]
    problems: tuple[ReadProblem, ...]
    requests: int
    """HTTP requests sent, pages included."""
    source: str
    cilium_namespace: str | None = None

    def snapshot(
        self, *, istio_namespace: str | None = None, istio_namespace_source: str = "option"
    ) -> Snapshot:
        """The snapshot of these objects (through `assemble.build_snapshot`, as saved manifests)."""
        return build_snapshot(
            self.objects,
            source=self.source,
            istio_namespace=istio_namespace,
            istio_namespace_source=istio_namespace_source,
            cilium_namespace=self.cilium_namespace,
            problems=self.problems,
        )


class _Session:
    """One check's worth of reads, with the problems met."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.problems: list[ReadProblem] = []
        self.unreachable = False
        self.answered = 0
        """Reads the API answered (404 included): none at all means it is down, not broken."""
        self.transport_errors: list[str] = []

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
        except Exception as exc:  # a body that is not JSON (a proxy's page): a finding, never a crash
            self._record(
                resource,
                "error",
                f"the answer is not a Kubernetes object: {type(exc).__name__}: {exc}",
                namespace,
            )
        return []

    def list(
        self,
        kind: Kind,
        *,
        namespace: str | None = ALL,
        labels: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """All objects of the first served version, paged; 404 for every version means none."""
        for api_version, res in kind.classes():

            def read(res: Any = res, api_version: str = api_version) -> list[dict[str, Any]]:
                scope = {"namespace": namespace} if kind.namespaced else {}
                pages = self.client.list(
                    res, labels=dict(labels or {}), fields=dict(fields or {}), chunk_size=CHUNK, **scope
                )
                return [_raw(obj, kind.kind, api_version) for obj in pages]

            found = self._guard(kind.resource, None if namespace in (ALL, None) else namespace, read)
            if found is not None:
                return found
        return []

    def get(self, kind: Kind, name: str, namespace: str) -> list[dict[str, Any]]:
        """One object; absent is an empty list."""
        api_version, found = kind.classes()[0]
        res = cast(type[GenericNamespacedResource], found)  # only namespaced objects are read by name

        def read() -> list[dict[str, Any]]:
            return [_raw(self.client.get(res, name, namespace=namespace), kind.kind, api_version)]

        return self._guard(kind.resource, namespace, read) or []


def _raw(obj: Any, kind: str, api_version: str) -> dict[str, Any]:
    """A plain dict with its kind and apiVersion (built-in list items carry neither)."""
    item = dict(obj)
    item.setdefault("apiVersion", api_version)
    item.setdefault("kind", kind)
    return item


def collect(api: KubeApi, *, cilium_namespace: str | None = None) -> Reads:
    """Read what the rules need, with a constant number of requests."""
    before = api.transport.requests
    s = _Session(api.client)
    objects: list[dict[str, Any]] = []
    if cilium_namespace:
        objects += s.get(CONFIG_MAP, CILIUM_CONFIG, cilium_namespace)
    else:
        objects += s.list(CONFIG_MAP, fields={"metadata.name": CILIUM_CONFIG})
    objects += s.get(CONFIG_MAP, CANONICAL_K8S_CONFIG[1], CANONICAL_K8S_CONFIG[0])
    objects += s.list(DAEMON_SET, labels={CILIUM_AGENT_LABEL[0]: (CILIUM_AGENT_LABEL[1], ISTIO_CNI_LABEL[1])})
    # Everywhere: a wrong root namespace shows.
    # By name: Istio's charts put app=ztunnel on the pods, not on the DaemonSet (assemble.ZTUNNEL_LABEL).
    objects += s.list(DAEMON_SET, fields={"metadata.name": ZTUNNEL_NAME})
    cilium_ns = cilium_namespace or _agent_namespace(objects)
    objects += s.list(POD, namespace=cilium_ns or ALL, labels={CILIUM_AGENT_LABEL[0]: CILIUM_AGENT_LABEL[1]})
    objects += s.list(CILIUM_NODE_CONFIG, namespace=cilium_ns or ALL)
    objects += s.list(NAMESPACE, labels={DATAPLANE_MODE_LABEL: None})
    objects += s.list(NAMESPACE, labels={USE_WAYPOINT_LABEL: None})
    # Pods and Services bound to Istio by their own labels ("any value": `none` opts out).
    objects += s.list(POD, labels={DATAPLANE_MODE_LABEL: None})
    objects += s.list(POD, labels={USE_WAYPOINT_LABEL: None})
    objects += s.list(SERVICE, labels={USE_WAYPOINT_LABEL: None})
    objects += s.list(PEER_AUTHENTICATION)
    objects += s.list(AUTHORIZATION_POLICY)
    objects += s.list(HTTP_ROUTE)
    objects += s.list(GRPC_ROUTE)
    objects += s.list(GATEWAY)
    objects += s.list(NETWORK_POLICY)
    objects += s.list(CILIUM_NETWORK_POLICY)
    objects += s.list(CILIUM_CLUSTERWIDE_NETWORK_POLICY)
    problems = s.problems
    if s.answered == 0 and s.transport_errors and not s.unreachable:
        # Every connection was reset: the API is down, not one resource broken.
        problems = [ReadProblem("Kubernetes API", "unreachable", s.transport_errors[0][:300])]
    return Reads(
        objects=tuple(_unique(objects)),
        problems=tuple(problems),
        requests=api.transport.requests - before,
        source=f"cluster: {api.server}",
        cilium_namespace=cilium_namespace,
    )


def read_snapshot(
    api: KubeApi,
    *,
    istio_namespace: str | None = None,
    istio_namespace_source: str = "option",
    cilium_namespace: str | None = None,
) -> Snapshot:
    """`collect`, then `Reads.snapshot`: the live cluster as the rules see it."""
    reads = collect(api, cilium_namespace=cilium_namespace)
    return reads.snapshot(istio_namespace=istio_namespace, istio_namespace_source=istio_namespace_source)


def _unique(objects: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each object once: a pod labelled both ways is listed by two selectors."""
    seen: set[str] = set()
    for obj in objects:
        ref = object_ref(obj)
        if ref not in seen:
            seen.add(ref)
            yield obj


def _message(exc: httpx2.HTTPStatusError) -> str:
    """The API's Status message, or the start of a non-JSON body."""
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.message:
        return exc.status.message
    try:
        return exc.response.text.strip()[:200]
    except Exception:
        return ""


def _agent_namespace(objects: Iterable[Mapping[str, Any]]) -> str | None:
    """Where the cilium agent runs (to read only its pods and node configs)."""
    for obj in objects:
        meta = obj.get("metadata")
        labels = meta.get("labels") if isinstance(meta, Mapping) else None
        if (
            obj.get("kind") == "DaemonSet"
            and isinstance(labels, Mapping)
            and labels.get(CILIUM_AGENT_LABEL[0]) == CILIUM_AGENT_LABEL[1]
        ):
            namespace = meta.get("namespace") if isinstance(meta, Mapping) else None
            return namespace if isinstance(namespace, str) else None
    return None
