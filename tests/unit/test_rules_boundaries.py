"""Exact outcomes at the boundaries a wrong rule would get wrong.

Each case sits on one side of an upstream fact: a Cilium or Istio version where behaviour
changes, a Go `strconv.ParseBool` spelling, 15008 over TCP versus anything else, a selector
`matchExpressions`, an agent default used when a key is absent. Written to kill the mutants
`tox -e mutation` found surviving (README, "Mutation testing"): every case asserts the ids,
severities and the objects (and keys) each finding points at, on both sides of the boundary.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pytest

from istio_cilium_compat import remedy as r
from istio_cilium_compat.assemble import build_snapshot
from istio_cilium_compat.report import Report, Severity
from istio_cilium_compat.rules import RETIRED, RULES, catalogue_markdown, evaluate, registered
from istio_cilium_compat.rules.facts import (
    EVIDENCE_LIMIT,
    FALSE_SPELLINGS,
    PROBE_SOURCE_V4,
    TRUE_SPELLINGS,
    Facts,
    format_version,
    parse_bool,
)
from istio_cilium_compat.rules.registry import _source_link, rule
from istio_cilium_compat.snapshot import ReadProblem, Snapshot
from tests.clusters import (
    ISTIO_NS,
    Obj,
    app_pod,
    ccnp,
    cilium_agent,
    cilium_data,
    cilium_pod,
    cnp,
    configmap,
    daemonset,
    healthy,
    istio_cni,
    meta,
    namespace,
    network_policy,
    node_config,
    without,
)

CONFIG = "ConfigMap kube-system/cilium-config"
DEFAULT = "1.17.4"
ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


def cilium(version: str) -> str:
    return f"quay.io/cilium/cilium:v{version}"


def cluster(version: str = DEFAULT, extra: list[Obj] | None = None, /, **data: str | None) -> list[Obj]:
    """`healthy()` on a given Cilium version, cilium-config overridden, extra objects appended."""
    objects = [o for o in healthy(**data) if o["kind"] != "DaemonSet" or o["metadata"]["name"] != "cilium"]
    return [*objects, cilium_agent(image=cilium(version)), *(extra or [])]


def check(objects: list[Obj]) -> Report:
    return evaluate(build_snapshot(objects))


def outcome(report: Report, rule_id: str) -> tuple[Severity, list[tuple[str, str | None, str | None]]] | None:
    """(severity, [(object, key, value)]) of one finding, None when it did not fire."""
    for finding in report.findings:
        if finding.id == rule_id:
            return finding.severity, [(e.object, e.key, e.value) for e in finding.evidence]
    return None


def ids(report: Report) -> dict[str, Severity]:
    return {f.id: f.severity for f in report.findings}


def note(report: Report, rule_id: str, key: str) -> str:
    for finding in report.findings:
        for e in finding.evidence:
            if finding.id == rule_id and e.key == key:
                return e.note
    raise AssertionError(f"{rule_id} has no evidence for {key}")


# --------------------------------------------------------------------------- Go ParseBool


def test_parse_bool_is_go_strconv_parse_bool() -> None:
    assert frozenset({"1", "t", "T", "TRUE", "true", "True"}) == TRUE_SPELLINGS
    assert frozenset({"0", "f", "F", "FALSE", "false", "False"}) == FALSE_SPELLINGS
    for raw in TRUE_SPELLINGS:
        assert parse_bool(raw) is True
    for raw in FALSE_SPELLINGS:
        assert parse_bool(raw) is False
    for raw in ("yes", "no", "on", "off", "tRUE", "FaLsE", " true", "true ", "", "2", "y", "enabled"):
        assert parse_bool(raw) is None


@pytest.mark.parametrize("raw", sorted(TRUE_SPELLINGS))
def test_every_true_spelling_limits_socket_lb_to_the_host(raw: str) -> None:
    report = check(cluster(bpf_lb_sock_hostns_only=raw))
    assert "CIC001" not in ids(report)
    assert "CIC022" not in ids(report)


@pytest.mark.parametrize("raw", [*sorted(FALSE_SPELLINGS), "yes", "on", "tRUE"])
def test_false_and_unparsable_hostns_only_leave_the_bypass(raw: str) -> None:
    report = check(cluster(bpf_lb_sock_hostns_only=raw))
    assert outcome(report, "CIC001") == (
        ERROR,
        [(CONFIG, "kube-proxy-replacement", "true"), (CONFIG, "bpf-lb-sock-hostns-only", raw)],
    )
    parsed = note(report, "CIC001", "bpf-lb-sock-hostns-only")
    assert ("does not parse" in parsed) == (parse_bool(raw) is None)


def test_absent_hostns_only_is_the_agent_default_false() -> None:
    report = check(cluster(bpf_lb_sock_hostns_only=None))
    assert outcome(report, "CIC001") == (
        ERROR,
        [(CONFIG, "kube-proxy-replacement", "true"), (CONFIG, "bpf-lb-sock-hostns-only", None)],
    )
    assert note(report, "CIC001", "bpf-lb-sock-hostns-only") == "absent: agent default false"


@pytest.mark.parametrize(
    ("raw", "severity"), [("true", ERROR), ("T", ERROR), ("false", None), ("yes", WARNING)]
)
def test_cni_exclusive_spellings(raw: str, severity: Severity | None) -> None:
    found = outcome(check(cluster(cni_exclusive=raw)), "CIC003")
    assert found == (None if severity is None else (severity, [(CONFIG, "cni-exclusive", raw)]))


def test_cni_exclusive_absent_is_false() -> None:
    assert outcome(check(cluster(cni_exclusive=None)), "CIC003") is None


# --------------------------------------------------------------------------- kube-proxy replacement per version

SOCKET_OFF = {"bpf_lb_sock": "false", "bpf_lb_sock_hostns_only": None}


@pytest.mark.parametrize(
    ("version", "kpr", "cic001", "refused"),
    [
        ("1.13.9", "true", INFO, True),  # true/false exist from 1.14
        ("1.14.0", "true", ERROR, False),
        ("1.15.9", "strict", ERROR, False),  # deprecated values accepted through 1.15
        ("1.16.0", "strict", ERROR, True),  # removed in 1.16: refused, assumed on
        ("1.15.9", "partial", INFO, False),  # partial follows bpf-lb-sock (off here)
        ("1.16.0", "partial", ERROR, True),
        ("1.12.9", "probe", ERROR, False),
        ("1.13.0", "probe", ERROR, True),  # probe removed in 1.13
        ("1.18.9", "True", ERROR, True),  # exact "true"/"false" before 1.19
        ("1.19.0", "True", ERROR, False),  # Go bool from 1.19
        ("1.19.0", "1", ERROR, False),
        ("1.19.0", "F", INFO, False),
        ("1.18.9", "0", ERROR, True),
        ("1.17.4", "Strict", ERROR, True),  # case-sensitive
        ("1.17.4", "false", INFO, False),
        ("1.14.0", "disabled", INFO, False),
    ],
)
def test_kube_proxy_replacement_values_per_version(
    version: str, kpr: str, cic001: Severity, refused: bool
) -> None:
    report = check(cluster(version, kube_proxy_replacement=kpr, **SOCKET_OFF))
    assert ids(report)["CIC001"] == cic001
    refusal = outcome(report, "CIC023")
    assert refusal == ((WARNING, [(CONFIG, "kube-proxy-replacement", kpr)]) if refused else None)


def test_kpr_absent_is_false() -> None:
    report = check(cluster(kube_proxy_replacement=None, **SOCKET_OFF))
    assert outcome(report, "CIC001") == (
        INFO,
        [(CONFIG, "kube-proxy-replacement", None), (CONFIG, "bpf-lb-sock", "false")],
    )


def test_disabled_forces_socket_lb_off_even_with_bpf_lb_sock() -> None:
    report = check(
        cluster("1.15.9", kube_proxy_replacement="disabled", bpf_lb_sock="true", bpf_lb_sock_hostns_only=None)
    )
    assert outcome(report, "CIC001") == (INFO, [(CONFIG, "kube-proxy-replacement", "disabled")])


@pytest.mark.parametrize("sock", ["true", "1", "T"])
def test_bpf_lb_sock_alone_enables_socket_lb(sock: str) -> None:
    report = check(cluster(kube_proxy_replacement="false", bpf_lb_sock=sock, bpf_lb_sock_hostns_only=None))
    assert outcome(report, "CIC001") == (
        ERROR,
        [(CONFIG, "bpf-lb-sock", sock), (CONFIG, "bpf-lb-sock-hostns-only", None)],
    )


@pytest.mark.parametrize(("version", "on"), [("1.12.9", True), ("1.13.0", False)])
def test_host_reachable_services_enabled_socket_lb_up_to_1_12(version: str, on: bool) -> None:
    report = check(
        cluster(
            version,
            kube_proxy_replacement="partial",
            bpf_lb_sock=None,
            bpf_lb_sock_hostns_only=None,
            enable_host_reachable_services="true",
        )
    )
    assert ids(report)["CIC001"] == (ERROR if on else INFO)
    if on:
        assert outcome(report, "CIC001") == (
            ERROR,
            [(CONFIG, "enable-host-reachable-services", "true"), (CONFIG, "bpf-lb-sock-hostns-only", None)],
        )


def test_unknown_version_reads_host_reachable_services_as_on() -> None:
    objects = [
        *without(healthy(), "DaemonSet", "cilium"),
        daemonset("cilium", "kube-system", {"k8s-app": "cilium"}, "registry.local/cilium-agent:latest"),
    ]
    objects[0] = configmap(
        cilium_data(
            kube_proxy_replacement="false",
            bpf_lb_sock=None,
            bpf_lb_sock_hostns_only=None,
            enable_host_reachable_services="true",
        )
    )
    assert ids(check(objects))["CIC001"] == ERROR


# --------------------------------------------------------------------------- BPF host routing

BPF_ROUTING = {
    "kube_proxy_replacement": "true",
    "enable_host_legacy_routing": "false",
    "enable_bpf_masquerade": "true",
    "enable_ipv4_masquerade": "true",
    "enable_ipv6": "false",
}


def test_bpf_host_routing_fires_cic011_with_its_evidence() -> None:
    report = check(cluster("1.18.1", **BPF_ROUTING))
    assert outcome(report, "CIC011") == (
        ERROR,
        [
            (CONFIG, "enable-host-legacy-routing", "false"),
            (CONFIG, "kube-proxy-replacement", "true"),
            (CONFIG, "enable-bpf-masquerade", "true"),
        ],
    )
    assert ids(report)["CIC010"] == ERROR  # BPF masquerade with BPF routing


def test_legacy_routing_absent_is_the_agent_default_false() -> None:
    assert (
        ids(check(cluster("1.18.1", **{**BPF_ROUTING, "enable_host_legacy_routing": None})))["CIC011"]
        == ERROR
    )


@pytest.mark.parametrize("legacy", ["true", "1", "True"])
def test_legacy_routing_spellings_silence_cic011(legacy: str) -> None:
    report = check(cluster("1.18.1", **{**BPF_ROUTING, "enable_host_legacy_routing": legacy}))
    assert "CIC011" not in ids(report)
    assert ids(report)["CIC010"] == WARNING  # BPF masquerade under legacy routing: unsupported, not broken


@pytest.mark.parametrize(("version", "fires"), [("1.18.9", False), ("1.19.0", True)])
def test_ipsec_forces_legacy_routing_up_to_1_18(version: str, fires: bool) -> None:
    report = check(cluster(version, **BPF_ROUTING, enable_ipsec="true"))
    assert ("CIC011" in ids(report)) is fires


def test_kpr_off_means_legacy_routing() -> None:
    assert "CIC011" not in ids(check(cluster("1.19.1", **{**BPF_ROUTING, "kube_proxy_replacement": "false"})))


def test_iptables_masquerading_means_legacy_routing() -> None:
    report = check(cluster("1.18.1", **{**BPF_ROUTING, "enable_bpf_masquerade": "false"}))
    assert "CIC011" not in ids(report)
    assert "CIC010" not in ids(report)


def test_absent_ipv6_keys_are_on_by_default_and_need_iptables() -> None:
    """Agent defaults: enable-ipv6 and enable-ipv6-masquerade true; no BPF masquerade -> iptables."""
    data = {**BPF_ROUTING, "enable_bpf_masquerade": None, "enable_ipv4": "false"}
    data.pop("enable_ipv6")
    assert "CIC011" not in ids(check(cluster("1.18.1", **data, enable_ipv6=None)))
    assert ids(check(cluster("1.18.1", **data, enable_ipv6="false")))["CIC011"] == ERROR


@pytest.mark.parametrize(("version", "caveat"), [("1.17.9", True), ("1.18.0", False)])
def test_kernel_caveat_up_to_1_17(version: str, caveat: bool) -> None:
    report = check(cluster(version, **BPF_ROUTING))
    [finding] = [f for f in report.findings if f.id == "CIC011"]
    assert ("kernels older than 5.10" in finding.detail) is caveat


@pytest.mark.parametrize(("version", "refused"), [("1.15.9", False), ("1.16.0", True)])
def test_bpf_masquerade_without_masquerading_is_refused_from_1_16(version: str, refused: bool) -> None:
    report = check(
        cluster(
            version,
            enable_bpf_masquerade="true",
            enable_ipv4_masquerade="false",
            enable_ipv6_masquerade="false",
        )
    )
    expected = (WARNING, [(CONFIG, "enable-bpf-masquerade", "true")])
    assert outcome(report, "CIC023") == (expected if refused else None)
    assert "CIC010" not in ids(report)  # nothing to masquerade


# --------------------------------------------------------------------------- version gates of other rules


@pytest.mark.parametrize(("version", "fires"), [("1.18.9", False), ("1.19.0", True)])
def test_cilium_ztunnel_exists_from_1_19(version: str, fires: bool) -> None:
    found = outcome(check(cluster(version, enable_ztunnel="true")), "CIC012")
    assert found == ((WARNING, [(CONFIG, "enable-ztunnel", "true")]) if fires else None)


def probe_policy(default_deny: object) -> Obj:
    spec: dict[str, Any] = {
        "endpointSelector": {},
        "ingress": [{"fromCIDR": ["169.254.7.127/32"]}],
    }
    if default_deny is not None:
        spec["enableDefaultDeny"] = {"ingress": default_deny, "egress": False}
    return ccnp("allow-probes", spec)


@pytest.mark.parametrize(
    ("version", "default_deny", "fires"),
    [("1.15.9", False, True), ("1.16.0", False, False), ("1.16.0", None, True), ("1.16.0", True, True)],
)
def test_enable_default_deny_is_honoured_from_1_16(version: str, default_deny: object, fires: bool) -> None:
    found = outcome(check(cluster(version, [probe_policy(default_deny)])), "CIC018")
    assert found == (
        (
            ERROR,
            [
                (
                    "CiliumClusterwideNetworkPolicy allow-probes",
                    "enableDefaultDeny.ingress",
                    _text(default_deny),
                )
            ],
        )
        if fires
        else None
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value).lower()


def istio_cluster(tag: str) -> list[Obj]:
    objects = without(healthy(), "DaemonSet", "ztunnel")
    return [*objects, daemonset("ztunnel", ISTIO_NS, {"app": "ztunnel"}, f"docker.io/istio/ztunnel:{tag}")]


@pytest.mark.parametrize(
    ("tag", "fires"), [("1.20.8", True), ("1.21.0", False), ("1.29-24.04_stable", False)]
)
def test_ambient_on_cilium_needs_istio_1_21(tag: str, fires: bool) -> None:
    found = outcome(check(istio_cluster(tag)), "CIC021")
    assert found == ((ERROR, [(f"docker.io/istio/ztunnel:{tag}", None, None)]) if fires else None)


# --------------------------------------------------------------------------- HBONE: 15008 over TCP


def np_ports(*ports: dict[str, Any]) -> Obj:
    return network_policy(
        "bookinfo",
        "allow-app",
        {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": list(ports)}]},
    )


@pytest.mark.parametrize(
    ("ports", "blocked"),
    [
        ([{"port": 15008, "protocol": "TCP"}], False),
        ([{"port": 15008}], False),  # protocol defaults to TCP
        ([{"port": "15008", "protocol": "tcp"}], False),
        ([{"port": 15008, "protocol": "UDP"}], True),
        ([{"port": 15008, "protocol": "SCTP"}], True),
        ([{"port": 8080, "protocol": "TCP"}], True),
        ([{"port": 15000, "endPort": 15010}], False),
        ([{"port": 15000, "endPort": 15008}], False),
        ([{"port": 15008, "endPort": 15008}], False),
        ([{"port": 15009, "endPort": 15010}], True),
        ([{"port": 15000, "endPort": 15007}], True),
        ([{"protocol": "TCP"}], False),  # no port: every port
        ([{"port": "hbone"}], False),  # a named port cannot be resolved here: not flagged
        ([{"port": 8080}, {"port": 15008, "protocol": "UDP"}], True),
        ([{"port": 8080}, {"port": 15008}], False),
    ],
)
def test_networkpolicy_must_allow_15008_tcp(ports: list[dict[str, Any]], blocked: bool) -> None:
    found = outcome(check(cluster(DEFAULT, [np_ports(*ports)])), "CIC013")
    assert (found is not None) is blocked
    if found:
        assert found[0] == WARNING
        assert [o for o, _, _ in found[1]] == ["NetworkPolicy bookinfo/allow-app"]


def cnp_ports(protocol: str | None, port: str = "15008") -> Obj:
    entry = {"port": port} | ({"protocol": protocol} if protocol else {})
    return cnp(
        "bookinfo",
        "allow-app",
        {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}], "toPorts": [{"ports": [entry]}]}]},
    )


@pytest.mark.parametrize(
    ("protocol", "blocked"), [("TCP", False), ("ANY", False), (None, False), ("UDP", True), ("SCTP", True)]
)
def test_cilium_policy_must_allow_15008_tcp(protocol: str | None, blocked: bool) -> None:
    found = outcome(check(cluster(DEFAULT, [cnp_ports(protocol)])), "CIC013")
    listed = f"15008/{protocol}" if protocol else "15008"
    assert found == (
        (WARNING, [("CiliumNetworkPolicy bookinfo/allow-app", "ingress ports", listed)]) if blocked else None
    )


def test_hbone_rule_ignores_non_ambient_namespaces() -> None:
    policy = network_policy(
        "default",
        "allow-app",
        {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 80}]}]},
    )
    assert "CIC013" not in ids(check(cluster(DEFAULT, [namespace("default", mode=None), policy])))


# --------------------------------------------------------------------------- selectors and probe allowances

SHOP = namespace("shop")


def isolating_ccnp(selector: dict[str, Any]) -> Obj:
    return ccnp("isolate", {"endpointSelector": selector, "ingress": [{"fromEndpoints": [{}]}]})


@pytest.mark.parametrize(
    ("selector", "namespaces"),
    [
        ({}, ["bookinfo", "shop"]),
        ({"matchLabels": {"k8s:io.kubernetes.pod.namespace": "shop"}}, ["shop"]),
        ({"matchLabels": {"io.kubernetes.pod.namespace": "shop"}}, ["shop"]),
        (
            {
                "matchExpressions": [
                    {"key": "k8s:io.kubernetes.pod.namespace", "operator": "In", "values": ["shop"]}
                ]
            },
            ["shop"],
        ),
        (
            {
                "matchExpressions": [
                    {"key": "io.kubernetes.pod.namespace", "operator": "In", "values": ["bookinfo"]}
                ]
            },
            ["bookinfo"],
        ),
        (
            {
                "matchLabels": {"k8s:io.kubernetes.pod.namespace": "shop"},
                "matchExpressions": [
                    {
                        "key": "k8s:io.kubernetes.pod.namespace",
                        "operator": "In",
                        "values": ["bookinfo", "shop"],
                    }
                ],
            },
            ["shop"],
        ),
        (
            {
                "matchExpressions": [
                    {
                        "key": "k8s:io.kubernetes.pod.namespace",
                        "operator": "In",
                        "values": ["bookinfo", "shop"],
                    },
                    {"key": "k8s:io.kubernetes.pod.namespace", "operator": "In", "values": ["shop", "other"]},
                ]
            },
            ["shop"],
        ),
        (
            {
                "matchExpressions": [
                    {"key": "k8s:io.kubernetes.pod.namespace", "operator": "In", "values": ["other"]}
                ]
            },
            [],
        ),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["shop"]}]}, ["bookinfo", "shop"]),
        (
            {
                "matchExpressions": [
                    {"key": "k8s:io.kubernetes.pod.namespace", "operator": "NotIn", "values": ["shop"]}
                ]
            },
            ["bookinfo"],
        ),
        (
            {
                "matchExpressions": [
                    {
                        "key": "io.kubernetes.pod.namespace",
                        "operator": "NotIn",
                        "values": ["bookinfo", "shop"],
                    }
                ]
            },
            [],
        ),
        (
            {
                "matchExpressions": [
                    {
                        "key": "k8s:io.kubernetes.pod.namespace",
                        "operator": "In",
                        "values": ["bookinfo", "shop"],
                    },
                    {"key": "k8s:io.kubernetes.pod.namespace", "operator": "NotIn", "values": ["bookinfo"]},
                ]
            },
            ["shop"],
        ),
        (
            {"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "Exists"}]},
            ["bookinfo", "shop"],
        ),
        (
            {"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "DoesNotExist"}]},
            [],
        ),
        (
            {
                "matchLabels": {"k8s:io.kubernetes.pod.namespace": "shop"},
                "matchExpressions": [
                    {"key": "k8s:io.kubernetes.pod.namespace", "operator": "NotIn", "values": ["shop"]}
                ],
            },
            [],
        ),
    ],
)
def test_clusterwide_selector_namespaces(selector: dict[str, Any], namespaces: list[str]) -> None:
    found = outcome(check(cluster(DEFAULT, [SHOP, isolating_ccnp(selector)])), "CIC005")
    if not namespaces:
        assert found is None
        return
    assert found is not None and found[0] == WARNING
    report = check(cluster(DEFAULT, [SHOP, isolating_ccnp(selector)]))
    [finding] = [f for f in report.findings if f.id == "CIC005"]
    assert [e.note for e in finding.evidence] == [
        f"isolates ingress of pods in ambient namespace {ns}" for ns in namespaces
    ]


def test_host_policy_selects_nodes_not_pods() -> None:
    host = ccnp("host-fw", {"nodeSelector": {}, "ingress": [{"fromEntities": ["cluster"]}]})
    assert "CIC005" not in ids(check(cluster(DEFAULT, [host])))


@pytest.mark.parametrize(
    ("rule", "allowed"),
    [
        ({"fromCIDR": ["169.254.7.127/32"]}, True),
        ({"fromCIDR": ["169.254.0.0/16"]}, True),
        ({"fromCIDR": ["169.254.7.128/32"]}, False),
        ({"fromCIDR": ["not-a-cidr"]}, False),
        ({"fromCIDRSet": [{"cidr": "169.254.0.0/16"}]}, True),
        ({"fromCIDRSet": [{"cidr": "169.254.0.0/16", "except": ["169.254.7.127/32"]}]}, False),
        ({"fromCIDRSet": [{"cidr": "169.254.0.0/16", "except": ["169.254.8.0/24"]}]}, True),
        ({"fromEntities": ["world"]}, True),
        ({"fromEntities": ["all"]}, True),
        ({"fromEntities": ["cluster"]}, False),
    ],
)
def test_probe_allowance_shapes(rule: dict[str, Any], allowed: bool) -> None:
    isolate = network_policy("bookinfo", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    allowance = cnp(
        "bookinfo",
        "probes",
        {"endpointSelector": {}, "ingress": [rule], "enableDefaultDeny": {"ingress": False, "egress": False}},
    )
    found = outcome(check(cluster(DEFAULT, [isolate, allowance])), "CIC005")
    assert found == (None if allowed else (WARNING, [("NetworkPolicy bookinfo/deny", None, None)]))


@pytest.mark.parametrize(
    ("spec", "isolates"),
    [
        ({"podSelector": {}}, True),  # policyTypes defaults to include Ingress
        ({"podSelector": {}, "policyTypes": ["Ingress"]}, True),
        ({"podSelector": {}, "policyTypes": ["Egress"]}, False),
        ({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, True),
    ],
)
def test_networkpolicy_isolation(spec: dict[str, Any], isolates: bool) -> None:
    found = outcome(check(cluster(DEFAULT, [network_policy("bookinfo", "np", spec)])), "CIC005")
    assert found == ((WARNING, [("NetworkPolicy bookinfo/np", None, None)]) if isolates else None)


@pytest.mark.parametrize(
    ("spec", "isolates"),
    [
        ({"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]}, True),
        ({"endpointSelector": {}, "ingressDeny": [{"fromEntities": ["world"]}]}, True),
        ({"endpointSelector": {}, "egress": [{"toEndpoints": [{}]}]}, False),
        ({"endpointSelector": {}, "ingress": [{}], "enableDefaultDeny": {"ingress": False}}, False),
        ({"endpointSelector": {}, "egress": [{}], "enableDefaultDeny": {"ingress": True}}, True),
    ],
)
def test_cilium_policy_isolation(spec: dict[str, Any], isolates: bool) -> None:
    found = outcome(check(cluster(DEFAULT, [cnp("bookinfo", "p", spec)])), "CIC005")
    assert found == ((WARNING, [("CiliumNetworkPolicy bookinfo/p", None, None)]) if isolates else None)


def test_enable_policy_always_isolates_every_ambient_namespace() -> None:
    found = outcome(check(cluster(enable_policy="always")), "CIC005")
    assert found == (WARNING, [(CONFIG, "enable-policy", "always")])
    assert outcome(check(cluster(enable_policy="default")), "CIC005") is None


# --------------------------------------------------------------------------- waypoints (CIC022)


def waypoint(name: str, serves: str | None, ns: str = "bookinfo") -> Obj:
    labels = {"istio.io/waypoint-for": serves} if serves else None
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": meta(name, ns, labels=labels),
        "spec": {
            "gatewayClassName": "istio-waypoint",
            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
        },
    }


def bound_namespace(name: str, use: str, where: str | None = None) -> Obj:
    obj = namespace(name)
    obj["metadata"]["labels"]["istio.io/use-waypoint"] = use
    if where:
        obj["metadata"]["labels"]["istio.io/use-waypoint-namespace"] = where
    return obj


def mesh(*objects: Obj, **data: str | None) -> list[Obj]:
    return [
        o for o in cluster(**data) if not (o["kind"] == "Namespace" and o["metadata"]["name"] == "bookinfo")
    ] + [*objects]


@pytest.mark.parametrize(
    ("serves", "skipped"),
    [(None, True), ("service", True), ("all", True), ("workload", False), ("none", False)],
)
def test_waypoint_for_decides_what_socket_lb_skips(serves: str | None, skipped: bool) -> None:
    objects = mesh(bound_namespace("bookinfo", "wp"), waypoint("wp", serves), bpf_lb_sock_hostns_only=None)
    found = outcome(check(objects), "CIC022")
    assert found == (
        (ERROR, [("Namespace bookinfo", "label istio.io/use-waypoint", "wp")]) if skipped else None
    )


def test_use_waypoint_none_opts_out() -> None:
    objects = mesh(
        bound_namespace("bookinfo", "none"), waypoint("none", "service"), bpf_lb_sock_hostns_only=None
    )
    assert "CIC022" not in ids(check(objects))


def test_use_waypoint_namespace_points_at_the_gateway() -> None:
    objects = mesh(
        bound_namespace("bookinfo", "shared", where="mesh-infra"),
        waypoint("shared", "workload", ns="mesh-infra"),
        bpf_lb_sock_hostns_only=None,
    )
    assert "CIC022" not in ids(check(objects))  # the workload waypoint found in mesh-infra is unaffected


def test_waypoints_are_not_skipped_when_socket_lb_is_host_only() -> None:
    objects = mesh(
        bound_namespace("bookinfo", "wp"), waypoint("wp", "service"), bpf_lb_sock_hostns_only="true"
    )
    assert "CIC022" not in ids(check(objects))


# --------------------------------------------------------------------------- other thresholds


def test_evidence_is_capped_at_the_limit() -> None:
    def policies(n: int) -> list[Obj]:
        return [network_policy("bookinfo", f"np-{i:02d}", {"podSelector": {}}) for i in range(n)]

    for n in (EVIDENCE_LIMIT, EVIDENCE_LIMIT + 1):
        report = check(cluster(DEFAULT, policies(n)))
        [finding] = [f for f in report.findings if f.id == "CIC005"]
        names = [e.object for e in finding.evidence]
        if n == EVIDENCE_LIMIT:
            assert names == [f"NetworkPolicy bookinfo/np-{i:02d}" for i in range(n)]
        else:
            assert names == [
                *(f"NetworkPolicy bookinfo/np-{i:02d}" for i in range(EVIDENCE_LIMIT)),
                "… and 1 more policies",
            ]
    assert EVIDENCE_LIMIT == 10


@pytest.mark.parametrize(("ready", "fires"), [(2, False), (1, True), (0, True)])
def test_not_ready_means_fewer_ready_than_scheduled(ready: int, fires: bool) -> None:
    objects = without(cluster(), "DaemonSet", "istio-cni-node")
    cni = daemonset(
        "istio-cni-node", ISTIO_NS, {"k8s-app": "istio-cni-node"}, "docker.io/istio/install-cni:1.26.1"
    )
    cni["status"]["numberReady"] = ready
    found = outcome(check([*objects, cni]), "CIC019")
    expected = (WARNING, [("DaemonSet istio-system/istio-cni-node", "status.numberReady", str(ready))])
    assert found == (expected if fires else None)


@pytest.mark.parametrize(
    ("conf", "fires"), [("/etc/cni/net.d/", False), ("/etc/cni/net.d", False), ("/etc/cni", True)]
)
def test_cni_dirs_compare_without_trailing_slash(conf: str, fires: bool) -> None:
    objects = without(cluster(), "DaemonSet", "istio-cni-node")
    cni = daemonset(
        "istio-cni-node",
        ISTIO_NS,
        {"k8s-app": "istio-cni-node"},
        "docker.io/istio/install-cni:1.26.1",
        {"cni-net-dir": conf, "cni-bin-dir": "/opt/cni/bin"},
    )
    found = outcome(check([*objects, cni]), "CIC004")
    expected = (ERROR, [("DaemonSet istio-system/istio-cni-node", "volume cni-net-dir hostPath", conf)])
    assert found == (expected if fires else None)


@pytest.mark.parametrize(
    ("written", "fires"),
    [("2026-01-01T23:59:59Z", False), ("2026-01-02T00:00:00Z", False), ("2026-01-02T00:00:01Z", True)],
)
def test_restart_pending_only_for_changes_after_the_oldest_agent_start(written: str, fires: bool) -> None:
    objects = [o for o in cluster() if o["kind"] not in ("ConfigMap", "Pod")]
    objects += [
        configmap(cilium_data(), written={"bpf-lb-sock-hostns-only": written}),
        cilium_pod("cilium-a", "2026-01-02T00:00:00Z"),
        cilium_pod("cilium-b", "2026-01-03T00:00:00Z"),
    ]
    found = outcome(check(objects), "CIC009")
    assert found == ((WARNING, [(CONFIG, "bpf-lb-sock-hostns-only", "true")]) if fires else None)


@pytest.mark.parametrize(
    ("mode", "fires"), [("ambient", False), ("none", False), ("Ambient", True), ("sidecar", True)]
)
def test_only_ambient_and_none_are_known_modes(mode: str, fires: bool) -> None:
    objects = [*cluster(), namespace("shop", mode=mode)]
    found = outcome(check(objects), "CIC017")
    assert found == (
        (WARNING, [("Namespace shop", "label istio.io/dataplane-mode", mode)]) if fires else None
    )


@pytest.mark.parametrize(
    ("dns", "kpr", "version", "fires"),
    [
        ("ClusterFirst", "true", DEFAULT, True),
        ("", "true", DEFAULT, True),
        ("ClusterFirstWithHostNet", "true", DEFAULT, False),
        ("ClusterFirst", "false", DEFAULT, False),
        ("ClusterFirst", "strict", "1.15.19", True),  # full kube-proxy replacement before 1.16
        ("ClusterFirst", "partial", "1.15.19", False),
        ("ClusterFirst", "True", "1.19.4", True),  # a Go bool from 1.19
        ("ClusterFirst", "0", "1.19.4", False),
    ],
)
def test_istio_cni_dns_policy_on_host_network_with_kpr(dns: str, kpr: str, version: str, fires: bool) -> None:
    """CIC020 reads kube-proxy replacement as the agent does (effective.kube_proxy_replacement)."""
    objects = without(cluster(version, kube_proxy_replacement=kpr), "DaemonSet", "istio-cni-node")
    cni = daemonset(
        "istio-cni-node", ISTIO_NS, {"k8s-app": "istio-cni-node"}, "docker.io/istio/install-cni:1.23.0"
    )
    cni["spec"]["template"]["spec"]["hostNetwork"] = True
    if dns:
        cni["spec"]["template"]["spec"]["dnsPolicy"] = dns
    found = outcome(check([*objects, cni]), "CIC020")
    expected = (
        WARNING,
        [
            ("DaemonSet istio-system/istio-cni-node", "spec.template.spec.dnsPolicy", dns or None),
            (CONFIG, "kube-proxy-replacement", kpr),
        ],
    )
    assert found == (expected if fires else None)


# --------------------------------------------------------------------------- found surviving in a later run


@pytest.mark.parametrize(("version", "fires"), [("1.16.9", False), ("1.17.0", True)])
def test_non_default_deny_flag_exists_from_1_17(version: str, fires: bool) -> None:
    report = check(cluster(version, [probe_policy(False)], enable_non_default_deny_policies="false"))
    assert ("CIC018" in ids(report)) is fires


@pytest.mark.parametrize(("tag", "fires"), [("1.21.6", False), ("1.22.0", True)])
def test_pods_enrolled_by_their_own_label_from_istio_1_22(tag: str, fires: bool) -> None:
    objects = [
        *istio_cluster(tag),
        namespace("shop", mode=None),
        app_pod("shop", "web-1", {"istio.io/dataplane-mode": "ambient"}),
        network_policy("shop", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]}),
    ]
    found = outcome(check(objects), "CIC005")
    assert found == ((WARNING, [("NetworkPolicy shop/deny", None, None)]) if fires else None)


def ipblock_policy(cidr: str, *, except_: list[str] | None = None, ports: list[Obj] | None = None) -> Obj:
    rule: dict[str, Any] = {"from": [{"ipBlock": {"cidr": cidr, **({"except": except_} if except_ else {})}}]}
    if ports is not None:
        rule["ports"] = ports
    return network_policy(
        "bookinfo", "probes", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [rule]}
    )


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        (ipblock_policy("169.254.7.127/32"), True),
        (ipblock_policy("169.254.0.0/16"), True),
        (ipblock_policy("169.254.0.0/16", except_=["169.254.7.127/32"]), False),
        (ipblock_policy("169.254.7.127/32", ports=[{"port": 8080, "protocol": "UDP"}]), False),
        (ipblock_policy("169.254.7.127/32", ports=[{"port": 8080}]), True),
        (ipblock_policy("10.0.0.0/8"), False),
    ],
)
def test_networkpolicy_ipblock_probe_allowance(policy: Obj, allowed: bool) -> None:
    deny = network_policy("bookinfo", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    found = outcome(check(cluster(DEFAULT, [deny, policy])), "CIC005")
    if allowed:
        assert found is None
    else:
        assert found is not None and found[0] == WARNING
        assert ("NetworkPolicy bookinfo/deny", None, None) in found[1]


@pytest.mark.parametrize(
    ("ipv4", "ipv6", "cidr", "allowed"),
    [
        ("false", "true", "fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128", True),  # IPv6 only: the v6 source
        ("false", "true", "169.254.7.127/32", False),
        ("true", "true", "169.254.7.127/32", True),  # dual stack: kubelet probes the IPv4 address
        ("true", "false", "169.254.7.127/32", True),
    ],
)
def test_probe_source_follows_the_ip_family(ipv4: str, ipv6: str, cidr: str, allowed: bool) -> None:
    deny = network_policy("bookinfo", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    report = check(cluster(DEFAULT, [deny, ipblock_policy(cidr)], enable_ipv4=ipv4, enable_ipv6=ipv6))
    assert ("CIC005" in ids(report)) is not allowed


@pytest.mark.parametrize(
    ("data", "refused"),
    [
        ({"install_no_conntrack_iptables_rules": "true", "enable_bpf_masquerade": "false"}, True),
        ({"install_no_conntrack_iptables_rules": "true", "enable_bpf_masquerade": "true"}, False),
        (
            {
                "install_no_conntrack_iptables_rules": "true",
                "enable_bpf_masquerade": "true",
                "kube_proxy_replacement": "false",
            },
            True,
        ),
        ({"enable_ip_masq_agent": "true", "enable_bpf_masquerade": "false"}, True),
        ({"enable_ip_masq_agent": "true", "enable_bpf_masquerade": "true"}, False),
        ({"enable_ip_masq_agent": "false", "enable_bpf_masquerade": "false"}, False),
    ],
)
def test_settings_the_agent_refuses(data: dict[str, str], refused: bool) -> None:
    found = outcome(check(cluster("1.17.4", **data)), "CIC023")
    keys = {key for _, key, _ in found[1]} if found else set()
    guard = (
        "install-no-conntrack-iptables-rules"
        if "install_no_conntrack_iptables_rules" in data
        else "enable-ip-masq-agent"
    )
    assert (guard in keys) is refused


def test_masquerading_is_on_by_default() -> None:
    """Absent enable-ipv4-masquerade means true: BPF masquerade then has work and is not refused."""
    report = check(
        cluster("1.16.0", enable_bpf_masquerade="true", enable_ipv4_masquerade=None, enable_ipv6="false")
    )
    assert "CIC023" not in ids(report)
    report = check(cluster("1.16.0", enable_bpf_masquerade="true", enable_ipv4="false", enable_ipv6="false"))
    assert outcome(report, "CIC023") == (WARNING, [(CONFIG, "enable-bpf-masquerade", "true")])


def test_port_zero_means_every_port() -> None:
    assert outcome(check(cluster(DEFAULT, [np_ports({"port": 0, "protocol": "TCP"})])), "CIC013") is None


def test_namespace_exists_expression_selects_every_namespace() -> None:
    selector = {"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "Exists"}]}
    report = check(cluster(DEFAULT, [SHOP, isolating_ccnp(selector)]))
    [finding] = [f for f in report.findings if f.id == "CIC005"]
    assert [e.note for e in finding.evidence] == [
        f"isolates ingress of pods in ambient namespace {ns}" for ns in ("bookinfo", "shop")
    ]


def test_waypoint_names_sorting_before_none_are_not_opt_outs() -> None:
    objects = mesh(
        bound_namespace("bookinfo", "bookinfo-wp"),
        waypoint("bookinfo-wp", "service"),
        bpf_lb_sock_hostns_only=None,
    )
    assert outcome(check(objects), "CIC022") == (
        ERROR,
        [("Namespace bookinfo", "label istio.io/use-waypoint", "bookinfo-wp")],
    )


def test_only_istio_waypoint_gateways_are_waypoints() -> None:
    """A Gateway of another class is no waypoint: its waypoint-for label does not count."""
    ingress = waypoint("wp", "workload")
    ingress["spec"]["gatewayClassName"] = "istio"
    objects = mesh(bound_namespace("bookinfo", "wp"), ingress, bpf_lb_sock_hostns_only=None)
    assert outcome(check(objects), "CIC022") == (
        ERROR,
        [("Namespace bookinfo", "label istio.io/use-waypoint", "wp")],
    )


def service(name: str, ns: str = "bookinfo", labels: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, ns, labels=labels),
        "spec": {"ports": [{"port": 9080, "protocol": "TCP"}], "selector": {"app": name}},
    }


def l7_policy(name: str, ref: dict[str, Any], *, singular: bool = False, ns: str = "bookinfo") -> Obj:
    spec: dict[str, Any] = {"rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}
    spec["targetRef" if singular else "targetRefs"] = ref if singular else [ref]
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": meta(name, ns),
        "spec": spec,
    }


def route(name: str, ref: dict[str, Any]) -> Obj:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": meta(name, "bookinfo"),
        "spec": {"parentRefs": [ref], "rules": [{"backendRefs": [{"name": "reviews-v2", "port": 9080}]}]},
    }


BOUND = "Namespace bookinfo"
SERVICE_REF = {"group": "", "kind": "Service", "name": "reviews"}


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ([l7_policy("ap", SERVICE_REF)], ["AuthorizationPolicy bookinfo/ap"]),
        ([l7_policy("ap", {**SERVICE_REF, "group": "core"})], ["AuthorizationPolicy bookinfo/ap"]),
        ([l7_policy("ap", SERVICE_REF, singular=True)], ["AuthorizationPolicy bookinfo/ap"]),
        ([l7_policy("ap", {**SERVICE_REF, "group": "apps"})], []),
        (
            [l7_policy("ap", {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "wp"})],
            ["AuthorizationPolicy bookinfo/ap"],
        ),
        ([l7_policy("ap", {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "other"})], []),
        ([route("split", SERVICE_REF)], ["HTTPRoute bookinfo/split"]),
        ([route("split", {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "wp"})], []),
        ([service("reviews", labels={"istio.io/use-waypoint": "none"}), l7_policy("ap", SERVICE_REF)], []),
    ],
)
def test_policies_and_routes_attached_to_a_skipped_waypoint(extra: list[Obj], named: list[str]) -> None:
    objects = mesh(
        bound_namespace("bookinfo", "wp"), waypoint("wp", "service"), *extra, bpf_lb_sock_hostns_only=None
    )
    found = outcome(check(objects), "CIC022")
    assert found is not None and found[0] == ERROR
    assert [o for o, _, _ in found[1]] == [BOUND, *named]


def test_workload_waypoint_policies_are_not_named() -> None:
    objects = mesh(
        bound_namespace("bookinfo", "wp"),
        waypoint("wp", "workload"),
        l7_policy("ap", {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "wp"}),
        l7_policy("ap2", SERVICE_REF),
        bpf_lb_sock_hostns_only=None,
    )
    assert "CIC022" not in ids(check(objects))


def test_a_service_bound_by_its_own_label() -> None:
    objects = mesh(
        namespace("bookinfo"),
        service("reviews", labels={"istio.io/use-waypoint": "wp"}),
        waypoint("wp", "service"),
        l7_policy("ap", SERVICE_REF),
        bpf_lb_sock_hostns_only=None,
    )
    found = outcome(check(objects), "CIC022")
    assert found == (
        ERROR,
        [
            ("Service bookinfo/reviews", "label istio.io/use-waypoint", "wp"),
            ("AuthorizationPolicy bookinfo/ap", None, None),
        ],
    )


@pytest.mark.parametrize(("with_pod", "fires"), [(True, True), (False, False)])
def test_a_bound_service_outside_ambient_namespaces_needs_mesh_pods(with_pod: bool, fires: bool) -> None:
    extra = [
        namespace("shop", mode=None),
        service("cart", "shop", labels={"istio.io/use-waypoint": "wp"}),
        waypoint("wp", "service", ns="shop"),
    ]
    if with_pod:
        extra.append(app_pod("shop", "cart-1", {"istio.io/dataplane-mode": "ambient"}))
    found = outcome(check(cluster(DEFAULT, extra, bpf_lb_sock_hostns_only=None)), "CIC022")
    assert found == ((ERROR, [("Service shop/cart", "label istio.io/use-waypoint", "wp")]) if fires else None)


# --------------------------------------------------------------------------- the version as shown


@pytest.mark.parametrize(
    ("image", "shown", "compared"),
    [
        ("quay.io/cilium/cilium:v1.19", "1.19", (1, 19, 0)),
        ("quay.io/cilium/cilium:v1.17.4@sha256:abc", "1.17.4", (1, 17, 4)),
        ("ghcr.io/canonical/cilium:1.19.4-ck1", "1.19.4", (1, 19, 4)),
        ("quay.io/cilium/cilium:latest", None, None),
    ],
)
def test_the_version_is_shown_as_the_tag_writes_it(
    image: str, shown: str | None, compared: tuple[int, int, int] | None
) -> None:
    """An X.Y tag (Helm values for an X.Y chart) is not reported as a made-up X.Y.0."""
    objects = [o for o in healthy() if o["kind"] != "DaemonSet" or o["metadata"]["name"] != "cilium"]
    report = check([*objects, cilium_agent(image=image)])
    assert report.cilium["version"] == shown
    facts = Facts(build_snapshot([*objects, cilium_agent(image=image)]))
    assert facts.version == compared


# --------------------------------------------------------------------------- effective.py: notes, unparsable values


def notes(report: Report, rule_id: str) -> list[tuple[str | None, str | None, str]]:
    """(key, value, note) of each evidence line of one finding."""
    return next([(e.key, e.value, e.note) for e in f.evidence] for f in report.findings if f.id == rule_id)


def unknown_version(**data: str | None) -> list[Obj]:
    """`cluster()` with an agent image whose tag names no version."""
    objects = [o for o in cluster(**data) if o["kind"] != "DaemonSet" or o["metadata"]["name"] != "cilium"]
    return [*objects, cilium_agent(image="registry.local/cilium-agent:latest")]


def test_socket_lb_off_says_why_for_an_absent_kpr_and_a_false_bpf_lb_sock() -> None:
    report = check(cluster(kube_proxy_replacement=None, **SOCKET_OFF))
    assert notes(report, "CIC001") == [
        ("kube-proxy-replacement", None, "socket LB not forced"),
        ("bpf-lb-sock", "false", ""),
    ]


@pytest.mark.parametrize(
    ("objects", "note"),
    [
        (
            cluster("1.15.9", kube_proxy_replacement="strict", bpf_lb_sock_hostns_only=None),
            "strict: Cilium ≤ 1.15 value; forces socket LB on",
        ),
        (
            unknown_version(kube_proxy_replacement="strict", bpf_lb_sock_hostns_only=None),
            "strict: Cilium ≤ 1.15 value (Cilium version unknown: read as ≤ 1.15); forces socket LB on",
        ),
    ],
)
def test_a_deprecated_kpr_value_says_when_the_version_is_unknown(objects: list[Obj], note: str) -> None:
    report = check(objects)
    assert notes(report, "CIC001")[0] == ("kube-proxy-replacement", "strict", note)
    assert "CIC023" not in ids(report)


@pytest.mark.parametrize(
    ("raw", "note"),
    [
        ("Strict", "values are case-sensitive: the agent does not start with it; assumed on"),
        ("PROBE", "values are case-sensitive: the agent does not start with it; assumed on"),
        ("yes", "not a value any Cilium accepts: the agent does not start with it; assumed on"),
        ("bogus", "not a value any Cilium accepts: the agent does not start with it; assumed on"),
    ],
)
def test_a_kpr_value_no_cilium_accepts_says_whether_only_its_case_is_wrong(raw: str, note: str) -> None:
    report = check(cluster(kube_proxy_replacement=raw, **SOCKET_OFF))
    assert notes(report, "CIC023") == [("kube-proxy-replacement", raw, f"{note} (all nodes)")]


@pytest.mark.parametrize(
    ("sock", "expected"),
    [
        (None, []),
        ("true", []),
        ("false", [("bpf-lb-sock", "false", "ignored: kube-proxy replacement forces socket LB on")]),
        (
            "yes",
            [
                (
                    "bpf-lb-sock",
                    "yes",
                    "does not parse as a boolean; ignored: kube-proxy replacement forces socket LB on",
                )
            ],
        ),
    ],
)
def test_full_kpr_names_a_bpf_lb_sock_it_overrides_only_when_set_and_not_true(
    sock: str | None, expected: list[tuple[str, str, str]]
) -> None:
    report = check(cluster(kube_proxy_replacement="true", bpf_lb_sock=sock, bpf_lb_sock_hostns_only=None))
    assert notes(report, "CIC001") == [
        ("kube-proxy-replacement", "true", "forces socket LB on"),
        *expected,
        ("bpf-lb-sock-hostns-only", None, "absent: agent default false"),
    ]


@pytest.mark.parametrize(
    ("sock", "note"), [("true", "enables socket LB"), ("yes", "does not parse as a boolean; assumed on")]
)
def test_bpf_lb_sock_alone_says_whether_it_was_read_or_assumed(sock: str, note: str) -> None:
    report = check(cluster(kube_proxy_replacement="false", bpf_lb_sock=sock, bpf_lb_sock_hostns_only=None))
    assert notes(report, "CIC001")[0] == ("bpf-lb-sock", sock, note)


@pytest.mark.parametrize(
    ("objects", "note"),
    [
        (
            cluster(
                "1.12.9",
                kube_proxy_replacement="partial",
                bpf_lb_sock=None,
                bpf_lb_sock_hostns_only=None,
                enable_host_reachable_services="yes",
            ),
            "does not parse as a boolean; Cilium ≤ 1.12: enables socket LB",
        ),
        (
            cluster(
                "1.12.9",
                kube_proxy_replacement="partial",
                bpf_lb_sock=None,
                bpf_lb_sock_hostns_only=None,
                enable_host_reachable_services="true",
            ),
            "Cilium ≤ 1.12: enables socket LB",
        ),
        (
            unknown_version(
                kube_proxy_replacement="false",
                bpf_lb_sock=None,
                bpf_lb_sock_hostns_only=None,
                enable_host_reachable_services="true",
            ),
            "enables socket LB on Cilium ≤ 1.12 (version unknown)",
        ),
    ],
)
def test_host_reachable_services_note_per_version_and_spelling(objects: list[Obj], note: str) -> None:
    report = check(objects)
    assert ids(report)["CIC001"] == ERROR
    assert notes(report, "CIC001")[0][::2] == ("enable-host-reachable-services", note)


def test_an_unparsable_legacy_routing_value_is_read_as_legacy() -> None:
    report = check(cluster("1.18.1", **{**BPF_ROUTING, "enable_host_legacy_routing": "yes"}))
    assert "CIC011" not in ids(report)


def test_an_unparsable_ipsec_value_does_not_force_legacy_routing() -> None:
    """Only `enable-ipsec` reading true forces legacy routing on ≤ 1.18; its own rule flags the spelling."""
    report = check(cluster("1.18.9", **BPF_ROUTING, enable_ipsec="yes"))
    assert ids(report)["CIC011"] == ERROR


@pytest.mark.parametrize(("bpf", "refused"), [("true", False), ("false", True), ("yes", True)])
def test_ip_masq_agent_is_refused_unless_bpf_masquerade_reads_true(bpf: str, refused: bool) -> None:
    report = check(cluster("1.17.4", enable_ip_masq_agent="true", enable_bpf_masquerade=bpf))
    masq_agent = (
        "enable-ip-masq-agent",
        "true",
        "BPF ip-masq-agent requires enable-bpf-masquerade and masquerading (all nodes)",
    )
    assert (masq_agent in (notes(report, "CIC023") if "CIC023" in ids(report) else [])) is refused


def test_a_node_config_after_one_that_leaves_socket_lb_alone_is_still_checked() -> None:
    extra = [
        node_config("pool-a", {"enable-ipv6": "false"}),
        node_config("pool-b", {"bpf-lb-sock-hostns-only": "false"}),
    ]
    report = check(cluster(DEFAULT, extra))
    assert outcome(report, "CIC001") == (
        ERROR,
        [
            (CONFIG, "kube-proxy-replacement", "true"),
            ("CiliumNodeConfig kube-system/pool-b", "bpf-lb-sock-hostns-only", "false"),
        ],
    )
    assert report.findings[0].summary.endswith("(CiliumNodeConfig kube-system/pool-b)")


# --------------------------------------------------------------------------- policies.py: selectors, caps, scopes

NS_KEY = "k8s:io.kubernetes.pod.namespace"
L7_INGRESS = [{"toPorts": [{"ports": [{"port": "80"}], "rules": {"http": [{}]}}]}]
PROBE_CIDR = {"fromCIDR": ["169.254.7.127/32"]}
DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress"]}


def ambient(*names: str) -> list[Obj]:
    return [namespace(n) for n in names]


def note_of(report: Report, rule_id: str) -> list[tuple[str, str]]:
    """(object, note) of each evidence line of one finding."""
    return next([(e.object, e.note) for e in f.evidence] for f in report.findings if f.id == rule_id)


def multi_spec_ccnp(name: str, specs: list[Obj]) -> Obj:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": meta(name),
        "specs": specs,
    }


@pytest.mark.parametrize(("other", "selected"), [("bookinfo", ["bookinfo"]), ("shop", [])])
def test_both_namespace_keys_of_match_labels_must_hold(other: str, selected: list[str]) -> None:
    """matchLabels ANDs its keys: two namespace labels naming different namespaces select none."""
    selector = {"matchLabels": {NS_KEY: "bookinfo", "io.kubernetes.pod.namespace": other}}
    report = check(
        cluster(
            DEFAULT, [*ambient("shop"), ccnp("l7", {"endpointSelector": selector, "ingress": L7_INGRESS})]
        )
    )
    found = note_of(report, "CIC006") if "CIC006" in ids(report) else []
    assert found == [
        ("CiliumClusterwideNetworkPolicy l7", f"selects pods in ambient namespace(s) {', '.join(selected)}")
    ] * bool(selected)


@pytest.mark.parametrize(("protocol", "blocked"), [("UDP", True), ("TCP", False)])
def test_a_cilium_probe_allowance_on_udp_ports_only_admits_no_probe(protocol: str, blocked: bool) -> None:
    allowance = cnp(
        "bookinfo",
        "probes",
        {
            "endpointSelector": {},
            "enableDefaultDeny": {"ingress": False, "egress": False},
            "ingress": [{**PROBE_CIDR, "toPorts": [{"ports": [{"port": "8080", "protocol": protocol}]}]}],
        },
    )
    report = check(cluster(DEFAULT, [allowance, network_policy("bookinfo", "deny", DENY_ALL)]))
    expected = (WARNING, [("NetworkPolicy bookinfo/deny", None, None)])
    assert outcome(report, "CIC005") == (expected if blocked else None)


@pytest.mark.parametrize("count", [5, 6])
def test_enable_policy_always_lists_five_namespaces_then_an_ellipsis(count: int) -> None:
    names = [f"app{i}" for i in range(1, count)]  # with bookinfo: `count` ambient namespaces
    report = check(cluster(DEFAULT, ambient(*names), enable_policy="always"))
    shown = ", ".join(sorted([*names, "bookinfo"])[:5])  # the first five, by name
    assert note_of(report, "CIC005") == [
        (
            CONFIG,
            f"every endpoint on all nodes default-deny; no probe allowance in {shown}"
            + (" …" if count > 5 else ""),
        )
    ]


def test_a_clusterwide_policy_is_reported_for_each_namespace_without_an_allowance() -> None:
    allowance = network_policy(
        "bookinfo",
        "probes",
        {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "169.254.7.127/32"}}]}]},
    )
    deny = ccnp("deny", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]})
    report = check(cluster(DEFAULT, [*ambient("shop"), allowance, deny]))
    assert note_of(report, "CIC005") == [
        ("CiliumClusterwideNetworkPolicy deny", "isolates ingress of pods in ambient namespace shop")
    ]


def test_each_policy_and_namespace_is_named_once_across_specs() -> None:
    deny = multi_spec_ccnp(
        "deny",
        [
            {"endpointSelector": {"matchLabels": {NS_KEY: "bookinfo"}}, "ingress": [{"fromEndpoints": [{}]}]},
            {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]},
        ],
    )
    report = check(cluster(DEFAULT, [*ambient("shop"), deny]))
    assert note_of(report, "CIC005") == [
        ("CiliumClusterwideNetworkPolicy deny", "isolates ingress of pods in ambient namespace bookinfo"),
        ("CiliumClusterwideNetworkPolicy deny", "isolates ingress of pods in ambient namespace shop"),
    ]


def test_l7_rule_is_found_whatever_order_the_snapshot_lists_policies_in() -> None:
    snapshot = build_snapshot(
        cluster(
            DEFAULT,
            [
                network_policy("bookinfo", "deny", DENY_ALL),
                cnp("bookinfo", "l7", {"endpointSelector": {}, "ingress": L7_INGRESS}),
            ],
        )
    )
    reordered = dataclasses.replace(snapshot, policies=tuple(reversed(snapshot.policies)))
    assert [p.kind for p in reordered.policies] == ["NetworkPolicy", "CiliumNetworkPolicy"]
    assert outcome(evaluate(reordered), "CIC006") == (
        ERROR,
        [("CiliumNetworkPolicy bookinfo/l7", "toPorts[].rules", "http/kafka")],
    )


@pytest.mark.parametrize(
    ("tag", "fix_end"),
    [
        ("1.21.6", "(Istio 1.21: annotate them ambient.istio.io/redirection: disabled)."),
        ("1.22.0", "(Istio ≥ 1.22)."),
    ],
)
def test_l7_fix_names_the_opt_out_of_the_running_istio(tag: str, fix_end: str) -> None:
    objects = [*istio_cluster(tag), cnp("bookinfo", "l7", {"endpointSelector": {}, "ingress": L7_INGRESS})]
    [finding] = [f for f in check(objects).findings if f.id == "CIC006"]
    assert finding.fix.endswith(fix_end)


EGRESS_8080 = [{"toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}]


@pytest.mark.parametrize(
    ("policy", "fires"),
    [
        (cnp("bookinfo", "out", {"endpointSelector": {}, "egress": EGRESS_8080}), True),
        (
            cnp(
                "bookinfo",
                "out",
                {"endpointSelector": {}, "egress": EGRESS_8080, "enableDefaultDeny": {"egress": False}},
            ),
            False,
        ),
        (
            network_policy(
                "bookinfo",
                "out",
                {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 8080}]}]},
            ),
            True,
        ),
        (
            network_policy(
                "bookinfo",
                "out",
                {"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{"ports": [{"port": 8080}]}]},
            ),
            False,
        ),
    ],
)
def test_port_limited_egress_counts_only_where_it_isolates(policy: Obj, fires: bool) -> None:
    report = check(cluster(DEFAULT, [policy]))
    name = f"{policy['kind']} bookinfo/out"
    expected = (WARNING, [(name, "egress ports", "8080/TCP")])
    assert outcome(report, "CIC013") == (expected if fires else None)


def test_hbone_note_names_three_namespaces() -> None:
    limited = ccnp(
        "ports", {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "8080"}]}]}]}
    )
    report = check(cluster(DEFAULT, [*ambient("app1", "app2", "app3"), limited]))
    assert note_of(report, "CIC013") == [
        (
            "CiliumClusterwideNetworkPolicy ports",
            "no 15008/TCP; ambient namespace app1; ambient namespace app2; ambient namespace app3",
        )
    ]


def probe_only(selector: Obj) -> Obj:
    return {"endpointSelector": selector, "ingress": [PROBE_CIDR]}


@pytest.mark.parametrize(
    ("policy", "scope"),
    [
        (ccnp("allow-probes", probe_only({})), "every pod in the cluster"),
        (ccnp("allow-probes", probe_only({"matchLabels": {"app": "web"}})), "every pod it selects"),
        (cnp("bookinfo", "allow-probes", probe_only({})), "every pod it selects"),
    ],
)
def test_probe_policy_says_whom_it_isolates(policy: Obj, scope: str) -> None:
    report = check(cluster(DEFAULT, [policy]))
    [(_, note_text)] = note_of(report, "CIC018")
    assert note_text == f"no enableDefaultDeny: {{ingress: false}}: {scope} becomes ingress default-deny"


@pytest.mark.parametrize("extra", [[], [node_config("pool-a", {"enable-policy": "always"})]])
def test_probe_policy_checked_unless_enable_policy_is_always_everywhere(extra: list[Obj]) -> None:
    """Only a global enable-policy=always makes the policy's own default-deny moot."""
    report = check(cluster(DEFAULT, [probe_policy(None), *extra], enable_policy=None))
    assert outcome(report, "CIC018") == (
        ERROR,
        [("CiliumClusterwideNetworkPolicy allow-probes", "enableDefaultDeny.ingress", None)],
    )
    assert "CIC018" not in ids(check(cluster(DEFAULT, [probe_policy(None)], enable_policy="always")))


