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

PROBE_SOURCE = ipaddress.ip_address("169.254.7.127")
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
    for key in NAMESPACE_KEYS:
        if key in labels:
            chosen = {as_str(labels[key])}
    for expr in as_list(selector.get("matchExpressions")):
        expr = as_map(expr)
        if as_str(expr.get("key")) in NAMESPACE_KEYS and as_str(expr.get("operator")) == "In":
            values = {as_str(v) for v in as_list(expr.get("values"))}
            chosen = values if chosen is None else chosen & values
    return [ns for ns in ambient if chosen is None or ns in chosen]


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


def _covers_probe(cidr: object) -> bool:
    try:
        return PROBE_SOURCE in ipaddress.ip_network(as_str(cidr), strict=False)
    except ValueError:
        return False


def _rule_admits_probe(rule: Mapping[str, Any]) -> bool:
    """One ingress rule admitting 169.254.7.127: fromCIDR, fromCIDRSet minus except, world/all."""
    if any(_covers_probe(c) for c in as_list(rule.get("fromCIDR"))):
        return True
    for item in as_list(rule.get("fromCIDRSet")):
        item = as_map(item)
        if _covers_probe(item.get("cidr")) and not any(_covers_probe(e) for e in as_list(item.get("except"))):
            return True
    return bool({"world", "all"} & {as_str(e) for e in as_list(rule.get("fromEntities"))})


def allows_probes(spec: Mapping[str, Any]) -> bool:
    """Some ingress rule of the spec admits the probe source."""
    return any(_rule_admits_probe(as_map(rule)) for rule in as_list(spec.get("ingress")))


def _probe_allowed_in(facts: Facts) -> set[str]:
    """Ambient namespaces where some Cilium policy admits the probe source."""
    allowed: set[str] = set()
    for policy in facts.snapshot.policies:
        if policy.kind not in CILIUM_KINDS:
            continue
        for spec in policy.specs:
            if allows_probes(spec):
                allowed.update(meets(policy, spec, facts.ambient_namespaces, facts.ambient_set))
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
    ),
    reads=POLICY_READS,
    remedy=r.Remedy(istio=("probe-allowance",)),
)
def probes_blocked(facts: Facts) -> Hit | None:
    """CIC005: SNAT-ed kubelet probes (169.254.7.127) hit default-deny."""
    ambient = facts.ambient_namespaces
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
    for policy in facts.snapshot.policies:
        for spec in policy.specs:
            if not isolates_ingress(policy, spec):
                continue
            for ns in meets(policy, spec, ambient, facts.ambient_set):
                key = (policy_name(policy), ns)
                if ns in allowed or key in seen:
                    continue
                seen.add(key)
                evidence.append(
                    Evidence(
                        object=policy_name(policy), note=f"isolates ingress of pods in ambient namespace {ns}"
                    )
                )
    if not evidence:
        return None
    return Hit(
        summary="Ambient pods under ingress default-deny without a 169.254.7.127 allowance: probes fail",
        detail=(
            "Istio SNATs kubelet health probes of ambient pods to 169.254.7.127; Cilium sees that address "
            "as outside the cluster, so a default-deny policy drops the probes and pods restart "
            "(istio/istio#49277, Istio's Cilium prerequisites)."
        ),
        evidence=capped(evidence, "more policies"),
        fix=(
            "Allow ingress from 169.254.7.127/32 in the policies that isolate ambient pods, or apply "
            "the clusterwide probe allowance the renderer prints."
        ),
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
    sources=(PREREQUISITES, "https://docs.cilium.io/en/stable/network/servicemesh/istio/"),
    reads=("policies", "namespaces"),
)
def l7_policies(facts: Facts) -> Hit | None:
    """CIC006: Cilium's L7 proxy cannot read HBONE/mTLS."""
    evidence = []
    for policy in facts.snapshot.policies:
        if policy.kind not in CILIUM_KINDS:
            continue
        for spec in policy.specs:
            namespaces = meets(policy, spec, facts.ambient_namespaces, facts.ambient_set)
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
            "Use Istio L7 policy (a waypoint with an AuthorizationPolicy) instead, or take these workloads "
            "out of ambient (remove the namespace label, or annotate pods ambient.istio.io/redirection: disabled)."
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


