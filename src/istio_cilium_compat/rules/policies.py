"""Checks on network policies that meet ambient pods (CIC005, CIC006, CIC013).

A policy "meets" an ambient namespace when it is a NetworkPolicy or
CiliumNetworkPolicy in it, or a clusterwide policy whose selector does not rule it
out. Pod labels are not read (that would grow with the cluster), so a selector is
taken to select some pod of its namespace.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from .. import remedy as r
from ..assemble import as_list, as_map, as_str
from ..report import Evidence, Severity
from ..snapshot import Policy
from .facts import Facts, capped, object_name
from .registry import Hit, rule

HBONE_PORT = 15008
NAMESPACE_KEYS = ("k8s:io.kubernetes.pod.namespace", "io.kubernetes.pod.namespace")
CILIUM_KINDS = ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")


def policy_name(policy: Policy) -> str:
    """How evidence names a policy."""
    return object_name(policy.kind, policy.namespace, policy.name)


def _selected_namespaces(spec: Mapping[str, Any], ambient: Iterable[str]) -> list[str]:
    """Ambient namespaces a clusterwide policy's endpointSelector may select."""
    selector = as_map(spec.get("endpointSelector"))
    labels = as_map(selector.get("matchLabels"))
    chosen: set[str] | None = None
    excluded: set[str] = set()
    for key in NAMESPACE_KEYS:
        if key in labels:
            value = {as_str(labels[key])}
            chosen = value if chosen is None else chosen & value
    for expr in as_list(selector.get("matchExpressions")):
        expr = as_map(expr)
        if as_str(expr.get("key")) not in NAMESPACE_KEYS:
            continue
        operator = as_str(expr.get("operator"))
        values = {as_str(v) for v in as_list(expr.get("values"))}
        if operator == "In":
            chosen = values if chosen is None else chosen & values
        elif operator == "NotIn":
            excluded |= values
        elif operator == "DoesNotExist":  # every endpoint in a namespace carries the label
            chosen = set()
    return [ns for ns in ambient if (chosen is None or ns in chosen) and ns not in excluded]


def meets(
    policy: Policy,
    spec: Mapping[str, Any],
    ambient: tuple[str, ...],
    ambient_set: AbstractSet[str] | None = None,
) -> list[str]:
    """Ambient namespaces whose pods this policy spec may select.

    `ambient_set` holds the same names as `ambient` (`Facts.ambient_set`): with it, the
    namespaced case is a set lookup instead of a scan, which is quadratic over thousands of
    policies and namespaces. The result is the same either way.
    """
    if policy.kind == "CiliumClusterwideNetworkPolicy":
        if "nodeSelector" in spec and "endpointSelector" not in spec:
            return []  # host policy: selects nodes, not pods
        return _selected_namespaces(spec, ambient)
    namespace = policy.namespace
    members = ambient if ambient_set is None else ambient_set
    return [namespace] if namespace is not None and namespace in members else []


def isolates_ingress(policy: Policy, spec: Mapping[str, Any]) -> bool:
    """Does this spec put the selected pods into ingress default-deny?"""
    if policy.kind == "NetworkPolicy":
        types = spec.get("policyTypes")
        if isinstance(types, list):
            return "Ingress" in types
        return True  # Kubernetes: policyTypes defaults to include Ingress
    deny = as_map(spec.get("enableDefaultDeny")).get("ingress")
    if deny is False:
        return False
    return deny is True or isinstance(spec.get("ingress"), list) or isinstance(spec.get("ingressDeny"), list)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _covers(cidr: object, address: Address) -> bool:
    """A CIDR (or bare address) holding `address`; an invalid one holds nothing."""
    try:
        return address in ipaddress.ip_network(as_str(cidr), strict=False)
    except ValueError:
        return False


def _tcp_possible(ports: Iterable[Mapping[str, Any]]) -> bool:
    """Probes are TCP (HTTP, TCP and gRPC probes): a port list allowing only UDP/SCTP admits none."""
    entries = list(ports)
    return not entries or any(as_str(p.get("protocol")).upper() in ("", "TCP", "ANY") for p in entries)


CILIUM_PEERS = (
    "fromEndpoints",
    "fromCIDR",
    "fromCIDRSet",
    "fromEntities",
    "fromRequires",
    "fromGroups",
    "fromNodes",
)