def test_any_policy_relying_on_enable_default_deny_false_before_1_16_is_reported() -> None:
    policy = cnp(
        "bookinfo",
        "allow-web",
        {
            "endpointSelector": {},
            "enableDefaultDeny": {"ingress": False},
            "ingress": [{"fromEndpoints": [{}]}],
        },
    )
    report = check(cluster("1.15.9", [policy]))
    assert note_of(report, "CIC018") == [
        (
            "CiliumNetworkPolicy bookinfo/allow-web",
            "enableDefaultDeny is honoured from Cilium 1.16 only: every pod it selects becomes default-deny (ingress)",
        )
    ]


def test_a_probe_policy_with_two_specs_is_named_once() -> None:
    report = check(cluster(DEFAULT, [multi_spec_ccnp("allow-probes", [probe_only({}), probe_only({})])]))
    assert outcome(report, "CIC018") == (
        ERROR,
        [("CiliumClusterwideNetworkPolicy allow-probes", "enableDefaultDeny.ingress", None)],
    )


# --------------------------------------------------------------------------- istio.py: where paths come from, versions

MICROK8S_CONF = "/var/snap/microk8s/args/cni-network"
ISTIO_CNI = "DaemonSet istio-system/istio-cni-node"


def with_istio_cni(objects: list[Obj], ds: Obj) -> list[Obj]:
    return [*without(objects, "DaemonSet", "istio-cni-node"), ds]


