"""ztunnel-shaped pods and metrics text, for the fake API's pod proxy.

The text follows what ztunnel really prints (istio/ztunnel, read at 62d8265):
- `src/proxy/metrics.rs`: the `CommonTrafficLabels` fields in declaration order, then the
  locality labels (`OptionallyEncode<LocalityLabels>`, present once a source or destination
  workload is known); absent values are `unknown` (`src/metrics.rs` `DefaultedUnknown`);
  `response_flags` is `-`; `connection_security_policy` is `mutual_tls` or `unknown`.
- the `istio_` prefix (`src/metrics.rs` `sub_registry`), family order of `src/app.rs`
  (build info, xds, then the proxy's families as `Metrics::new` registers them).
- prometheus-client 0.24.1's text encoder: `# HELP <name> <help>.`, `# TYPE <name> counter`
  (no `_total`), samples `<name>_total{...} <integer>`, `# EOF` last, families without a
  sample omitted (`tests/direct.rs`: "omits empty metric families").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tests.clusters import ISTIO_NS, Obj, meta

TRUST_DOMAIN = "cluster.local"
UNKNOWN = "unknown"

COMMON_LABELS = (
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_service",
    "destination_service_namespace",
    "destination_service_name",
    "destination_workload",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_cluster",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
)
LOCALITY_LABELS = ("source_region", "source_zone", "destination_region", "destination_zone")

# Families with the help text ztunnel registers (the encoder appends the period).
PROXY_FAMILIES = (
    ("istio_tcp_connections_opened", "The total number of TCP connections opened"),
    ("istio_tcp_connections_closed", "The total number of TCP connections closed"),
    (
        "istio_tcp_received_bytes",
        "The size of total bytes received during request in case of a TCP connection",
    ),
    ("istio_tcp_sent_bytes", "The size of total bytes sent during response in case of a TCP connection"),
)


@dataclass(frozen=True)
class Conn:
    """One label set of ztunnel's connection counters, and how many connections it counted."""

    reporter: str
    """`source` (outbound, from a pod of this node) or `destination` (inbound, to one)."""
    source: tuple[str, str] | None
    """(namespace, workload), or None when ztunnel could not tell (all `unknown`)."""
    destination: tuple[str, str] | None
    service: str | None
    """The Service hostname the client addressed; None: addressed by pod IP (`unknown`)."""
    mtls: bool
    count: int


def _labels(conn: Conn) -> list[tuple[str, str]]:
    values: dict[str, str] = dict.fromkeys(COMMON_LABELS, UNKNOWN)
    values.update(reporter=conn.reporter, request_protocol="tcp", response_flags="-")
    values["connection_security_policy"] = "mutual_tls" if conn.mtls else UNKNOWN
    if conn.source is not None:
        ns, workload = conn.source
        values.update(
            source_workload=workload,
            source_canonical_service=workload,
            source_canonical_revision="latest",
            source_workload_namespace=ns,
            source_app=workload,
            source_version="latest",
            source_cluster="Kubernetes",
        )
        if conn.mtls:  # set from the mTLS identity only (with_derived_source)
            values["source_principal"] = f"spiffe://{TRUST_DOMAIN}/ns/{ns}/sa/{workload}"
    if conn.service is not None:
        name, ns = conn.service.split(".")[:2]
        values.update(
            destination_service=conn.service, destination_service_namespace=ns, destination_service_name=name
        )
    if conn.destination is not None:
        ns, workload = conn.destination
        values.update(
            destination_workload=workload,
            destination_canonical_service=workload,
            destination_canonical_revision="latest",
            destination_workload_namespace=ns,
            destination_principal=f"spiffe://{TRUST_DOMAIN}/ns/{ns}/sa/{workload}",
            destination_app=workload,
            destination_version="latest",
            destination_cluster="Kubernetes",
        )
    pairs = [(k, values[k]) for k in COMMON_LABELS]
    if conn.source is not None or conn.destination is not None:
        pairs += [(k, UNKNOWN) for k in LOCALITY_LABELS]
    return pairs


def _sample(name: str, labels: list[tuple[str, str]], value: int) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{name}_total{{{inner}}} {value}\n"


def exposition(conns: Iterable[Conn], *, tag: str = "1.26.1", xds_messages: int = 40) -> str:
    """A ztunnel `/metrics` body with these connections (families without a sample omitted)."""
    conns = list(conns)
    out = [
        "# HELP istio_build Istio component build info.\n",
        "# TYPE istio_build gauge\n",
        f'istio_build{{component="ztunnel",tag="{tag}"}} 1\n',
        "# HELP istio_xds_message Total number of messages received (unstable).\n",
        "# TYPE istio_xds_message counter\n",
        f'istio_xds_message_total{{url="type.googleapis.com/istio.workload.Address"}} {xds_messages}\n',
        f'istio_xds_message_total{{url="type.googleapis.com/istio.security.Authorization"}} {xds_messages // 4}\n',
    ]
    if conns:
        for index, (family, help_text) in enumerate(PROXY_FAMILIES):
            out.append(f"# HELP {family} {help_text}.\n")
            out.append(f"# TYPE {family} counter\n")
            for conn in conns:
                value = conn.count if index < 2 else conn.count * 1337
                out.append(_sample(family, _labels(conn), value))
    out += [
        "# HELP istio_tcp_sockets_open The current number of open TCP sockets (unstable).\n",
        "# TYPE istio_tcp_sockets_open gauge\n",
        'istio_tcp_sockets_open{reporter="source"} 0\n',
        "# HELP process_open_fds Number of open file descriptors.\n",
        "# TYPE process_open_fds gauge\n",
        "process_open_fds 42\n",
        "# HELP tokio_num_workers The number of worker threads used by the runtime.\n",
        "# TYPE tokio_num_workers gauge\n",
        "tokio_num_workers 2\n",
        "# EOF\n",
    ]
    return "".join(out)


def ztunnel_pod(
    name: str,
    node: str,
    namespace: str = ISTIO_NS,
    *,
    ready: bool = True,
    port: int | None = 15020,
    ip: str = "10.1.0.9",
) -> Obj:
    """A ztunnel pod as the chart runs it (istio/istio manifests/charts/ztunnel/templates/daemonset.yaml)."""
    ports = [{"containerPort": port, "name": "ztunnel-stats", "protocol": "TCP"}] if port else []
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(
            name,
            namespace,
            labels={"app": "ztunnel", "app.kubernetes.io/name": "ztunnel", "istio.io/dataplane-mode": "none"},
        ),
        "spec": {
            "nodeName": node,
            "serviceAccountName": "ztunnel",
            "containers": [
                {"name": "istio-proxy", "image": "docker.io/istio/ztunnel:1.26.1", "ports": ports}
            ],
        },
        "status": {
            "phase": "Running" if ready else "Pending",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