def _cilium_rule_admits(entry: Mapping[str, Any], address: Address) -> bool:
    """fromCIDR, fromCIDRSet minus except, entities world/all, or no peer at all (L3 wildcard)."""
    ports = [as_map(p) for tp in as_list(entry.get("toPorts")) for p in as_list(as_map(tp).get("ports"))]
    if not _tcp_possible(ports):
        return False
    if not any(k in entry for k in CILIUM_PEERS):
        return True
    if any(_covers(c, address) for c in as_list(entry.get("fromCIDR"))):
        return True
    for item in as_list(entry.get("fromCIDRSet")):
        item = as_map(item)
        if _covers(item.get("cidr"), address) and not any(
            _covers(e, address) for e in as_list(item.get("except"))
        ):
            return True
    return bool({"world", "all"} & {as_str(e) for e in as_list(entry.get("fromEntities"))})


def _network_policy_rule_admits(entry: Mapping[str, Any], address: Address) -> bool:
    """A NetworkPolicy ingress rule: `ipBlock` holding the address (minus `except`), or no `from`."""
    if not _tcp_possible(as_map(p) for p in as_list(entry.get("ports"))):
        return False
    peers = as_list(entry.get("from"))
    if not peers:
        return True  # no `from`: every source
    for peer in peers:
        block = as_map(as_map(peer).get("ipBlock"))
        if _covers(block.get("cidr"), address) and not any(
            _covers(e, address) for e in as_list(block.get("except"))
        ):
            return True
    return False


def allows_probes(policy: Policy, spec: Mapping[str, Any], sources: Iterable[Address]) -> bool:
    """Some ingress rule of the spec admits every probe source (per IP family in use)."""
    admits = _network_policy_rule_admits if policy.kind == "NetworkPolicy" else _cilium_rule_admits
    entries = [as_map(e) for e in as_list(spec.get("ingress"))]
    return all(any(admits(e, address) for e in entries) for address in sources)


def _probe_allowed_in(facts: Facts) -> set[str]:
    """Namespaces of ambient pods where some policy (Kubernetes or Cilium) admits the probe source."""
    allowed: set[str] = set()
    for policy in facts.snapshot.policies:
        for spec in policy.specs:
            if allows_probes(policy, spec, facts.probe_sources):
                allowed.update(meets(policy, spec, facts.policy_scope, facts.policy_scope_set))
    return allowed


POLICY_READS = ("policies", "namespaces", "cilium_configs", "node_configs")
PREREQUISITES = "https://istio.io/latest/docs/ambient/install/platform-prerequisites/#cilium"
AMBIENT_NETWORKPOLICY = "https://istio.io/latest/docs/ambient/usage/networkpolicy/"


@rule(
    "CIC005",
    Severity.WARNING,
    "Ingress default-deny on ambient pods without a 169.254.7.127 allowance",
    sources=(
        "istio/istio#49277",
        PREREQUISITES,
        AMBIENT_NETWORKPOLICY,
        "istio/istio cni/pkg/iptables/iptables.go (kubelet probes SNAT-ed to 169.254.7.127)",
        "istio/istio cni/pkg/nodeagent/options.go (DefaultHostProbeSNATIP, HOST_PROBE_SNAT_IP)",
        "https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#Probe",
    ),
    reads=(*POLICY_READS, "workloads", "istio_cni"),
    remedy=r.Remedy(istio=("probe-allowance",)),
)
def probes_blocked(facts: Facts) -> Hit | None:
    """CIC005: SNAT-ed kubelet probes (169.254.7.127) hit default-deny unless a policy admits them."""
    ambient = facts.policy_scope
    if not ambient:
        return None
    allowed = _probe_allowed_in(facts)
    evidence: list[Evidence] = []
    missing = [ns for ns in ambient if ns not in allowed]
    for view in facts.views:  # globally, or on the nodes of a CiliumNodeConfig
        enable_policy = view.raw("enable-policy")
        if not view.overrides("enable-policy") or (enable_policy or "").lower() != "always" or not missing:
            continue
        evidence.append(
            Evidence(
                object=view.where("enable-policy"),
                key="enable-policy",
                value=enable_policy,
                note=f"every endpoint on {view.label} default-deny; no probe allowance in "
                + ", ".join(missing[:5])
                + (" …" if len(missing) > 5 else ""),
            )
        )
    seen: set[tuple[str, str]] = set()
    isolating: dict[r.PolicyRef, None] = {}
    for policy in facts.snapshot.policies:
        for index, spec in enumerate(policy.specs):
            if not isolates_ingress(policy, spec):
                continue
            for ns in meets(policy, spec, ambient, facts.policy_scope_set):
                key = (policy_name(policy), ns)
                if ns in allowed:
                    continue
                isolating[r.PolicyRef.of(policy, index)] = None
                if key in seen:
                    continue
                seen.add(key)
                evidence.append(
                    Evidence(
                        object=policy_name(policy), note=f"isolates ingress of pods in {facts.scope_note(ns)}"
                    )
                )
    if not evidence:
        return None
    sources = ", ".join(str(a) for a in facts.probe_sources)
    return Hit(
        summary=f"Ambient pods under ingress default-deny without a {sources} allowance: probes fail",
        detail=(
            "Istio SNATs kubelet health probes of ambient pods to 169.254.7.127; Cilium sees that address "
            "as outside the cluster, so a default-deny policy drops the probes and pods restart "
            "(istio/istio#49277, Istio's Cilium prerequisites)."
        ),
        evidence=capped(evidence, "more policies"),
        remedy=r.Remedy(istio=("probe-allowance",), isolating=tuple(isolating)),
    )