@pytest.mark.parametrize(
    ("agent", "source"),
    [
        (cilium_agent(), "DaemonSet kube-system/cilium volume etc-cni-netd"),
        (
            daemonset("cilium", "kube-system", {"k8s-app": "cilium"}, cilium(DEFAULT)),
            "the default",
        ),  # no volume
        (None, "the default"),  # no agent found
    ],
)
def test_cni_dir_mismatch_says_where_ciliums_path_comes_from(agent: Obj | None, source: str) -> None:
    objects = [o for o in cluster() if o["kind"] != "DaemonSet" or o["metadata"]["name"] != "cilium"]
    objects = with_istio_cni([*objects, *([agent] if agent else [])], istio_cni(conf=MICROK8S_CONF))
    report = check(objects)
    [finding] = [f for f in report.findings if f.id == "CIC004"]
    assert [(e.object, e.key, e.value, e.note) for e in finding.evidence] == [
        (ISTIO_CNI, "volume cni-net-dir hostPath", MICROK8S_CONF, f"Cilium uses /etc/cni/net.d ({source})")
    ]
    assert finding.detail.endswith("The paths are MicroK8s', from istio-k8s' default platform=microk8s.")


def test_a_non_microk8s_mismatch_does_not_blame_the_microk8s_default() -> None:
    report = check(with_istio_cni(cluster(), istio_cni(conf="/etc/cni/other.d")))
    [finding] = [f for f in report.findings if f.id == "CIC004"]
    assert [e.value for e in finding.evidence] == ["/etc/cni/other.d"]
    assert "MicroK8s" not in finding.detail


