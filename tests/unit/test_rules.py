"""Table-driven rule tests: each case is a small cluster and its exact findings."""

from __future__ import annotations

import pytest

from istio_cilium_compat.assemble import build_snapshot
from istio_cilium_compat.render import with_fixes
from istio_cilium_compat.report import Severity, Verdict
from istio_cilium_compat.rules import RETIRED, evaluate, registered
from istio_cilium_compat.snapshot import ReadProblem
from tests.clusters import (
    ISTIO_NS,
    N_CHECKS,
    T0,
    T1,
    Obj,
    ccnp,
    cilium_agent,
    cnp,
    configmap,
    healthy,
    istio_cni,
    namespace,
    network_policy,
    node_config,
    peer_auth,
    without,
    ztunnel,
)

E, W, INF = Severity.ERROR, Severity.WARNING, Severity.INFO
OK, BAD, UNKNOWN = Verdict.COMPATIBLE, Verdict.INCOMPATIBLE, Verdict.UNKNOWN

DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress"]}
PROBE_ALLOW = ccnp(
    "allow-ambient-hostprobes",
    {
        "endpointSelector": {},
        "ingress": [{"fromCIDR": ["169.254.7.127/32"]}],
        "enableDefaultDeny": {"ingress": False},
    },
)


OPEN: dict[str, str | None] = {"bpf_lb_sock": "false", "bpf_lb_sock_hostns_only": None}
"""Socket LB left to kube-proxy-replacement alone, and no hostns-only: CIC001 fires where LB is on."""


def at(version: str, objects: list[Obj]) -> list[Obj]:
    """The same cluster with the Cilium agent at `version`."""
    return [*without(objects, "DaemonSet", "cilium"), cilium_agent(image=f"quay.io/cilium/cilium:v{version}")]


def host_network_cni(dns_policy: str | None) -> Obj:
    ds = istio_cni()
    pod_spec = ds["spec"]["template"]["spec"]
    pod_spec["hostNetwork"] = True
    if dns_policy:
        pod_spec["dnsPolicy"] = dns_policy
    return ds


def old_ztunnel(image: str) -> Obj:
    ds = ztunnel()
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return ds


def not_ready(daemonset: Obj) -> Obj:
    daemonset["status"]["numberReady"] = 1
    return daemonset


def no_mesh_pa(objects: list[Obj]) -> list[Obj]:
    return without(objects, "PeerAuthentication")


def app_ports(*ports: int, end: int | None = None) -> Obj:
    entries: list[Obj] = [{"port": p, "protocol": "TCP"} for p in ports]
    if end is not None:
        entries[-1]["endPort"] = end
    return {
        "podSelector": {"matchLabels": {"app": "x"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"ports": entries}],
    }


