"""Probe allowances, HBONE both ways, non-default-deny, enrollment by pod label: exact findings."""

from __future__ import annotations

from typing import Any

import pytest

from istio_cilium_compat.assemble import build_snapshot
from istio_cilium_compat.report import Severity
from istio_cilium_compat.rules import evaluate
from tests.clusters import (
    Obj,
    app_pod,
    ccnp,
    cilium_agent,
    cnp,
    healthy,
    istio_cni,
    namespace,
    network_policy,
    node_config,
    without,
    ztunnel,
)

E, W = Severity.ERROR, Severity.WARNING
DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress"]}
V4 = "169.254.7.127"
V6 = "fd16:9254:7127:1337:ffff:ffff:ffff:ffff"


def findings(objects: list[Obj]) -> list[tuple[str, Severity, list[str]]]:
    """(id, severity, evidence objects) of every finding, most severe first."""
    return [
        (f.id, f.severity, [e.object for e in f.evidence]) for f in evaluate(build_snapshot(objects)).ordered
    ]


def ip_block(cidr: str, *, except_: list[str] | None = None, ports: list[Obj] | None = None) -> Obj:
    block: Obj = {"cidr": cidr}
    if except_:
        block["except"] = except_
    rule: Obj = {"from": [{"ipBlock": block}]}
    rules = [rule]
    if ports is not None:
        rule["ports"] = ports
        rules.append({"from": [{"podSelector": {}}], "ports": [{"port": 15008}]})  # HBONE: CIC013 stays quiet
    return {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": rules}


def cni_with(env: dict[str, str], image: str | None = None) -> Obj:
    ds = istio_cni()
    container = ds["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if image:
        container["image"] = image
    return ds


def with_cni(objects: list[Obj], cni: Obj) -> list[Obj]:
    return [*without(objects, "DaemonSet", "istio-cni-node"), cni]


DENY = network_policy("bookinfo", "deny-all", DENY_ALL)
NP_DENY = "NetworkPolicy bookinfo/deny-all"


# --- CIC005: what counts as a probe allowance ----------------------------------------------------
ALLOWANCE_CASES: list[tuple[str, Obj, bool]] = [
    ("NetworkPolicy ipBlock /32 (Istio's documented fix)", ip_block(f"{V4}/32"), True),
    ("NetworkPolicy ipBlock covering range", ip_block("169.254.0.0/16"), True),
    (
        "NetworkPolicy ipBlock with the probe in except",
        ip_block("169.254.0.0/16", except_=[f"{V4}/32"]),
        False,
    ),
    ("NetworkPolicy ipBlock wrong CIDR", ip_block("169.254.7.128/32"), False),
    ("NetworkPolicy ipBlock invalid CIDR", ip_block("169.254.7.127/33"), False),
    (
        "NetworkPolicy ipBlock only UDP",
        ip_block(f"{V4}/32", ports=[{"port": 8080, "protocol": "UDP"}]),
        False,
    ),
    ("NetworkPolicy ipBlock TCP port", ip_block(f"{V4}/32", ports=[{"port": 8080}]), True),
    (
        "NetworkPolicy rule without from: every source",
        {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": 8080}, {"port": 15008}]}],
        },
        True,
    ),
]


@pytest.mark.parametrize(("name", "spec", "allows"), ALLOWANCE_CASES, ids=[c[0] for c in ALLOWANCE_CASES])
def test_network_policy_allowances(name: str, spec: Obj, allows: bool) -> None:
    objects = [*healthy(), DENY, network_policy("bookinfo", "allow-probes", spec)]
    if allows:
        assert findings(objects) == []
    else:  # a policy that admits nothing of the probes isolates the pods itself
        assert findings(objects) == [("CIC005", W, ["NetworkPolicy bookinfo/allow-probes", NP_DENY])]


CILIUM_ALLOWANCES: list[tuple[str, Obj, bool]] = [
    ("fromCIDR", {"fromCIDR": [f"{V4}/32"]}, True),
    (
        "fromCIDRSet minus except",
        {"fromCIDRSet": [{"cidr": "169.254.0.0/16", "except": [f"{V4}/32"]}]},
        False,
    ),
    ("fromCIDRSet", {"fromCIDRSet": [{"cidr": "169.254.0.0/16"}]}, True),
    ("fromEntities world", {"fromEntities": ["world"]}, True),
    ("fromEntities cluster", {"fromEntities": ["cluster"]}, False),
    ("L3 wildcard (toPorts only)", {"toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}, True),
    ("L3 wildcard UDP only", {"toPorts": [{"ports": [{"port": "8080", "protocol": "UDP"}]}]}, False),
    ("fromEndpoints", {"fromEndpoints": [{}]}, False),
]


@pytest.mark.parametrize(("name", "rule", "allows"), CILIUM_ALLOWANCES, ids=[c[0] for c in CILIUM_ALLOWANCES])
def test_cilium_allowances(name: str, rule: Obj, allows: bool) -> None:
    spec = {"endpointSelector": {}, "ingress": [rule], "enableDefaultDeny": {"ingress": False}}
    got = findings([*healthy(), DENY, cnp("bookinfo", "allow-probes", spec)])
    assert got == ([] if allows else [("CIC005", W, [NP_DENY])])


def test_ipv6_only_cluster_needs_the_ipv6_probe_source() -> None:
    data = {"enable_ipv4": "false", "enable_ipv6": "true", "enable_ipv6_masquerade": "false"}
    v4_only = network_policy("bookinfo", "allow-probes", ip_block(f"{V4}/32"))
    v6 = network_policy("bookinfo", "allow-probes-v6", ip_block(f"{V6}/128"))
    ((rule_id, _, objects),) = findings([*healthy(**data), DENY, v4_only])
    assert (rule_id, objects) == ("CIC005", ["NetworkPolicy bookinfo/allow-probes", NP_DENY])
    summary = evaluate(build_snapshot([*healthy(**data), DENY, v4_only])).ordered[0].summary
    assert V6 in summary and V4 not in summary
    assert findings([*healthy(**data), DENY, v6]) == []


def test_dual_stack_probes_the_primary_ipv4_address() -> None:
    data = {"enable_ipv6": "true", "enable_ipv6_masquerade": "false"}
    assert findings([*healthy(**data), DENY, network_policy("bookinfo", "p", ip_block(f"{V4}/32"))]) == []


def test_host_probe_snat_ip_override_is_honoured() -> None:
    moved = with_cni(healthy(), cni_with({"HOST_PROBE_SNAT_IP": "10.255.0.1"}))
    old = network_policy("bookinfo", "allow-probes", ip_block(f"{V4}/32"))
    new = network_policy("bookinfo", "allow-probes", ip_block("10.255.0.1/32"))
    assert findings([*moved, DENY, old]) == [("CIC005", W, ["NetworkPolicy bookinfo/allow-probes", NP_DENY])]
    assert "10.255.0.1" in evaluate(build_snapshot([*moved, DENY, old])).ordered[0].summary
    assert findings([*moved, DENY, new]) == []


def test_host_probe_snat_ipv6_needs_istio_1_23() -> None:
    data = {"enable_ipv4": "false", "enable_ipv6": "true", "enable_ipv6_masquerade": "false"}
    custom = "fd00::7127"
    allow = network_policy("bookinfo", "p", ip_block(f"{custom}/128"))
    new = with_cni(
        healthy(**data), cni_with({"HOST_PROBE_SNAT_IPV6": custom}, "docker.io/istio/install-cni:1.23.0")
    )
    old = with_cni(
        healthy(**data), cni_with({"HOST_PROBE_SNAT_IPV6": custom}, "docker.io/istio/install-cni:1.22.3")
    )
    old = [*without(old, "DaemonSet", "ztunnel"), _ztunnel("1.22.3")]
    new = [*without(new, "DaemonSet", "ztunnel"), _ztunnel("1.23.0")]
    assert findings([*new, DENY, allow]) == []
    assert findings([*old, DENY, allow]) == [("CIC005", W, [NP_DENY, "NetworkPolicy bookinfo/p"])]


def _ztunnel(version: str) -> Obj:
    ds = ztunnel()
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = f"docker.io/istio/ztunnel:{version}"
    return ds


# --- CIC013: HBONE both ways ---------------------------------------------------------------------
def egress_policy(ports: list[Obj]) -> Obj:
    return network_policy(
        "bookinfo",
        "egress",
        {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": ports}]},
    )


@pytest.mark.parametrize(
    ("ports", "flagged"),
    [
        ([{"port": 53, "protocol": "UDP"}], True),
        ([{"port": 53, "protocol": "UDP"}, {"port": 15008, "protocol": "UDP"}], True),  # UDP never counts
        ([{"port": 53, "protocol": "UDP"}, {"port": 15008}], False),
        ([{"port": 15000, "endPort": 15010}], False),
        ([{"port": "dns"}], False),  # a named port cannot be resolved: not flagged
    ],
)
def test_egress_must_allow_hbone(ports: list[Obj], flagged: bool) -> None:
    got = findings([*healthy(), egress_policy(ports)])
    assert got == ([("CIC013", W, ["NetworkPolicy bookinfo/egress"])] if flagged else [])


def test_hbone_evidence_names_direction_and_ports() -> None:
    (finding,) = evaluate(
        build_snapshot([*healthy(), egress_policy([{"port": 53, "protocol": "UDP"}])])
    ).ordered
    (evidence,) = finding.evidence
    assert (evidence.key, evidence.value) == ("egress ports", "53/UDP")
    assert evidence.note == "no 15008/TCP; ambient namespace bookinfo"


def test_cilium_egress_to_ports_without_hbone() -> None:
    policy = cnp(
        "bookinfo",
        "dns-only",
        {"endpointSelector": {}, "egress": [{"toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}]}]}]},
    )
    assert findings([*healthy(), policy]) == [("CIC013", W, ["CiliumNetworkPolicy bookinfo/dns-only"])]


def test_egress_not_isolated_without_egress_rules() -> None:
    """Kubernetes defaults policyTypes to Egress only when the policy has egress rules."""
    policy = network_policy("bookinfo", "np", {"podSelector": {}, "ingress": [{"ports": [{"port": 15008}]}]})
    assert findings([*healthy(), policy]) == []


# --- CIC018: enableDefaultDeny and enable-non-default-deny-policies --------------------------------
PROBE_CCNP = ccnp(
    "allow-ambient-hostprobes",
    {
        "endpointSelector": {},
        "ingress": [{"fromCIDR": [f"{V4}/32"]}],
        "enableDefaultDeny": {"ingress": False, "egress": False},
    },
)
CCNP = "CiliumClusterwideNetworkPolicy allow-ambient-hostprobes"


def at(version: str, objects: list[Obj]) -> list[Obj]:
    return [*without(objects, "DaemonSet", "cilium"), cilium_agent(image=f"quay.io/cilium/cilium:v{version}")]


def test_probe_policy_is_fine_where_enable_default_deny_is_honoured() -> None:
    assert findings([*healthy(enable_non_default_deny_policies="true"), PROBE_CCNP]) == []
    assert findings([*healthy(), PROBE_CCNP]) == []  # absent: agent default true


def test_non_default_deny_off_isolates_the_whole_cluster() -> None:
    objects = [*healthy(enable_non_default_deny_policies="false"), PROBE_CCNP]
    ((rule_id, severity, objs),) = findings(objects)
    assert (rule_id, severity) == ("CIC018", E)
    assert objs == [CCNP, "ConfigMap kube-system/cilium-config"]
    (finding,) = evaluate(build_snapshot(objects)).ordered
    assert "every pod in the cluster becomes default-deny (ingress)" in finding.evidence[0].note


def test_non_default_deny_off_on_some_nodes() -> None:
    objects = [*healthy(), node_config("pool", {"enable-non-default-deny-policies": "false"}), PROBE_CCNP]
    assert findings(objects) == [("CIC018", E, [CCNP, "CiliumNodeConfig kube-system/pool"])]


def test_non_default_deny_flag_does_not_exist_before_1_17() -> None:
    objects = at("1.16.5", [*healthy(enable_non_default_deny_policies="false"), PROBE_CCNP])
    assert findings(objects) == []


def test_enable_default_deny_ignored_before_1_16() -> None:
    assert findings(at("1.15.9", [*healthy(), PROBE_CCNP])) == [("CIC018", E, [CCNP])]


def test_probe_policy_without_enable_default_deny() -> None:
    bare = ccnp("allow-ambient-hostprobes", {"endpointSelector": {}, "ingress": [{"fromCIDR": [f"{V4}/32"]}]})
    assert findings([*healthy(), bare]) == [("CIC018", E, [CCNP])]


# --- enrollment by pod label ---------------------------------------------------------------------
def unlabelled_shop(extra: list[Obj], istio: str | None = None) -> list[Obj]:
    objects = [
        *healthy(),
        namespace("shop", mode=None),
        app_pod("shop", "cart-0", {"istio.io/dataplane-mode": "ambient"}),
    ]
    if istio:
        objects = [*without(objects, "DaemonSet", "ztunnel"), _ztunnel(istio)]
    return [*objects, *extra]


def test_pod_enrolled_by_its_own_label_is_protected_by_policy_rules() -> None:
    deny = network_policy("shop", "deny-all", DENY_ALL)
    (finding,) = evaluate(build_snapshot(unlabelled_shop([deny]))).ordered
    assert finding.id == "CIC005"
    assert [(e.object, e.note) for e in finding.evidence] == [
        (
            "NetworkPolicy shop/deny-all",
            "isolates ingress of pods in namespace shop (pods labelled ambient: cart-0)",
        )
    ]


def test_pod_label_enrollment_needs_istio_1_22() -> None:
    deny = network_policy("shop", "deny-all", DENY_ALL)
    assert findings(unlabelled_shop([deny], istio="1.21.6")) == []
    assert findings(unlabelled_shop([deny], istio="1.22.0"))[0][0] == "CIC005"


def test_pod_label_none_does_not_enroll() -> None:
    objects: list[Any] = [
        *healthy(),
        namespace("shop", mode=None),
        app_pod("shop", "cart-0", {"istio.io/dataplane-mode": "none"}),
        network_policy("shop", "deny-all", DENY_ALL),
    ]
    assert findings(objects) == []


# --- CIC020 and CIC009 wording ---------------------------------------------------------------------
def host_network(image: str) -> Obj:
    ds = istio_cni()
    spec = ds["spec"]["template"]["spec"]
    spec["hostNetwork"] = True
    spec["containers"][0]["image"] = image
    return ds


@pytest.mark.parametrize(
    ("version", "fix_start"),
    [
        ("1.23.4", "Upgrade Istio to 1.24.1 or newer"),
        ("1.24.0", "Upgrade Istio to 1.24.1 or newer"),  # istio/istio#53861 shipped in 1.24.1
        ("1.24.1", "Set dnsPolicy: ClusterFirstWithHostNet"),
    ],
)
def test_cni_dns_policy_fix_depends_on_the_istio_chart(version: str, fix_start: str) -> None:
    objects = [
        *without(without(healthy(), "DaemonSet", "istio-cni-node"), "DaemonSet", "ztunnel"),
        host_network(f"docker.io/istio/install-cni:{version}"),
        _ztunnel(version),
    ]
    (finding,) = evaluate(build_snapshot(objects)).ordered
    assert finding.id == "CIC020" and finding.fix.startswith(fix_start)


def test_restart_pending_names_the_field_owner_not_a_key_time() -> None:
    from tests.clusters import T0, T1, cilium_pod, configmap

    config = configmap(
        {**healthy()[0]["data"], "bpf-lb-sock-hostns-only": "true"},
        written={"bpf-lb-sock-hostns-only": T1},
    )
    objects = [config, *without(without(healthy(), "ConfigMap"), "Pod"), cilium_pod("cilium-a", T0)]
    (finding,) = evaluate(build_snapshot(objects)).ordered
    assert finding.id == "CIC009"
    assert finding.evidence[0].note == (
        f"a field owned by helm changed at {T1}; the oldest agent pod started 2026-01-01T00:00:00+00:00"
    )