@pytest.mark.parametrize(("source", "shown"), [("relation", "relation"), ("option", "option")])
def test_a_wrong_root_namespace_says_where_it_came_from(source: str, shown: str) -> None:
    snapshot = build_snapshot(cluster(), istio_namespace="istio-other", istio_namespace_source=source)
    [finding] = [f for f in evaluate(snapshot).findings if f.id == "CIC008"]
    assert finding.severity is WARNING
    assert (
        finding.summary == f"No ztunnel in Istio root namespace istio-other (from {shown}); it runs elsewhere"
    )
    assert [e.object for e in finding.evidence] == [
        "DaemonSet ztunnel (selecting app=ztunnel pods) in namespace istio-other",
        "DaemonSet istio-system/ztunnel",
    ]


def with_status(ds: Obj, ready: int, desired: int) -> Obj:
    return {**ds, "status": {**ds["status"], "numberReady": ready, "desiredNumberScheduled": desired}}


@pytest.mark.parametrize(("ready", "desired", "fires"), [(1, 2, True), (2, 2, False), (3, 2, False)])
def test_not_ready_only_when_fewer_are_ready_than_scheduled(ready: int, desired: int, fires: bool) -> None:
    report = check(with_istio_cni(cluster(), with_status(istio_cni(), ready, desired)))
    expected = (WARNING, [(ISTIO_CNI, "status.numberReady", str(ready))])
    assert outcome(report, "CIC019") == (expected if fires else None)