CASES: list[tuple[str, list[Obj], list[tuple[str, Severity]], Verdict]] = [
    ("healthy", healthy(), [], OK),
    ("hostns-only absent", healthy(bpf_lb_sock_hostns_only=None), [("CIC001", E)], BAD),
    *[
        (f"hostns-only {s!r} is false", healthy(bpf_lb_sock_hostns_only=s), [("CIC001", E)], BAD)
        for s in ("0", "f", "F", "FALSE", "false", "False")
    ],
    *[
        (f"hostns-only {s!r} is true", healthy(bpf_lb_sock_hostns_only=s), [], OK)
        for s in ("1", "t", "T", "TRUE", "true", "True")
    ],
    ("hostns-only unparsable", healthy(bpf_lb_sock_hostns_only="yes"), [("CIC001", E)], BAD),
    (
        "kube-proxy replacement forces socket LB although bpf-lb-sock=false (istioctl misses this)",
        healthy(bpf_lb_sock="false", bpf_lb_sock_hostns_only=None),
        [("CIC001", E)],
        BAD,
    ),
    (
        "bpf-lb-sock alone enables socket LB",
        healthy(kube_proxy_replacement="false", bpf_lb_sock_hostns_only=None),
        [("CIC001", E)],
        BAD,
    ),
    (
        "socket LB off: hostns-only irrelevant",
        healthy(kube_proxy_replacement="false", bpf_lb_sock="false", bpf_lb_sock_hostns_only=None),
        [("CIC001", INF)],
        OK,
    ),
    (
        "all socket LB keys absent: agent defaults are off",
        healthy(kube_proxy_replacement=None, bpf_lb_sock=None, bpf_lb_sock_hostns_only=None),
        [("CIC001", INF)],
        OK,
    ),
    (
        "kube-proxy-replacement unparsable: assumed on, and the agent would refuse it",
        healthy(kube_proxy_replacement="sometimes", bpf_lb_sock="false", bpf_lb_sock_hostns_only=None),
        [("CIC001", E), ("CIC023", W)],
        BAD,
    ),
    (
        "node override undoes hostns-only",
        [*healthy(), node_config("pool-a", {"bpf-lb-sock-hostns-only": "false"})],
        [("CIC001", E)],
        BAD,
    ),
    (
        "node override fixing some nodes leaves the rest broken",
        [*healthy(bpf_lb_sock_hostns_only=None), node_config("pool-a", {"bpf-lb-sock-hostns-only": "true"})],
        [("CIC001", E)],
        BAD,
    ),
    (
        "node override turning socket LB on where global is off",
        [
            *healthy(kube_proxy_replacement="false", bpf_lb_sock="false", bpf_lb_sock_hostns_only=None),
            node_config("pool-a", {"bpf-lb-sock": "true"}, version="v2alpha1"),
        ],
        [("CIC001", E)],
        BAD,
    ),
    (
        "node override of an unrelated key is ignored",
        [*healthy(), node_config("pool-a", {"mtu": "1450"})],
        [],
        OK,
    ),
    (
        "no PeerAuthentication: PERMISSIVE default makes it silent",
        no_mesh_pa(healthy(bpf_lb_sock_hostns_only=None)),
        [("CIC001", E)],
        BAD,
    ),
    (
        "mesh STRICT but namespace PERMISSIVE",
        [*healthy(bpf_lb_sock_hostns_only=None), peer_auth("bookinfo", mode="PERMISSIVE")],
        [("CIC001", E)],
        BAD,
    ),
    (
        "mesh PERMISSIVE but namespace STRICT",
        [
            *no_mesh_pa(healthy(bpf_lb_sock_hostns_only=None)),
            peer_auth(ISTIO_NS, mode="PERMISSIVE"),
            peer_auth("bookinfo", mode="STRICT"),
        ],
        [("CIC001", E)],
        BAD,
    ),
    (
        "namespace UNSET inherits mesh STRICT",
        [*healthy(bpf_lb_sock_hostns_only=None), peer_auth("bookinfo", mode="UNSET")],
        [("CIC001", E)],
        BAD,
    ),
    (
        "mesh UNSET means PERMISSIVE",
        [*no_mesh_pa(healthy(bpf_lb_sock_hostns_only=None)), peer_auth(ISTIO_NS, mode=None)],
        [("CIC001", E)],
        BAD,
    ),
    (
        "workload PERMISSIVE under namespace STRICT",
        [
            *healthy(bpf_lb_sock_hostns_only=None),
            peer_auth("bookinfo", "legacy", "PERMISSIVE", {"app": "old"}),
        ],
        [("CIC001", E)],
        BAD,
    ),
    (
        "workload port-level PERMISSIVE",
        [
            *healthy(bpf_lb_sock_hostns_only=None),
            peer_auth("bookinfo", "p", "STRICT", {"app": "x"}, {"8080": "PERMISSIVE"}),
        ],
        [("CIC001", E)],
        BAD,
    ),
    (
        "mesh DISABLE",
        [*no_mesh_pa(healthy(bpf_lb_sock_hostns_only=None)), peer_auth(ISTIO_NS, mode="DISABLE")],
        [("CIC001", E)],
        BAD,
    ),
    (
        "oldest mesh-wide PeerAuthentication wins",
        [
            *no_mesh_pa(healthy(bpf_lb_sock_hostns_only=None)),
            peer_auth(ISTIO_NS, "newer", "STRICT", created=T1),
            peer_auth(ISTIO_NS, "older", "PERMISSIVE", created=T0),
        ],
        [("CIC001", E)],
        BAD,
    ),
    ("PERMISSIVE alone is fine without a bypass", no_mesh_pa(healthy()), [], OK),
    ("cni-exclusive true", healthy(cni_exclusive="true"), [("CIC003", E)], BAD),
    ("cni-exclusive absent: agent default false", healthy(cni_exclusive=None), [], OK),
    ("cni-exclusive unparsable", healthy(cni_exclusive="maybe"), [("CIC003", W)], OK),
    (
        "cni-exclusive switched on for some nodes",
        [*healthy(), node_config("pool-b", {"cni-exclusive": "True"})],
        [("CIC003", E)],
        BAD,
    ),
    (
        "istio-cni on MicroK8s paths (istio-k8s platform=microk8s)",
        [
            *without(healthy(), "DaemonSet", "istio-cni-node"),
            istio_cni(
                conf="/var/snap/microk8s/current/args/cni-network",
                bin_dir="/var/snap/microk8s/current/opt/cni/bin",
            ),
        ],
        [("CIC004", E)],
        BAD,
    ),
    (
        "istio-cni follows Cilium's non-default directories",
        [
            *without(healthy(), "DaemonSet"),
            cilium_agent(conf="/var/lib/cni/net.d", bin_dir="/var/lib/cni/bin"),
            istio_cni(conf="/var/lib/cni/net.d/", bin_dir="/var/lib/cni/bin"),
            *[o for o in healthy() if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "ztunnel"],
        ],
        [],
        OK,
    ),
    (
        "default-deny in an ambient namespace without probe allowance",
        [*healthy(), network_policy("bookinfo", "deny", DENY_ALL)],
        [("CIC005", W)],
        OK,
    ),
    (
        "default-deny with the probe allowance",
        [*healthy(), network_policy("bookinfo", "deny", DENY_ALL), PROBE_ALLOW],
        [],
        OK,
    ),
    (
        "allowance through a wider fromCIDRSet",
        [
            *healthy(),
            network_policy("bookinfo", "deny", DENY_ALL),
            cnp(
                "bookinfo",
                "probes",
                {
                    "endpointSelector": {},
                    "ingress": [{"fromCIDRSet": [{"cidr": "169.254.0.0/16"}]}],
                    "enableDefaultDeny": {"ingress": False},
                },
            ),
        ],
        [],
        OK,
    ),
    (
        "fromCIDRSet that excepts the probe address is no allowance",
        [
            *healthy(),
            network_policy("bookinfo", "deny", DENY_ALL),
            ccnp(
                "probes",
                {
                    "endpointSelector": {},
                    "ingress": [{"fromCIDRSet": [{"cidr": "169.254.0.0/16", "except": ["169.254.7.0/24"]}]}],
                },
            ),
        ],
        [("CIC005", W)],
        OK,
    ),
    (
        "allowance in another namespace does not count",
        [
            *healthy(),
            network_policy("bookinfo", "deny", DENY_ALL),
            cnp(
                "other",
                "probes",
                {
                    "endpointSelector": {},
                    "ingress": [{"fromCIDR": ["169.254.7.127/32"]}],
                    "enableDefaultDeny": {"ingress": False},
                },
            ),
        ],
        [("CIC005", W)],
        OK,
    ),
    (
        "default-deny outside ambient is not our business",
        [*healthy(), network_policy("default", "deny", DENY_ALL)],
        [],
        OK,
    ),
    (
        "egress-only policy does not isolate ingress",
        [*healthy(), network_policy("bookinfo", "e", {"podSelector": {}, "policyTypes": ["Egress"]})],
        [],
        OK,
    ),
    ("enable-policy always", healthy(enable_policy="always"), [("CIC005", W)], OK),
    ("enable-policy always with allowance", [*healthy(enable_policy="always"), PROBE_ALLOW], [], OK),
    (
        "Cilium policy with ingress rules isolates",
        [
            *healthy(),
            cnp("bookinfo", "from-gw", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]}),
        ],
        [("CIC005", W)],
        OK,
    ),
    (
        "Cilium policy with enableDefaultDeny.ingress false does not isolate",
        [
            *healthy(),
            cnp(
                "bookinfo",
                "soft",
                {
                    "endpointSelector": {},
                    "ingress": [{"fromEndpoints": [{}]}],
                    "enableDefaultDeny": {"ingress": False},
                },
            ),
        ],
        [],
        OK,
    ),
    (
        "L7 http rule on ambient pods",
        [
            *healthy(),
            PROBE_ALLOW,
            cnp(
                "bookinfo",
                "l7",
                {
                    "endpointSelector": {},
                    "egress": [
                        {"toPorts": [{"ports": [{"port": "80"}], "rules": {"http": [{"method": "GET"}]}}]}
                    ],
                },
            ),
        ],
        [("CIC006", E), ("CIC013", W)],  # egress to port 80 only: no HBONE out either
        BAD,
    ),
    (
        "L7 rule in a non-ambient namespace",
        [
            *healthy(),
            cnp(
                "default",
                "l7",
                {"endpointSelector": {}, "egress": [{"toPorts": [{"rules": {"http": [{}]}}]}]},
            ),
        ],
        [],
        OK,
    ),
    (
        "clusterwide L7 rule scoped to another namespace",
        [
            *healthy(),
            ccnp(
                "l7",
                {
                    "endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "default"}},
                    "egress": [{"toPorts": [{"rules": {"kafka": [{}]}}]}],
                },
            ),
        ],
        [],
        OK,
    ),
    (
        "clusterwide L7 rule without namespace scope",
        [
            *healthy(),
            ccnp("l7", {"endpointSelector": {}, "egress": [{"toPorts": [{"rules": {"kafka": [{}]}}]}]}),
        ],
        [("CIC006", E)],
        BAD,
    ),
    (
        "probe allowance without enableDefaultDeny isolates every pod it selects",
        [
            *healthy(),
            ccnp("probes", {"endpointSelector": {}, "ingress": [{"fromCIDR": ["169.254.7.127/32"]}]}),
        ],
        [("CIC018", E)],
        BAD,
    ),
    (
        "enableDefaultDeny is not honoured before Cilium 1.16",
        [
            *without(healthy(), "DaemonSet", "cilium"),
            cilium_agent(image="quay.io/cilium/cilium:v1.15.6"),
            PROBE_ALLOW,
        ],
        [("CIC018", E)],
        BAD,
    ),
    (
        "a policy with other rules besides the probe allowance is not a probe policy",
        [
            *healthy(),
            cnp(
                "bookinfo",
                "app",
                {
                    "endpointSelector": {},
                    "ingress": [{"fromCIDR": ["169.254.7.127/32"]}, {"fromEndpoints": [{}]}],
                },
            ),
        ],
        [],
        OK,
    ),
    (
        "ztunnel not ready everywhere",
        [*without(healthy(), "DaemonSet", "ztunnel"), not_ready(ztunnel())],
        [("CIC019", W)],
        OK,
    ),
    (
        "istio-cni not ready everywhere",
        [*without(healthy(), "DaemonSet", "istio-cni-node"), not_ready(istio_cni())],
        [("CIC019", W)],
        OK,
    ),
    (
        "istio-cni on the host network with the default dnsPolicy under kube-proxy replacement",
        [*without(healthy(), "DaemonSet", "istio-cni-node"), host_network_cni("ClusterFirst")],
        [("CIC020", W)],
        OK,
    ),
    (
        "istio-cni on the host network with ClusterFirstWithHostNet",
        [*without(healthy(), "DaemonSet", "istio-cni-node"), host_network_cni("ClusterFirstWithHostNet")],
        [],
        OK,
    ),
    (
        "istio-cni dnsPolicy does not matter without kube-proxy replacement",
        [
            *without(
                healthy(kube_proxy_replacement="false", bpf_lb_sock="false"), "DaemonSet", "istio-cni-node"
            ),
            host_network_cni(None),
        ],
        [("CIC001", INF)],
        OK,
    ),
    (
        "Istio before 1.21 does not support Cilium in ambient",
        [
            *without(healthy(), "DaemonSet", "ztunnel"),
            old_ztunnel("docker.io/istio/ztunnel:1.20.3-distroless"),
        ],
        [("CIC021", E)],
        BAD,
    ),
    ("no cilium-config", without(healthy(), "ConfigMap"), [("CIC007", W)], UNKNOWN),
    ("no ztunnel: pre-flight", without(healthy(), "DaemonSet", "ztunnel"), [("CIC008", INF)], OK),
    (
        "no ztunnel: ambient-only checks skipped",
        without(
            healthy(enable_bpf_masquerade="true", enable_host_legacy_routing="false", enable_ztunnel="true"),
            "DaemonSet",
            "ztunnel",
        ),
        [("CIC008", INF)],
        OK,
    ),
    (
        "config changed after agents started",
        [
            *without(healthy(), "ConfigMap"),
            configmap(
                dict(healthy()[0]["data"]), written={"bpf-lb-sock-hostns-only": "2026-01-03T00:00:00Z"}
            ),
        ],
        [("CIC009", W)],
        OK,
    ),
    (
        "config changed before agents started",
        [
            *without(healthy(), "ConfigMap"),
            configmap(dict(healthy()[0]["data"]), written={"bpf-lb-sock-hostns-only": T0}),
        ],
        [],
        OK,
    ),
    # kube-proxy-replacement values per version (daemon/cmd/kube_proxy_replacement.go, pkg/kpr/kpr.go).
    *[
        (
            f"KPR {value!r} on Cilium {version}",
            at(version, healthy(kube_proxy_replacement=value, **OPEN)),
            want,
            v,
        )
        for value, version, want, v in [
            ("strict", "1.15.6", [("CIC001", E)], BAD),
            ("strict", "1.16.0", [("CIC001", E), ("CIC023", W)], BAD),
            ("partial", "1.14.9", [("CIC001", INF)], OK),
            ("disabled", "1.15.6", [("CIC001", INF)], OK),
            ("True", "1.18.3", [("CIC001", E), ("CIC023", W)], BAD),
            ("True", "1.19.0", [("CIC001", E)], BAD),
            ("1", "1.19.0", [("CIC001", E)], BAD),
            ("0", "1.19.0", [("CIC001", INF)], OK),
            ("true", "1.13.4", [("CIC023", W), ("CIC001", INF)], OK),
            ("probe", "1.12.9", [("CIC001", E)], BAD),
            ("probe", "1.13.0", [("CIC001", E), ("CIC023", W)], BAD),
        ]
    ],
    (
        "KPR disabled forces socket LB off even with bpf-lb-sock (Cilium ≤ 1.15)",
        at(
            "1.14.9",
            healthy(kube_proxy_replacement="disabled", bpf_lb_sock="true", bpf_lb_sock_hostns_only=None),
        ),
        [("CIC001", INF)],
        OK,
    ),
    (
        "KPR partial follows bpf-lb-sock",
        at(
            "1.14.9",
            healthy(kube_proxy_replacement="partial", bpf_lb_sock="true", bpf_lb_sock_hostns_only=None),
        ),
        [("CIC001", E)],
        BAD,
    ),
    (
        "enable-host-reachable-services enables socket LB up to Cilium 1.12",
        at(
            "1.12.19",
            healthy(kube_proxy_replacement="partial", enable_host_reachable_services="true", **OPEN),
        ),
        [("CIC001", E)],
        BAD,
    ),
    (
        "enable-host-reachable-services is gone in Cilium 1.13",
        at(
            "1.13.0", healthy(kube_proxy_replacement="partial", enable_host_reachable_services="true", **OPEN)
        ),
        [("CIC001", INF)],
        OK,
    ),
    # BPF masquerading: unsupported per Istio's docs (warning); probes fail through BPF host routing (error).
    ("BPF masquerade under legacy routing", healthy(enable_bpf_masquerade="true"), [("CIC010", W)], OK),
    (
        "BPF masquerade enables BPF host routing",
        healthy(enable_bpf_masquerade="true", enable_host_legacy_routing=None),
        [("CIC010", E), ("CIC011", E)],
        BAD,
    ),
    (
        "BPF masquerade with nothing to masquerade is off (≤ 1.15 turns it off)",
        at("1.15.6", healthy(enable_bpf_masquerade="true", enable_ipv4_masquerade="false")),
        [],
        OK,
    ),
    (
        "BPF masquerade with nothing to masquerade: Cilium ≥ 1.16 refuses to start",
        healthy(enable_bpf_masquerade="true", enable_ipv4_masquerade="false"),
        [("CIC023", W)],
        OK,
    ),
    # BPF host routing only when the agent really uses it (cilium/cilium finishKubeProxyReplacementInit).
    (
        "legacy routing off but iptables masquerading: the agent falls back to legacy",
        healthy(enable_host_legacy_routing="false"),
        [],
        OK,
    ),
    (
        "native routing without masquerading: BPF host routing (istio/istio#52208's case)",
        healthy(enable_host_legacy_routing=None, enable_ipv4_masquerade="false"),
        [("CIC011", E)],
        BAD,
    ),
    (
        "IPv6 on by agent default (key absent) still needs iptables masquerading: legacy",
        healthy(enable_host_legacy_routing=None, enable_ipv4_masquerade="false", enable_ipv6=None),
        [],
        OK,
    ),
    (
        "BPF host routing needs kube-proxy replacement",
        healthy(
            enable_host_legacy_routing=None, enable_ipv4_masquerade="false", kube_proxy_replacement="false"
        ),
        [],
        OK,
    ),
    (
        "IPsec forces legacy routing up to Cilium 1.18",
        at(
            "1.18.3",
            healthy(enable_host_legacy_routing=None, enable_ipv4_masquerade="false", enable_ipsec="true"),
        ),
        [],
        OK,
    ),
    (
        "IPsec allows BPF host routing from Cilium 1.19",
        at(
            "1.19.4",
            healthy(enable_host_legacy_routing=None, enable_ipv4_masquerade="false", enable_ipsec="true"),
        ),
        [("CIC011", E)],
        BAD,
    ),
    (
        "BPF host routing on some nodes",
        [
            *healthy(enable_bpf_masquerade="true"),
            node_config("pool-c", {"enable-host-legacy-routing": "false"}),
        ],
        [("CIC010", E), ("CIC011", E)],
        BAD,
    ),
    ("host routing absent is not flagged", healthy(enable_host_legacy_routing=None), [], OK),
    ("Cilium ztunnel before 1.19 does not exist", healthy(enable_ztunnel="true"), [], OK),
    ("Cilium ztunnel beside Istio's", at("1.19.4", healthy(enable_ztunnel="true")), [("CIC012", W)], OK),
    (
        "app ports only, no HBONE",
        [*healthy(), PROBE_ALLOW, network_policy("bookinfo", "app", app_ports(8080))],
        [("CIC013", W)],
        OK,
    ),
    (
        "app ports with HBONE",
        [*healthy(), PROBE_ALLOW, network_policy("bookinfo", "app", app_ports(8080, 15008))],
        [],
        OK,
    ),
    (
        "port range covering HBONE",
        [*healthy(), PROBE_ALLOW, network_policy("bookinfo", "app", app_ports(15000, end=15010))],
        [],
        OK,
    ),
    (
        "Cilium toPorts without HBONE",
        [
            *healthy(),
            PROBE_ALLOW,
            cnp(
                "bookinfo",
                "app",
                {
                    "endpointSelector": {},
                    "ingress": [{"toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}],
                },
            ),
        ],
        [("CIC013", W)],
        OK,
    ),
    (
        "named port cannot be resolved: not flagged",
        [
            *healthy(),
            PROBE_ALLOW,
            network_policy("bookinfo", "app", app_ports(8080) | {"ingress": [{"ports": [{"port": "http"}]}]}),
        ],
        [],
        OK,
    ),
    (
        "two cilium-config ConfigMaps",
        [*healthy(), configmap({"cni-exclusive": "true"}, namespace="cilium")],
        [("CIC016", W)],
        OK,
    ),
    ("unknown dataplane-mode value", [*healthy(), namespace("shop", mode="enabled")], [("CIC017", W)], OK),
    ("opted-out namespace is fine", [*healthy(), namespace("legacy", mode="none")], [], OK),
]


@pytest.mark.parametrize(
    ("objects", "expected", "verdict"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule_table(objects: list[Obj], expected: list[tuple[str, Severity]], verdict: Verdict) -> None:
    snapshot = build_snapshot(objects)
    report = evaluate(snapshot)
    assert [(f.id, f.severity) for f in report.ordered] == expected
    assert report.verdict is verdict
    for finding in with_fixes(snapshot, report).findings:
        assert finding.evidence, finding.id
        assert finding.summary and finding.fix, finding.id


PROBLEM_CASES = [
    ("forbidden", [("CIC014", W)], UNKNOWN),
    ("unreachable", [("CIC015", W)], UNKNOWN),
    ("error", [("CIC015", W)], UNKNOWN),
]


@pytest.mark.parametrize(("kind", "expected", "verdict"), PROBLEM_CASES)
def test_read_problems(kind: str, expected: list[tuple[str, Severity]], verdict: Verdict) -> None:
    problem = ReadProblem(resource="ciliumnetworkpolicies.cilium.io", kind=kind, message="denied")  # type: ignore[arg-type]
    report = evaluate(build_snapshot(healthy(), problems=[problem]))
    assert [(f.id, f.severity) for f in report.ordered] == expected
    assert report.verdict is verdict


def test_errors_dominate_unknown() -> None:
    problem = ReadProblem(resource="pods", kind="forbidden", message="denied")
    report = evaluate(build_snapshot(healthy(cni_exclusive="true"), problems=[problem]))
    assert report.verdict is BAD


def test_istio_namespace_override_and_discovery() -> None:
    discovered = evaluate(build_snapshot(healthy()))
    assert discovered.istio["root_namespace"] == ISTIO_NS
    assert discovered.istio["root_namespace_source"] == "discovered"
    other = evaluate(
        build_snapshot(healthy(), istio_namespace="elsewhere", istio_namespace_source="relation")
    )
    assert other.ids == ["CIC008"]
    assert other.istio["root_namespace_source"] == "relation"


def test_cilium_namespace_override() -> None:
    objects = [*healthy(), configmap({"cni-exclusive": "true"}, namespace="cilium")]
    assert evaluate(build_snapshot(objects, cilium_namespace="cilium")).ids[0] == "CIC003"
    assert evaluate(build_snapshot(objects, cilium_namespace="nowhere")).ids[0] == "CIC007"


def test_unparsable_value_is_quoted_in_evidence() -> None:
    report = evaluate(build_snapshot(healthy(bpf_lb_sock_hostns_only="yes please")))
    evidence = [e for e in report.findings[0].evidence if e.key == "bpf-lb-sock-hostns-only"]
    assert evidence[0].value == "yes please"
    assert "does not parse" in evidence[0].note
    assert '"yes please"' in str(evidence[0])


def test_node_override_named_in_summary_and_fix() -> None:
    snapshot = build_snapshot([*healthy(), node_config("pool-a", {"bpf-lb-sock-hostns-only": "false"})])
    finding = with_fixes(snapshot, evaluate(snapshot)).findings[0]
    assert "CiliumNodeConfig kube-system/pool-a" in finding.summary
    assert "patch ciliumnodeconfig/pool-a --type merge" in finding.fix
    assert "patch configmap" not in finding.fix  # cilium-config itself is right


def test_old_cilium_strict_and_host_reachable_services() -> None:
    old = "quay.io/cilium/cilium:v1.11.20"
    objects = [
        *without(healthy(), "DaemonSet", "cilium"),
        cilium_agent(image=old),
    ]
    for data, expected in [
        ({"kube-proxy-replacement": "strict"}, "CIC001"),
        ({"kube-proxy-replacement": "partial", "enable-host-reachable-services": "true"}, "CIC001"),
    ]:
        report = evaluate(build_snapshot([*without(objects, "ConfigMap"), configmap(data)]))
        assert report.ordered[0].id == expected and report.ordered[0].severity is E
    partial = evaluate(
        build_snapshot([*without(objects, "ConfigMap"), configmap({"kube-proxy-replacement": "partial"})])
    )
    assert [(f.id, f.severity) for f in partial.ordered] == [("CIC001", INF)]


def test_catalogue_ids_are_unique_and_cover_findings() -> None:
    ids = [c.id for c in registered()]
    assert len(ids) == len(set(ids))
    assert not set(ids) & set(RETIRED)
    assert ids[:2] == ["CIC001", "CIC003"]
    emitted = {f.id for case in CASES for f in evaluate(build_snapshot(case[1])).findings}
    assert emitted <= set(ids)


def test_status_line_says_pre_flight_without_ztunnel() -> None:
    from charm import Hints, status_message

    hints = Hints(app="istio-cilium-compat-k8s", unit="istio-cilium-compat-k8s/0")
    report = evaluate(build_snapshot(without(healthy(), "DaemonSet", "ztunnel")))
    assert (
        status_message(report, hints)
        == f"Cilium 1.17.4: ready for Istio ambient, ztunnel not found ({N_CHECKS} checks)"
    )
    assert (
        status_message(evaluate(build_snapshot(healthy())), hints)
        == f"Cilium 1.17.4: compatible with Istio ambient ({N_CHECKS} checks)"
    )