def _ingress_port_lists(
    policy: Policy, spec: Mapping[str, Any]
) -> list[list[tuple[object, object, object]]] | None:
    """Per ingress rule, the ports it allows; None when some rule allows every port."""
    rules = as_list(spec.get("ingress"))
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
    "Port-limited ingress to ambient pods without 15008/TCP (HBONE)",
    sources=(AMBIENT_NETWORKPOLICY, "istio/ztunnel src/proxy/inbound.rs (HBONE listener on 15008)"),
    reads=("policies", "namespaces"),
)
def hbone_port_blocked(facts: Facts) -> Hit | None:
    """CIC013: ambient traffic arrives on 15008/TCP (HBONE); port-limited allows must include it."""
    evidence = []
    for policy in facts.snapshot.policies:
        for spec in policy.specs:
            if not isolates_ingress(policy, spec):
                continue
            namespaces = meets(policy, spec, facts.ambient_namespaces, facts.ambient_set)
            port_lists = _ingress_port_lists(policy, spec)
            if not namespaces or not port_lists:
                continue
            verdicts = [_port_allows_hbone(*p) for ports in port_lists for p in ports]
            if any(v is not False for v in verdicts):
                continue
            listed = sorted({as_str(p[0]) for ports in port_lists for p in ports})
            evidence.append(
                Evidence(
                    object=policy_name(policy),
                    key="ingress ports",
                    value=", ".join(listed),
                    note=f"no 15008/TCP; ambient namespace(s) {', '.join(namespaces[:5])}",
                )
            )
    if not evidence:
        return None
    return Hit(
        summary="Policy allows ambient pods only on app ports, not 15008/TCP (HBONE): mesh traffic dropped",
        detail="In ambient, traffic between meshed pods arrives as HBONE on port 15008/TCP, not on the app port.",
        evidence=capped(evidence, "more policies"),
        fix="Add port 15008/TCP wherever application ports are allowed into ambient pods.",
    )


def _only_probe_rules(spec: Mapping[str, Any]) -> bool:
    """Every ingress rule is a CIDR allowance of the probe source: a probe policy."""
    rules = [as_map(r) for r in as_list(spec.get("ingress"))]
    return bool(rules) and all(
        not set(rule) - {"fromCIDR", "fromCIDRSet", "toPorts"} and _rule_admits_probe(rule) for rule in rules
    )


@rule(
    "CIC018",
    Severity.ERROR,
    "Probe-allowance policy without enableDefaultDeny.ingress=false isolates pods",
    sources=(
        "https://docs.cilium.io/en/stable/security/policy/language/#default-deny",
        "cilium/cilium pkg/policy/api/rule.go (EnableDefaultDeny)",
    ),
    reads=("policies", "cilium_configs", "cilium_agents"),
)
def probe_policy_isolates(facts: Facts) -> Hit | None:
    """CIC018: the probe allowance itself puts every pod it selects into ingress default-deny."""
    if facts.views and (facts.views[0].raw("enable-policy") or "").lower() == "always":
        return None  # every endpoint is default-deny anyway: the policy isolates nothing more
    old = facts.version is not None and facts.version[:2] < (1, 16)
    evidence = []
    for policy in facts.snapshot.policies:
        if policy.kind not in CILIUM_KINDS:
            continue
        for spec in policy.specs:
            if not _only_probe_rules(spec):
                continue
            deny = as_map(spec.get("enableDefaultDeny")).get("ingress")
            if deny is False and not old:
                continue
            why = (
                "enableDefaultDeny is honoured from Cilium 1.16 only"
                if old and deny is False
                else "no enableDefaultDeny: {ingress: false}"
            )
            evidence.append(
                Evidence(
                    object=policy_name(policy),
                    key="enableDefaultDeny.ingress",
                    value=as_str(deny) or None,
                    note=why,
                )
            )
            break
    if not evidence:
        return None
    return Hit(
        summary="The 169.254.7.127 probe policy puts every pod it selects into ingress default-deny",
        detail=(
            "A Cilium policy with ingress rules makes its endpoints default-deny for ingress unless "
            "enableDefaultDeny.ingress is false (Cilium ≥ 1.16): a probe allowance for all pods then blocks "
            "every other connection to them."
        ),
        evidence=capped(evidence, "more policies"),
        fix=(
            "Add enableDefaultDeny: {ingress: false, egress: false} to the policy (Cilium ≥ 1.16); on older "
            "Cilium, delete it and add fromCIDR 169.254.7.127/32 to the policies that already isolate the pods."
        ),
    )