def host_network_cni(dns_policy: str | None, tag: str = "1.26.1") -> Obj:
    ds = istio_cni()
    spec = ds["spec"]["template"]["spec"]
    spec["containers"][0]["image"] = f"docker.io/istio/install-cni:{tag}"
    spec["hostNetwork"] = True
    if dns_policy is not None:
        spec["dnsPolicy"] = dns_policy
    return ds


@pytest.mark.parametrize(
    ("dns_policy", "note"),
    [(None, "hostNetwork: true; absent means ClusterFirst"), ("Default", "hostNetwork: true")],
)
def test_cni_dns_policy_evidence_says_what_an_absent_policy_means(dns_policy: str | None, note: str) -> None:
    report = check(with_istio_cni(cluster(), host_network_cni(dns_policy)))
    [finding] = [f for f in report.findings if f.id == "CIC020"]
    assert [(e.object, e.key, e.value, e.note) for e in finding.evidence] == [
        (ISTIO_CNI, "spec.template.spec.dnsPolicy", dns_policy, note),
        (CONFIG, "kube-proxy-replacement", "true", "kube-proxy replacement on"),
    ]


def test_cni_dns_policy_reads_the_global_kube_proxy_replacement() -> None:
    extra = [node_config("pool-a", {"kube-proxy-replacement": "false"})]
    report = check(with_istio_cni(cluster(DEFAULT, extra), host_network_cni(None)))
    assert ids(report)["CIC020"] == WARNING