def _has_l7(spec: Mapping[str, Any]) -> bool:
    for direction in ("ingress", "egress"):
        for entry in as_list(spec.get(direction)):
            for to_port in as_list(as_map(entry).get("toPorts")):
                rules = as_map(as_map(to_port).get("rules"))
                if rules.get("http") is not None or rules.get("kafka") is not None:
                    return True
    return False


@rule(
    "CIC006",
    Severity.ERROR,
    "Cilium L7 (http/kafka) policy selects ambient pods",
    sources=("https://docs.cilium.io/en/stable/network/servicemesh/istio/",),
    reads=("policies", "namespaces"),
)
def l7_policies(facts: Facts) -> Hit | None:
    """CIC006: Cilium's L7 proxy cannot read HBONE/mTLS."""
    evidence = []
    for policy in facts.snapshot.policies:
        if policy.kind not in CILIUM_KINDS:
            continue
        for spec in policy.specs:
            namespaces = meets(policy, spec, facts.policy_scope, facts.policy_scope_set)
            if namespaces and _has_l7(spec):
                evidence.append(
                    Evidence(
                        object=policy_name(policy),
                        key="toPorts[].rules",
                        value="http/kafka",
                        note=f"selects pods in ambient namespace(s) {', '.join(namespaces[:5])}",
                    )
                )
                break
    if not evidence:
        return None
    return Hit(
        summary="Cilium L7 policy selects ambient pods: Cilium cannot read Istio mTLS, traffic breaks",
        detail="Cilium's L7 proxy cannot parse HBONE/mTLS traffic, so L7 rules on ambient pods break them.",
        evidence=capped(evidence, "more policies"),
        fix=(
            "Use Istio L7 policy (a waypoint with an AuthorizationPolicy) instead, or take these workloads out "
            "of ambient: remove the namespace label, or label the pods istio.io/dataplane-mode=none "
            + (
                "(Istio 1.21: annotate them ambient.istio.io/redirection: disabled)."
                if facts.istio_before(1, 22)
                else "(Istio ≥ 1.22)."
            )
        ),
    )


def _port_allows_hbone(port: object, end_port: object, protocol: object) -> bool | None:
    """True/False, or None for a named port we cannot resolve."""
    proto = as_str(protocol).upper() or "TCP"
    if proto not in ("TCP", "ANY"):
        return False
    if port is None or as_str(port) in ("", "0"):
        return True
    text = as_str(port)
    if not text.isdigit():
        return None
    low = int(text)
    high = int(as_str(end_port)) if as_str(end_port).isdigit() else low
    return low <= HBONE_PORT <= high


def isolates_egress(policy: Policy, spec: Mapping[str, Any]) -> bool:
    """Does this spec put the selected pods into egress default-deny?"""
    if policy.kind == "NetworkPolicy":
        types = spec.get("policyTypes")
        if isinstance(types, list):
            return "Egress" in types
        return bool(as_list(spec.get("egress")))  # Kubernetes defaults Egress in only with egress rules
    deny = as_map(spec.get("enableDefaultDeny")).get("egress")
    if deny is False:
        return False
    return deny is True or isinstance(spec.get("egress"), list) or isinstance(spec.get("egressDeny"), list)