@pytest.mark.parametrize(("tag", "upgrade"), [("1.24.0", True), ("1.24", True), ("1.24.1", False)])
def test_cni_dns_policy_fix_depends_on_istio_1_24_1(tag: str, upgrade: bool) -> None:
    objects = with_istio_cni(istio_cluster(tag), host_network_cni(None, tag))
    [finding] = [f for f in check(objects).findings if f.id == "CIC020"]
    assert finding.fix.startswith("Upgrade Istio to 1.24.1") is upgrade


# --------------------------------------------------------------------------- cilium.py: context, problems, remedies


@pytest.mark.parametrize(
    ("objects", "shown"),
    [
        (cluster(kube_proxy_replacement="false", **SOCKET_OFF), "1.17.4"),
        (unknown_version(kube_proxy_replacement="false", **SOCKET_OFF), "(version unknown)"),
    ],
)
def test_socket_lb_off_names_the_cilium_version(objects: list[Obj], shown: str) -> None:
    [finding] = [f for f in check(objects).findings if f.id == "CIC001"]
    assert (
        finding.summary
        == f"Cilium {shown}: socket LB is off, Service traffic reaches ztunnel with its Service"
    )


@pytest.mark.parametrize("agent", [True, False])
def test_missing_config_lists_only_configmap_problems_and_the_agent(agent: bool) -> None:
    objects = without(cluster(), "ConfigMap")
    if not agent:
        objects = without(objects, "DaemonSet", "cilium")
    problems = [
        ReadProblem("configmaps", "forbidden", "configmaps is forbidden"),
        ReadProblem("ciliumnetworkpolicies", "error", "HTTP 500"),
        ReadProblem("pods", "error", "HTTP 500"),
    ]
    [finding] = [f for f in evaluate(build_snapshot(objects, problems=problems)).findings if f.id == "CIC007"]
    assert [(e.object, e.note) for e in finding.evidence] == [
        ("ConfigMap cilium-config in all namespaces", "not found"),
        ("configmaps", "forbidden: configmaps is forbidden"),
        *([("DaemonSet kube-system/cilium", "cilium agent found")] if agent else []),
    ]


def test_several_configs_say_which_one_was_checked() -> None:
    report = check([*cluster(), configmap({"cni-exclusive": "true"}, namespace="cilium")])
    assert note_of(report, "CIC016") == [
        ("ConfigMap cilium/cilium-config", "not checked"),
        ("ConfigMap kube-system/cilium-config", "checked"),
    ]


BPF_MASQ_NODES = {"enable-bpf-masquerade": "true"}


def test_bpf_masquerade_on_a_later_node_config_is_found() -> None:
    extra = [node_config("pool-a", {"cni-exclusive": "false"}), node_config("pool-b", BPF_MASQ_NODES)]
    report = check(cluster(DEFAULT, extra))
    assert outcome(report, "CIC010") == (
        WARNING,
        [("CiliumNodeConfig kube-system/pool-b", "enable-bpf-masquerade", "true")],
    )


def test_bpf_host_routing_on_a_later_node_config_is_found() -> None:
    extra = [
        node_config("pool-a", {"cni-exclusive": "false"}),
        node_config("pool-b", {"enable-host-legacy-routing": "false", **BPF_MASQ_NODES}),
    ]
    report = check(cluster("1.18.1", extra))
    pool_b = "CiliumNodeConfig kube-system/pool-b"
    assert outcome(report, "CIC011") == (
        ERROR,
        [
            (pool_b, "enable-host-legacy-routing", "false"),
            (CONFIG, "kube-proxy-replacement", "true"),
            (pool_b, "enable-bpf-masquerade", "true"),
        ],
    )
    assert {n.split(" (")[-1] for _, _, n in notes(report, "CIC011")} == {f"nodes selected by {pool_b})"}


@pytest.mark.parametrize(
    ("guard", "remedy"),
    [
        (None, r.Remedy(cilium=(r.NO_BPF_MASQUERADE,), restart_agents=True)),
        (
            "enable-ip-masq-agent",
            r.Remedy(
                cilium=(r.LEGACY_HOST_ROUTING,),
                restart_agents=True,
                steps=(
                    "Keep BPF masquerading (enable-ip-masq-agent requires it: the agent refuses to start without "
                    "it) and use legacy host routing, which keeps probes of ambient pods working (istio/istio#52208).",
                ),
            ),
        ),
    ],
)
def test_bpf_masquerade_remedy_keeps_it_where_a_setting_needs_it(guard: str | None, remedy: r.Remedy) -> None:
    data = {"enable_bpf_masquerade": "true", **({guard.replace("-", "_"): "true"} if guard else {})}
    [finding] = [f for f in check(cluster(DEFAULT, **data)).findings if f.id == "CIC010"]
    assert finding.remedy == remedy


def test_every_cilium_config_change_restarts_the_agents() -> None:
    """The agents read cilium-config only at start (CIC009): a remedy that writes it restarts them."""
    declared = [rule for rule in registered() if rule.remedy.cilium]
    assert {rule.id for rule in declared} >= {"CIC001", "CIC003", "CIC010", "CIC011"}
    assert [rule.id for rule in declared if not rule.remedy.restart_agents] == []


# --------------------------------------------------------------------------- access.py: what could not be read

FORBIDDEN_NP = ReadProblem("networkpolicies", "forbidden", "np is forbidden", "bookinfo")
FORBIDDEN_CM = ReadProblem("configmaps", "forbidden", "cm is forbidden")
ERROR_PODS = ReadProblem("pods", "error", "HTTP 500", "shop")
UNREACHABLE = ReadProblem("namespaces", "unreachable", "connection refused")
INVALID = ReadProblem("ciliumnetworkpolicies", "invalid", "spec.ingress: not a list", "bookinfo")
NETWORK_STEP = "Check the API server and network."
INVALID_STEP = (
    "Correct the field the evidence names in each malformed object "
    "(kubectl edit it, or fix the saved file it came from)."
)


def with_problems(*problems: ReadProblem) -> Report:
    return evaluate(build_snapshot(cluster(), problems=problems))


def test_forbidden_names_each_resource_and_namespace_and_nothing_else() -> None:
    report = with_problems(FORBIDDEN_NP, FORBIDDEN_CM, ERROR_PODS)
    [finding] = [f for f in report.findings if f.id == "CIC014"]
    assert finding.summary == "Not permitted to read configmaps, networkpolicies: grant read access"
    assert [(e.object, e.note) for e in finding.evidence] == [
        ("networkpolicies in bookinfo", "np is forbidden"),
        ("configmaps", "cm is forbidden"),
    ]
    assert finding.fix == "Grant get/list on configmaps, networkpolicies (README, RBAC)."


@pytest.mark.parametrize(
    ("problems", "summary", "fix"),
    [
        ((ERROR_PODS,), "Could not read pods", f"{NETWORK_STEP} Then check again."),
        (
            (ERROR_PODS, UNREACHABLE),
            "Kubernetes API unreachable: namespaces, pods",
            f"{NETWORK_STEP} Then check again.",
        ),
        ((UNREACHABLE,), "Kubernetes API unreachable: namespaces", f"{NETWORK_STEP} Then check again."),
        ((INVALID,), "Could not read ciliumnetworkpolicies", f"{INVALID_STEP} Then check again."),
        (
            (INVALID, ERROR_PODS),
            "Could not read ciliumnetworkpolicies, pods",
            f"{INVALID_STEP} {NETWORK_STEP} Then check again.",
        ),
    ],
)
def test_unreadable_says_unreachable_only_when_it_was_and_fixes_what_applies(
    problems: tuple[ReadProblem, ...], summary: str, fix: str
) -> None:
    [finding] = [f for f in with_problems(*problems, FORBIDDEN_CM).findings if f.id == "CIC015"]
    assert finding.summary == summary
    assert finding.fix == fix
    assert [e.object for e in finding.evidence] == [
        p.resource + (f" in {p.namespace}" if p.namespace else "") for p in problems
    ]
    assert [e.note for e in finding.evidence] == [f"{p.kind}: {p.message}" for p in problems]


# --------------------------------------------------------------------------- facts.py and the report's context


@pytest.mark.parametrize(
    ("image", "fires"),
    [
        ("docker.io/istio/ztunnel:1.20.8@sha256:abc", True),
        ("docker.io/istio/ztunnel:1.21.0@sha256:abc", False),
    ],
)
def test_istio_version_is_read_from_the_tag_before_a_digest(image: str, fires: bool) -> None:
    objects = [
        *without(healthy(), "DaemonSet", "ztunnel"),
        daemonset("ztunnel", ISTIO_NS, {"app": "ztunnel"}, image),
    ]
    assert (outcome(check(objects), "CIC021") == (ERROR, [(image, None, None)])) is fires


def test_an_istio_tag_without_patch_compares_as_patch_zero() -> None:
    """`1.22` is 1.22.0: pods enrolled by their own label count (Istio ≥ 1.22)."""
    objects = [
        *istio_cluster("1.22"),
        namespace("shop", mode=None),
        app_pod("shop", "web-1", {"istio.io/dataplane-mode": "ambient"}),
        network_policy("shop", "deny", DENY_ALL),
    ]
    assert outcome(check(objects), "CIC005") == (WARNING, [("NetworkPolicy shop/deny", None, None)])


def test_a_cilium_image_without_a_registry_still_gives_the_version() -> None:
    objects = [o for o in healthy() if o["kind"] != "DaemonSet" or o["metadata"]["name"] != "cilium"]
    assert Facts(build_snapshot([*objects, cilium_agent(image="cilium:v1.16.2")])).version == (1, 16, 2)


def test_format_version() -> None:
    assert (format_version((1, 17, 4)), format_version(None)) == ("1.17.4", None)


def test_root_namespace_picks_its_own_ztunnel_and_istio_cni() -> None:
    """Copies in another namespace (listed first) are neither judged nor read for versions."""
    stale_z = with_status(
        daemonset("ztunnel", "aaa", {"app": "ztunnel"}, "docker.io/istio/ztunnel:1.20.0"), 0, 2
    )
    stale_cni = with_status(istio_cni("aaa"), 0, 2)
    snapshot = build_snapshot([*cluster(), stale_z, stale_cni], istio_namespace=ISTIO_NS)
    facts = Facts(snapshot)
    assert snapshot.ztunnels[0].namespace == "aaa"
    assert facts.ztunnel is not None and facts.ztunnel.namespace == ISTIO_NS
    assert facts.istio_cni is not None and facts.istio_cni.namespace == ISTIO_NS
    assert {"CIC019", "CIC021"} & set(ids(evaluate(snapshot))) == set()


def test_label_enrolled_pods_are_pods_outside_ambient_namespaces() -> None:
    label = {"istio.io/dataplane-mode": "ambient"}
    objects = [
        *cluster(),
        namespace("shop", mode=None),
        namespace("plain", mode=None),
        app_pod("shop", "web-1", label),
        app_pod("bookinfo", "also-ambient", label),  # its namespace is enrolled already
        app_pod("plain", "web-2", {}),  # not labelled
        service("api", "plain", {**label, "istio.io/use-waypoint": "wp"}),  # a Service is not a pod
    ]
    assert Facts(build_snapshot(objects)).ambient_pods == {"shop": ("web-1",)}


@pytest.mark.parametrize(
    ("count", "shown"),
    [(3, "web-1, web-2, web-3"), (4, "web-1, web-2, web-3 (+1 more)"), (6, "web-1, web-2, web-3 (+3 more)")],
)
def test_scope_note_shows_three_label_enrolled_pods_then_a_count(count: int, shown: str) -> None:
    label = {"istio.io/dataplane-mode": "ambient"}
    pods = [app_pod("shop", f"web-{i}", label) for i in range(1, count + 1)]
    objects = [*cluster(), namespace("shop", mode=None), *pods, network_policy("shop", "deny", DENY_ALL)]
    assert note_of(check(objects), "CIC005") == [
        (
            "NetworkPolicy shop/deny",
            f"isolates ingress of pods in namespace shop (pods labelled ambient: {shown})",
        )
    ]


@pytest.mark.parametrize(
    ("labels", "annotations", "managed_by", "release"),
    [
        (None, None, "unknown", None),
        ({"app.kubernetes.io/managed-by": "Helm"}, None, "helm", "cilium"),
        (None, {"meta.helm.sh/release-name": "my-cilium"}, "helm", "my-cilium"),
    ],
)
def test_cilium_context_names_the_installer_and_release(
    labels: dict[str, str] | None, annotations: dict[str, str] | None, managed_by: str, release: str | None
) -> None:
    objects = [
        *without(cluster(), "ConfigMap"),
        configmap(cilium_data(), labels=labels, annotations=annotations),
    ]
    context = check(objects).cilium
    assert (context["found"], context["managed_by"], context["helm_release"]) == (True, managed_by, release)


def test_canonical_k8s_release_is_ck_network() -> None:
    k8sd = configmap({}, name="k8sd-config")
    facts = Facts(build_snapshot([*cluster(), k8sd]))
    assert (facts.managed_by, facts.helm_release) == ("canonical-k8s", ("ck-network", "kube-system"))
    assert check([*cluster(), k8sd]).cilium["helm_release"] == "ck-network"


def test_context_without_cilium_config_says_not_found() -> None:
    assert check(without(cluster(), "ConfigMap")).cilium == {"found": False}


def test_istio_context_lists_fifty_ambient_namespaces_and_counts_all() -> None:
    names = [f"app{i:02}" for i in range(50)]  # with bookinfo: 51
    context = check(cluster(DEFAULT, ambient(*names))).istio
    assert (len(context["ambient_namespaces"]), context["ambient_namespace_count"]) == (50, 51)


def test_evidence_beyond_the_limit_is_counted() -> None:
    odd = [namespace(f"odd{i:02}", mode="sidecar") for i in range(EVIDENCE_LIMIT + 12)]
    [finding] = [f for f in check([*cluster(), *odd]).findings if f.id == "CIC017"]
    assert len(finding.evidence) == EVIDENCE_LIMIT + 1
    assert finding.evidence[-1].object == "… and 12 more namespaces"


# --------------------------------------------------------------------------- registry.py


@pytest.mark.parametrize("taken", ["CIC001", "CIC002"])
def test_a_registered_or_retired_id_cannot_be_registered_again(taken: str) -> None:
    before = dict(RULES)
    try:
        with pytest.raises(ValueError, match=f"rule id {taken} is already registered or retired"):
            rule(taken, WARNING, "again", sources=("x",), reads=())(lambda facts: None)
    finally:
        RULES.clear()
        RULES.update(before)


def test_the_catalogue_links_issues_and_lists_retired_ids() -> None:
    table = catalogue_markdown()
    assert table.endswith(" |\n") and not table.endswith("\n\n")
    assert f"| CIC002 | retired | {RETIRED['CIC002']} | |\n" in table
    assert "[istio/istio#52208](https://github.com/istio/istio/issues/52208)" in table
    assert "`istio/ztunnel src/proxy/outbound.rs (build_request:" in table  # a file, not a link


# --------------------------------------------------------------------------- effective.py: unparsable masquerading keys

BPF_MASQ_LEGACY = [(CONFIG, "enable-bpf-masquerade", "true")]
BPF_MASQ_UNPARSABLE = [(CONFIG, "enable-bpf-masquerade", "yes")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # An absent enable-ipv4 is the agent default true: IPv4 masquerading is on.
        ({"enable_bpf_masquerade": "true", "enable_ipv4": None}, {"CIC010": (WARNING, BPF_MASQ_LEGACY)}),
        # Unparsable family or masquerade keys are not read as false.
        ({"enable_bpf_masquerade": "true", "enable_ipv4": "yes"}, {"CIC010": (WARNING, BPF_MASQ_LEGACY)}),
        (
            {"enable_bpf_masquerade": "true", "enable_ipv4_masquerade": "yes"},
            {"CIC010": (WARNING, BPF_MASQ_LEGACY)},
        ),
        # With BPF routing otherwise possible, they still mean iptables masquerading: legacy routing.
        ({**BPF_ROUTING, "enable_bpf_masquerade": "yes"}, {"CIC010": (WARNING, BPF_MASQ_UNPARSABLE)}),
        ({**BPF_ROUTING, "enable_bpf_masquerade": "false", "enable_ipv4": "yes"}, {}),
        ({**BPF_ROUTING, "enable_bpf_masquerade": "false", "enable_ipv4_masquerade": "yes"}, {}),
        ({"install_no_conntrack_iptables_rules": "yes"}, {}),
        ({"enable_ip_masq_agent": "yes"}, {}),
        (
            {"install_no_conntrack_iptables_rules": "true", "enable_bpf_masquerade": "yes"},
            {
                "CIC010": (WARNING, BPF_MASQ_UNPARSABLE),
                "CIC023": (WARNING, [(CONFIG, "install-no-conntrack-iptables-rules", "true")]),
            },
        ),
    ],
)
def test_unparsable_masquerading_keys(data: dict[str, str | None], expected: dict[str, object]) -> None:
    report = check(cluster("1.17.4", **data))
    assert {i: outcome(report, i) for i in ids(report)} == expected


def test_true_false_are_refused_before_1_14() -> None:
    report = check(cluster("1.12.9", kube_proxy_replacement="true", **SOCKET_OFF))
    assert outcome(report, "CIC023") == (WARNING, [(CONFIG, "kube-proxy-replacement", "true")])


# --------------------------------------------------------------------------- policies.py: more specs, views, versions


def test_probe_allowance_cidr_with_host_bits_still_covers_the_source() -> None:
    """`169.254.7.1/24` is accepted by the API server and holds 169.254.7.127."""
    allowance = network_policy(
        "bookinfo",
        "probes",
        {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "169.254.7.1/24"}}]}]},
    )
    assert "CIC005" not in ids(
        check(cluster(DEFAULT, [allowance, network_policy("bookinfo", "deny", DENY_ALL)]))
    )


@pytest.mark.parametrize(
    "allowance",
    [
        cnp(
            "bookinfo",
            "any",
            {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "8080"}]}]}]},
        ),
        network_policy("bookinfo", "any", {"podSelector": {}, "ingress": [{"ports": [{"port": 8080}]}]}),
        network_policy("bookinfo", "any", {"podSelector": {}, "ingress": [{}]}),
    ],
)
def test_a_rule_without_peers_admits_every_source_probes_included(allowance: Obj) -> None:
    assert "CIC005" not in ids(
        check(cluster(DEFAULT, [allowance, network_policy("bookinfo", "deny", DENY_ALL)]))
    )


def test_enable_policy_always_on_a_node_config_alone_is_found() -> None:
    extra = [node_config("pool-b", {"enable-policy": "always"})]
    assert note_of(check(cluster(DEFAULT, extra)), "CIC005") == [
        (
            "CiliumNodeConfig kube-system/pool-b",
            "every endpoint on nodes selected by CiliumNodeConfig kube-system/pool-b default-deny; "
            "no probe allowance in bookinfo",
        )
    ]


EGRESS_ONLY = {"endpointSelector": {}, "egress": [{"toEndpoints": [{}]}]}
DENY_INGRESS = {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]}


def test_a_later_spec_that_isolates_is_found_after_one_that_does_not() -> None:
    report = check(cluster(DEFAULT, [multi_spec_ccnp("mixed", [EGRESS_ONLY, DENY_INGRESS])]))
    assert note_of(report, "CIC005") == [
        ("CiliumClusterwideNetworkPolicy mixed", "isolates ingress of pods in ambient namespace bookinfo")
    ]


def test_l7_note_lists_five_namespaces_and_names_a_policy_once() -> None:
    l7 = {"endpointSelector": {}, "ingress": L7_INGRESS}
    report = check(
        cluster(DEFAULT, [*ambient("app1", "app2", "app3", "app4", "app5"), multi_spec_ccnp("l7", [l7, l7])])
    )
    assert note_of(report, "CIC006") == [
        (
            "CiliumClusterwideNetworkPolicy l7",
            "selects pods in ambient namespace(s) app1, app2, app3, app4, app5",
        )
    ]


def test_a_port_limited_spec_after_one_outside_the_mesh_is_found() -> None:
    outside = {
        "endpointSelector": {"matchLabels": {NS_KEY: ISTIO_NS}},
        "ingress": [{"toPorts": [{"ports": [{"port": "80"}]}]}],
    }
    inside = {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "8080"}]}]}]}
    report = check(cluster(DEFAULT, [multi_spec_ccnp("ports", [outside, inside])]))
    assert outcome(report, "CIC013") == (
        WARNING,
        [("CiliumClusterwideNetworkPolicy ports", "ingress ports", "8080/TCP")],
    )


@pytest.mark.parametrize(("version", "flag", "fires"), [("1.18.2", "false", True), ("1.17.4", "yes", False)])
def test_non_default_deny_flag_after_1_17_and_unparsable(version: str, flag: str, fires: bool) -> None:
    report = check(cluster(version, [probe_policy(False)], enable_non_default_deny_policies=flag))
    expected = (
        ERROR,
        [
            ("CiliumClusterwideNetworkPolicy allow-probes", "enableDefaultDeny.ingress", "false"),
            (CONFIG, "enable-non-default-deny-policies", "false"),
        ],
    )
    assert outcome(report, "CIC018") == (expected if fires else None)


def test_probe_policy_is_found_whatever_order_the_snapshot_lists_policies_in() -> None:
    snapshot = build_snapshot(
        cluster(DEFAULT, [network_policy("bookinfo", "web", DENY_ALL), probe_policy(None)])
    )
    reordered = dataclasses.replace(snapshot, policies=tuple(reversed(snapshot.policies)))
    assert [p.kind for p in reordered.policies] == ["NetworkPolicy", "CiliumClusterwideNetworkPolicy"]
    assert outcome(evaluate(reordered), "CIC018") == (
        ERROR,
        [("CiliumClusterwideNetworkPolicy allow-probes", "enableDefaultDeny.ingress", None)],
    )


def test_a_relying_policy_with_two_specs_is_named_once() -> None:
    relies = {**probe_only({}), "enableDefaultDeny": {"ingress": False}}
    report = check(cluster("1.15.9", [multi_spec_ccnp("allow-probes", [relies, relies])]))
    assert outcome(report, "CIC018") == (
        ERROR,
        [("CiliumClusterwideNetworkPolicy allow-probes", "enableDefaultDeny.ingress", "false")],
    )


# --------------------------------------------------------------------------- cilium.py and facts.py: the rest


def test_socket_lb_off_evidence_is_the_global_view() -> None:
    extra = [node_config("pool-a", {"bpf-lb-sock": "false"})]
    report = check(cluster(DEFAULT, extra, kube_proxy_replacement="false", **SOCKET_OFF))
    assert outcome(report, "CIC001") == (
        INFO,
        [(CONFIG, "kube-proxy-replacement", "false"), (CONFIG, "bpf-lb-sock", "false")],
    )