DIRECTIONS = (("ingress", isolates_ingress), ("egress", isolates_egress))


def _port_lists(
    policy: Policy, spec: Mapping[str, Any], direction: str
) -> list[list[tuple[object, object, object]]] | None:
    """Per rule of a direction, the ports it allows; None when some rule allows every port."""
    rules = as_list(spec.get(direction))
    result: list[list[tuple[object, object, object]]] = []
    for raw in rules:
        entry = as_map(raw)
        if policy.kind == "NetworkPolicy":
            ports = as_list(entry.get("ports"))
            if not ports:
                return None
            result.append(
                [(as_map(p).get("port"), as_map(p).get("endPort"), as_map(p).get("protocol")) for p in ports]
            )
        else:
            to_ports = as_list(entry.get("toPorts"))
            if not to_ports:
                return None
            entries = [as_map(p) for tp in to_ports for p in as_list(as_map(tp).get("ports"))]
            if not entries:
                return None
            result.append([(p.get("port"), p.get("endPort"), p.get("protocol")) for p in entries])
    return result


@rule(
    "CIC013",
    Severity.WARNING,
    "Port-limited ingress or egress of ambient pods without 15008/TCP (HBONE)",
    sources=(
        AMBIENT_NETWORKPOLICY,
        "istio/ztunnel src/proxy/inbound.rs (HBONE listener on 15008)",
        "istio/ztunnel src/proxy/outbound.rs (HBONE to the destination pod's 15008, from the pod's netns)",
    ),
    reads=("policies", "namespaces", "workloads"),
)
def hbone_port_blocked(facts: Facts) -> Hit | None:
    """CIC013: ambient traffic arrives on and leaves for 15008/TCP (HBONE), from inside each pod's netns."""
    evidence = []
    for policy in facts.snapshot.policies:
        for spec in policy.specs:
            namespaces = meets(policy, spec, facts.policy_scope, facts.policy_scope_set)
            if not namespaces:
                continue
            for direction, isolates in DIRECTIONS:
                port_lists = _port_lists(policy, spec, direction)
                if not isolates(policy, spec) or not port_lists:
                    continue
                verdicts = [_port_allows_hbone(*p) for ports in port_lists for p in ports]
                if any(v is not False for v in verdicts):
                    continue
                listed = sorted(
                    {f"{as_str(p[0])}/{as_str(p[2]).upper() or 'TCP'}" for ports in port_lists for p in ports}
                )
                evidence.append(
                    Evidence(
                        object=policy_name(policy),
                        key=f"{direction} ports",
                        value=", ".join(listed),
                        note=f"no 15008/TCP; {'; '.join(facts.scope_note(ns) for ns in namespaces[:3])}",
                    )
                )
    if not evidence:
        return None
    return Hit(
        summary="Policy limits ambient pods to app ports without 15008/TCP (HBONE): mesh traffic dropped",
        detail=(
            "In ambient, traffic between meshed pods leaves and arrives as HBONE on port 15008/TCP, sent from "
            "inside each pod's network namespace: port-limited ingress and egress rules must allow it."
        ),
        evidence=capped(evidence, "more policies"),
        fix="Allow port 15008/TCP wherever ports are listed for ambient pods, in both directions.",
    )


def _only_probe_rules(spec: Mapping[str, Any], sources: Iterable[Address]) -> bool:
    """Every ingress rule is a CIDR allowance of the probe source: a probe policy."""
    rules = [as_map(r) for r in as_list(spec.get("ingress"))]
    return bool(rules) and all(
        not set(entry) - {"fromCIDR", "fromCIDRSet", "toPorts"}
        and ("fromCIDR" in entry or "fromCIDRSet" in entry)
        and all(_cilium_rule_admits(entry, a) for a in sources)
        for entry in rules
    )


NON_DEFAULT_DENY = "enable-non-default-deny-policies"


def _non_default_deny_off(facts: Facts) -> list[Evidence]:
    """Views where the agent ignores `enableDefaultDeny: false` (Cilium ≥ 1.17, the flag false)."""
    if facts.version is not None and facts.version[:2] < (1, 17):
        return []  # the flag does not exist before 1.17
    return [
        view.bool(NON_DEFAULT_DENY, default=True).evidence(
            f"on {view.label}: enableDefaultDeny: false is ignored"
        )
        for view in facts.views
        if view.overrides(NON_DEFAULT_DENY) and view.bool(NON_DEFAULT_DENY, default=True).value is False
    ]


@rule(
    "CIC018",
    Severity.ERROR,
    "Cilium policy that relies on enableDefaultDeny=false isolates every pod it selects",
    sources=(
        "cilium/cilium pkg/policy/api/rule_validation.go (Rule.Sanitize: enable-non-default-deny-policies)",
        "cilium/cilium pkg/policy/repository.go (computePolicyEnforcementAndRules)",
        "cilium/cilium pkg/policy/api/rule.go (EnableDefaultDeny, from Cilium 1.16)",
        "https://docs.cilium.io/en/stable/security/policy/intro/#endpoint-default-policy",
    ),
    reads=(
        "policies",
        "cilium_configs",
        "node_configs",
        "cilium_agents",
        "namespaces",
        "workloads",
        "istio_cni",
    ),
)
def probe_policy_isolates(facts: Facts) -> Hit | None:
    """CIC018: an allow policy meant to add access instead puts its endpoints into default-deny.

    A Cilium rule with ingress rules isolates ingress unless `enableDefaultDeny.ingress: false`, which
    Cilium honours from 1.16, and from 1.17 only while `enable-non-default-deny-policies` is true.
    """
    if facts.views and (facts.views[0].raw("enable-policy") or "").lower() == "always":
        return None  # every endpoint is default-deny anyway: the policy isolates nothing more
    old = facts.version is not None and facts.version[:2] < (1, 16)
    ignored = _non_default_deny_off(facts)
    evidence: list[Evidence] = []
    for policy in facts.snapshot.policies:
        if policy.kind not in CILIUM_KINDS:
            continue
        for spec in policy.specs:
            probe_only = _only_probe_rules(spec, facts.probe_sources)
            everyone = policy.kind == "CiliumClusterwideNetworkPolicy" and not as_map(
                spec.get("endpointSelector")
            )
            scope = "every pod in the cluster" if everyone else "every pod it selects"
            relies = [
                d
                for d in ("ingress", "egress")
                if as_map(spec.get("enableDefaultDeny")).get(d) is False and as_list(spec.get(d))
            ]
            if (
                relies
                and (old or ignored)
                and (probe_only or meets(policy, spec, facts.policy_scope, facts.policy_scope_set))
            ):
                why = (
                    "enableDefaultDeny is honoured from Cilium 1.16 only"
                    if old
                    else "the agent ignores it: enable-non-default-deny-policies is false"
                )
                evidence.append(
                    Evidence(
                        object=policy_name(policy),
                        key="enableDefaultDeny." + "/".join(relies),
                        value="false",
                        note=f"{why}: {scope} becomes default-deny ({', '.join(relies)})",
                    )
                )
                break
            if probe_only and as_map(spec.get("enableDefaultDeny")).get("ingress") is not False:
                evidence.append(
                    Evidence(
                        object=policy_name(policy),
                        key="enableDefaultDeny.ingress",
                        value=as_str(as_map(spec.get("enableDefaultDeny")).get("ingress")) or None,
                        note=f"no enableDefaultDeny: {{ingress: false}}: {scope} becomes ingress default-deny",
                    )
                )
                break
    if not evidence:
        return None
    if any(e.note.startswith("the agent ignores") for e in evidence):
        evidence.extend(ignored)
    return Hit(
        summary="A Cilium allow policy puts the pods it selects into default-deny: connections fail",
        detail=(
            "A Cilium policy with rules in a direction makes its endpoints default-deny in that direction "
            "unless enableDefaultDeny for it is false, which Cilium honours from 1.16 and, from 1.17, only "
            "while enable-non-default-deny-policies is true. A probe allowance for all pods then blocks "
            "every other connection to them."
        ),
        evidence=capped(evidence, "more policies"),
        fix=(
            "Where enableDefaultDeny is honoured, add enableDefaultDeny: {ingress: false, egress: false}; "
            "otherwise delete the policy and add the probe CIDR to the policies that already isolate the pods."
        ),
    )