def test_cni_exclusive_on_a_later_node_config_is_found() -> None:
    extra = [
        node_config("pool-a", {"enable-ipv6": "false"}),
        node_config("pool-b", {"cni-exclusive": "true"}),
    ]
    assert outcome(check(cluster(DEFAULT, extra)), "CIC003") == (
        ERROR,
        [("CiliumNodeConfig kube-system/pool-b", "cni-exclusive", "true")],
    )


def test_missing_config_names_the_namespace_looked_in_and_the_first_agent() -> None:
    other = daemonset("cilium", "aaa", {"k8s-app": "cilium"}, cilium("1.16.0"))
    snapshot = build_snapshot([*without(cluster(), "ConfigMap"), other], cilium_namespace="nowhere")
    [finding] = [f for f in evaluate(snapshot).findings if f.id == "CIC007"]
    assert [(e.object, e.note) for e in finding.evidence] == [
        ("ConfigMap cilium-config in namespace nowhere", "not found"),
        ("DaemonSet aaa/cilium", "cilium agent found"),
    ]


def test_three_configs_are_several_too() -> None:
    report = check(
        [*cluster(), configmap({"a": "b"}, namespace="cilium"), configmap({"a": "b"}, namespace="old-cilium")]
    )
    assert note_of(report, "CIC016") == [
        ("ConfigMap cilium/cilium-config", "not checked"),
        ("ConfigMap kube-system/cilium-config", "checked"),
        ("ConfigMap old-cilium/cilium-config", "not checked"),
    ]


@pytest.mark.parametrize(
    ("started", "fires"),
    [("2026-01-02T00:00:00", True), ("2026-01-02T00:00:02Z", False), ("yesterday", False)],
)
def test_restart_pending_reads_naive_times_as_utc_and_ignores_unreadable_ones(
    started: str, fires: bool
) -> None:
    objects = [o for o in cluster() if o["kind"] not in ("ConfigMap", "Pod")]
    objects += [
        configmap(cilium_data(), written={"bpf-lb-sock-hostns-only": "2026-01-02T00:00:01Z"}),
        cilium_pod("cilium-a", started),
    ]
    report = check(objects)
    expected = [
        (
            "bpf-lb-sock-hostns-only",
            "true",
            "a field owned by helm changed at 2026-01-02T00:00:01Z; the oldest agent pod started 2026-01-02T00:00:00+00:00",
        )
    ]
    assert (notes(report, "CIC009") if "CIC009" in ids(report) else None) == (expected if fires else None)


def test_bpf_masquerade_on_a_node_config_after_an_unparsable_global_value() -> None:
    extra = [node_config("pool-b", BPF_MASQ_NODES)]
    report = check(cluster(DEFAULT, extra, enable_bpf_masquerade="yes"))
    assert outcome(report, "CIC010") == (
        WARNING,
        [("CiliumNodeConfig kube-system/pool-b", "enable-bpf-masquerade", "true")],
    )


@pytest.mark.parametrize(
    ("data", "severity", "summary_end", "routing"),
    [
        (BPF_ROUTING, ERROR, "ambient pod health probes fail", "BPF: probes of ambient pods fail (CIC011)"),
        ({"enable_bpf_masquerade": "true"}, WARNING, "unsupported by Istio", "legacy"),
    ],
)
def test_bpf_masquerade_says_which_host_routing_it_runs_with(
    data: dict[str, str], severity: Severity, summary_end: str, routing: str
) -> None:
    [finding] = [f for f in check(cluster("1.18.1", **data)).findings if f.id == "CIC010"]
    assert finding.severity is severity
    assert finding.summary == f"Cilium BPF masquerading is on with ambient: {summary_end}"
    assert [e.note for e in finding.evidence] == [f"on all nodes; host routing {routing}"]


@pytest.mark.parametrize(
    ("objects", "shown"),
    [
        (cluster("1.17.4", kube_proxy_replacement="bogus"), "1.17.4"),
        (unknown_version(kube_proxy_replacement="bogus"), "(version unknown)"),
    ],
)
def test_refusals_name_the_cilium_version(objects: list[Obj], shown: str) -> None:
    [finding] = [f for f in check(objects).findings if f.id == "CIC023"]
    assert (
        finding.summary == f"Cilium {shown} refuses settings in cilium-config: the next agent restart fails"
    )


@pytest.mark.parametrize(("version", "fires"), [("1.18.9", False), ("1.19.0", True), ("1.20.1", True)])
def test_ciliums_own_ztunnel_from_1_19(version: str, fires: bool) -> None:
    expected = (WARNING, [(CONFIG, "enable-ztunnel", "true")])
    assert outcome(check(cluster(version, enable_ztunnel="true")), "CIC012") == (expected if fires else None)


def test_istio_cni_bin_dir_is_checked_when_its_conf_dir_is_not_mounted() -> None:
    cni = daemonset(
        "istio-cni-node",
        ISTIO_NS,
        {"k8s-app": "istio-cni-node"},
        "docker.io/istio/install-cni:1.26.1",
        {"cni-bin-dir": "/var/snap/microk8s/opt/cni/bin"},
    )
    assert outcome(check(with_istio_cni(cluster(), cni)), "CIC004") == (
        ERROR,
        [(ISTIO_CNI, "volume cni-bin-dir hostPath", "/var/snap/microk8s/opt/cni/bin")],
    )


def test_an_unparsable_probe_snat_address_falls_back_to_istios_default() -> None:
    cni = istio_cni()
    cni["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "HOST_PROBE_SNAT_IP", "value": "bogus"}
    ]
    assert Facts(build_snapshot(with_istio_cni(cluster(), cni))).probe_sources == (PROBE_SOURCE_V4,)


def test_the_cilium_image_is_preferred_over_other_containers() -> None:
    agent = cilium_agent(image=cilium("1.17.4"))
    containers = agent["spec"]["template"]["spec"]["containers"]
    containers.insert(0, {"name": "sidecar", "image": "docker.io/library/busybox:1.36.1"})
    objects = [o for o in cluster() if o["kind"] != "DaemonSet" or o["metadata"]["name"] != "cilium"]
    assert Facts(build_snapshot([*objects, agent])).version == (1, 17, 4)


def test_istio_cni_outside_the_root_namespace_is_the_first_found() -> None:
    objects = [*without(cluster(), "DaemonSet", "istio-cni-node"), istio_cni("aaa"), istio_cni("bbb")]
    cni = Facts(build_snapshot(objects, istio_namespace=ISTIO_NS)).istio_cni
    assert cni is not None and cni.namespace == "aaa"


def test_only_the_exact_ambient_label_enrolls_a_namespace() -> None:
    objects = [*cluster(), namespace("legacy", mode="none"), namespace("typo", mode="Ambient")]
    assert Facts(build_snapshot(objects)).ambient_namespaces == ("bookinfo",)


@pytest.mark.parametrize(
    ("snapshot", "release", "cilium_ns"),
    [
        (Snapshot(), ("cilium", "kube-system"), "kube-system"),
        (Snapshot(cilium_namespace="cilium"), ("cilium", "cilium"), "cilium"),
    ],
)
def test_helm_release_and_cilium_namespace_defaults(
    snapshot: Snapshot, release: tuple[str, str], cilium_ns: str
) -> None:
    facts = Facts(snapshot)
    assert (facts.helm_release, facts.cilium_namespace) == (release, cilium_ns)


def test_helm_release_namespace_comes_from_its_annotation() -> None:
    annotations = {"meta.helm.sh/release-name": "net", "meta.helm.sh/release-namespace": "ops"}
    objects = [*without(cluster(), "ConfigMap"), configmap(cilium_data(), annotations=annotations)]
    assert Facts(build_snapshot(objects)).helm_release == ("net", "ops")


def test_cilium_context_socket_lb_is_the_global_view() -> None:
    extra = [node_config("pool-a", {"bpf-lb-sock": "false", "kube-proxy-replacement": "false"})]
    assert check(cluster(DEFAULT, extra)).cilium["socket_lb"] is True


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("istio/istio#52208", "[istio/istio#52208](https://github.com/istio/istio/issues/52208)"),
        ("https://istio.io/x", "[istio.io/x](https://istio.io/x)"),
        ("istio/istio#main", "`istio/istio#main`"),  # not an issue number
        ("cilium#1", "`cilium#1`"),  # not owner/repo
        ("cilium/cilium", "`cilium/cilium`"),  # no issue at all
        ("istio/ztunnel src/proxy/outbound.rs#1", "`istio/ztunnel src/proxy/outbound.rs#1`"),  # a file
    ],
)
def test_sources_link_issues_and_urls_only(source: str, shown: str) -> None:
    assert _source_link(source) == shown


def test_a_namespace_expression_after_another_key_still_narrows_the_selector() -> None:
    selector = {
        "matchExpressions": [
            {"key": "app", "operator": "In", "values": ["web"]},
            {"key": NS_KEY, "operator": "In", "values": ["shop"]},
        ]
    }
    report = check(
        cluster(
            DEFAULT, [*ambient("shop"), ccnp("l7", {"endpointSelector": selector, "ingress": L7_INGRESS})]
        )
    )
    assert note_of(report, "CIC006") == [
        ("CiliumClusterwideNetworkPolicy l7", "selects pods in ambient namespace(s) shop")
    ]


def test_egress_is_checked_when_ingress_allows_hbone() -> None:
    spec = {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"ports": [{"port": 15008}, {"port": 8080}]}],
        "egress": [{"ports": [{"port": 8080}]}],
    }
    report = check(cluster(DEFAULT, [network_policy("bookinfo", "both", spec)]))
    assert outcome(report, "CIC013") == (
        WARNING,
        [("NetworkPolicy bookinfo/both", "egress ports", "8080/TCP")],
    )


def test_an_istio_image_without_a_registry_gives_the_version() -> None:
    objects = [
        *without(healthy(), "DaemonSet", "ztunnel"),
        daemonset("ztunnel", ISTIO_NS, {"app": "ztunnel"}, "ztunnel:1.20.8"),
    ]
    assert outcome(check(objects), "CIC021") == (ERROR, [("ztunnel:1.20.8", None, None)])


def test_the_first_cilium_agent_gives_the_version() -> None:
    snapshot = build_snapshot(cluster())
    other = dataclasses.replace(snapshot.cilium_agents[0], namespace="aaa", images=(cilium("1.16.0"),))
    facts = Facts(dataclasses.replace(snapshot, cilium_agents=(*snapshot.cilium_agents, other)))
    assert facts.version == (1, 17, 4)


def test_only_pods_labelled_exactly_ambient_are_enrolled() -> None:
    objects = [
        *cluster(),
        namespace("shop", mode=None),
        app_pod("shop", "web-1", {"istio.io/dataplane-mode": "ambient"}),
        app_pod("shop", "web-2", {"istio.io/dataplane-mode": "none"}),
        app_pod("shop", "web-3", {"istio.io/dataplane-mode": "Ambient"}),
    ]
    assert Facts(build_snapshot(objects)).ambient_pods == {"shop": ("web-1",)}


V6 = ipaddress.ip_address("fd16:9254:7127:1337:ffff:ffff:ffff:ffff")


@pytest.mark.parametrize(
    ("data", "extra", "sources"),
    [
        ({"enable_ipv4": "false", "enable_ipv6": "true"}, [], (V6,)),
        ({"enable_ipv4": None, "enable_ipv6": "true"}, [], (PROBE_SOURCE_V4,)),  # IPv4 is on by default
        ({"enable_ipv4": "false", "enable_ipv6": None}, [], (V6,)),  # so is IPv6
        ({"enable_ipv4": "yes", "enable_ipv6": "true"}, [], (PROBE_SOURCE_V4,)),  # unparsable: not false
        ({"enable_ipv4": "false", "enable_ipv6": "yes"}, [], (V6,)),
        # The global view decides, whatever a CiliumNodeConfig turns off or on.
        ({"enable_ipv6": "true"}, [node_config("pool-a", {"enable-ipv4": "false"})], (PROBE_SOURCE_V4,)),
        ({"enable_ipv4": "false"}, [node_config("pool-a", {"enable-ipv6": "true"})], (PROBE_SOURCE_V4,)),
    ],
)
def test_probe_source_family_follows_the_global_settings(
    data: dict[str, str | None], extra: list[Obj], sources: tuple[object, ...]
) -> None:
    assert Facts(build_snapshot(cluster(DEFAULT, extra, **data))).probe_sources == sources


def test_a_pod_named_like_a_service_does_not_lend_it_its_labels() -> None:
    objects = [
        *mesh(bound_namespace("bookinfo", "wp"), waypoint("wp", "service"), bpf_lb_sock_hostns_only=None),
        service("productpage"),
        app_pod("bookinfo", "productpage", {"istio.io/use-waypoint": "none"}),
        l7_policy("viewer", {"group": "", "kind": "Service", "name": "productpage"}),
    ]
    found = outcome(check(objects), "CIC022")
    assert found is not None and ("AuthorizationPolicy bookinfo/viewer", None, None) in found[1]
