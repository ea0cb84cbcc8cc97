"""What a cluster must change, derived once from the findings' remedies: the plan the renderer formats.

Pure data, no command: which cilium-config settings to write (and which to refuse, where the
agent would not start with them), which CiliumNodeConfig overrides to correct, whether the
agents restart, and the Istio side — above all how kubelet probes get through default-deny
without putting a pod into default-deny that was not (the clusterwide allowance only where the
agent honours enableDefaultDeny). `render.py` turns a plan into commands for a target.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .remedy import CiliumSetting, PolicyRef, Remedy
from .report import Finding, Report, Severity
from .rules.facts import Facts, parse_bool

TARGETS = ("helm", "cilium-cli", "configmap-patch", "canonical-k8s", "canonical-k8s-charm")
SCOPES = ("changes", "full")
CANONICAL_TARGETS = ("canonical-k8s", "canonical-k8s-charm")
PROBE_IPV4 = "169.254.7.127"
PROBE_IPV6 = "fd16:9254:7127:1337:ffff:ffff:ffff:ffff"
"""Istio's probe SNAT addresses, overridable by HOST_PROBE_SNAT_IP / HOST_PROBE_SNAT_IPV6 on
istio-cni-node (istio/istio cni/pkg/nodeagent/options.go)."""
ENABLE_DEFAULT_DENY_SINCE = (1, 16)
NON_DEFAULT_DENY_KEY = "enable-non-default-deny-policies"
NON_DEFAULT_DENY_SINCE = (1, 17)


@dataclass(frozen=True)
class Write:
    """A cilium-config setting the rendering writes, and the findings that ask for it."""

    setting: CiliumSetting
    findings: tuple[str, ...]


@dataclass(frozen=True)
class Blocked:
    """A setting the rendering refuses to write: the agent would not start with it."""

    setting: CiliumSetting
    findings: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class NodePatch:
    """A CiliumNodeConfig whose `defaults` undo needed settings, and the values to put back."""

    namespace: str
    name: str
    defaults: Mapping[str, str]
    findings: tuple[str, ...]

    @property
    def patch(self) -> dict[str, Any]:
        """The JSON merge patch that puts the values back."""
        return {"spec": {"defaults": dict(self.defaults)}}


@dataclass(frozen=True)
class PolicyPatch:
    """A JSON patch adding the probe allowance to one isolating policy spec."""

    ref: PolicyRef
    ops: list[dict[str, Any]]


@dataclass(frozen=True)
class Probe:
    """How the kubelet probes of ambient pods are let in."""

    mode: Literal["clusterwide", "per-policy", "none"]
    cidrs: tuple[str, ...]
    why: str
    """Why this mode: the Cilium facts that make the clusterwide policy safe, or not."""
    default_deny_field: bool = False
    """enableDefaultDeny exists (Cilium >= 1.16) and goes into the clusterwide policy."""
    patches: tuple[PolicyPatch, ...] = ()


@dataclass
class Plan:
    """What to change, derived once from remedies; the templates only format it."""

    writes: list[Write] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    node_patches: list[NodePatch] = field(default_factory=list)
    restart: bool = False
    platform: bool = False
    probe: Probe | None = None
    strict_mtls: bool = False
    steps: list[str] = field(default_factory=list)

    def runs_nothing(self, target: str) -> bool:
        """No command to run for `target` (`nothing_to_change`); advice in comments may remain."""
        probe = self.probe is not None and self.probe.mode != "none"
        platform = self.platform and target in CANONICAL_TARGETS
        return not (self.writes or self.node_patches or self.restart or platform or probe or self.strict_mtls)


def _ids(requests: Iterable[tuple[str, Remedy]], pick: Any) -> dict[Any, list[str]]:
    """Items of the remedies (by `pick`), each with the findings that ask for it, in order."""
    found: dict[Any, list[str]] = {}
    for finding, remedy in requests:
        for item in pick(remedy):
            ids = found.setdefault(item, [])
            if finding and finding not in ids:
                ids.append(finding)
    return found


def _views(facts: Facts) -> list[Mapping[str, str]]:
    """cilium-config, and cilium-config with each CiliumNodeConfig's overrides on top."""
    data = facts.config.data if facts.config is not None else {}
    return [data, *({**data, **nc.defaults} for nc in facts.snapshot.node_configs)]


def probe_cidrs(facts: Facts) -> tuple[str, ...]:
    """The source addresses of SNAT-ed kubelet probes, one /32 or /128 per IP family the cluster runs.

    Istio's defaults, or istio-cni-node's HOST_PROBE_SNAT_IP / HOST_PROBE_SNAT_IPV6 (the IPv6 one
    from Istio 1.23; istio/istio cni/pkg/nodeagent/options.go). Dual-stack clusters get both: an
    allowance from an address that never appears costs nothing.
    """
    env = facts.istio_cni.env if facts.istio_cni is not None else {}
    views = _views(facts)
    ipv4 = not views or any(parse_bool(v.get("enable-ipv4", "true")) is not False for v in views)
    ipv6 = any(parse_bool(v.get("enable-ipv6", "false")) for v in views) or not ipv4
    wanted = [("HOST_PROBE_SNAT_IP", PROBE_IPV4)] if ipv4 else []
    if ipv6:
        wanted.append(("" if facts.istio_before(1, 23) else "HOST_PROBE_SNAT_IPV6", PROBE_IPV6))
    cidrs = []
    for variable, default in wanted:
        try:
            address = ipaddress.ip_address(env.get(variable) or default)
        except ValueError:
            address = ipaddress.ip_address(default)  # istio-cni refuses it too (netip.MustParseAddr)
        if address.version != ipaddress.ip_address(default).version:
            address = ipaddress.ip_address(default)
        cidrs.append(f"{address}/{address.max_prefixlen}")
    return tuple(cidrs)


def clusterwide_probe_policy_safe(facts: Facts) -> tuple[bool, str]:
    """Whether `endpointSelector: {}` with enableDefaultDeny false isolates nothing, and why.

    The agent honours enableDefaultDeny from Cilium 1.16; from 1.17,
    `enable-non-default-deny-policies: "false"` makes it ignore the field, and such a
    policy puts every pod into ingress default-deny (cilium/cilium
    pkg/policy/api/rule_validation.go Rule.Sanitize). Where `enable-policy` is `always` on
    every node, every endpoint is default-deny anyway and an allow policy only allows.
    """
    views = _views(facts)
    if views and all((v.get("enable-policy") or "").lower() == "always" for v in views):
        return True, "enable-policy is always on every node: every endpoint is default-deny already"
    version = facts.version
    if version is None:
        return (
            False,
            "the Cilium version is unknown, so is whether it honours enableDefaultDeny (Cilium >= 1.16)",
        )
    shown = facts.version_shown
    if version[:2] < ENABLE_DEFAULT_DENY_SINCE:
        return (
            False,
            f"Cilium {shown} has no enableDefaultDeny (from 1.16): the policy would isolate every pod",
        )
    if version[:2] >= NON_DEFAULT_DENY_SINCE:
        for view in views:
            raw = view.get(NON_DEFAULT_DENY_KEY)
            if raw is not None and parse_bool(raw) is not True:
                return False, (
                    f'{NON_DEFAULT_DENY_KEY} is "{raw}": the agent ignores enableDefaultDeny: false, '
                    "so the policy would isolate every pod"
                )
    return True, f"Cilium {shown} honours enableDefaultDeny: the policy isolates no pod"


def _policy_patch(ref: PolicyRef, cidrs: Sequence[str]) -> PolicyPatch:
    if ref.kind == "NetworkPolicy":
        rule: dict[str, Any] = {"from": [{"ipBlock": {"cidr": c}} for c in cidrs]}
    else:
        rule = {"fromCIDR": list(cidrs)}
    path = f"{ref.path}/ingress"
    op = (
        {"op": "add", "path": f"{path}/-", "value": rule}
        if ref.has_ingress
        else {"op": "add", "path": path, "value": [rule]}
    )
    return PolicyPatch(ref, [op])


def _probe(facts: Facts, isolating: Sequence[PolicyRef]) -> Probe:
    cidrs = probe_cidrs(facts)
    safe, why = clusterwide_probe_policy_safe(facts)
    version = facts.version
    if safe:
        deny_field = version is not None and version[:2] >= ENABLE_DEFAULT_DENY_SINCE
        return Probe("clusterwide", cidrs, why, default_deny_field=deny_field)
    if isolating:
        return Probe("per-policy", cidrs, why, patches=tuple(_policy_patch(ref, cidrs) for ref in isolating))
    return Probe("none", cidrs, why)


def requests_for(report: Report, scope: str) -> list[tuple[str, Remedy]]:
    """(finding id, remedy) for each finding that asks for a change; the full scope adds every rule's."""
    requests = [
        (f.id, f.remedy) for f in report.ordered if f.severity is not Severity.INFO and f.remedy is not None
    ]
    if scope == "full":
        from .rules import registered

        fired = {f.id for f in report.findings}
        requests.extend((rule.id, rule.remedy) for rule in registered() if rule.id not in fired)
        requests.append(("", Remedy(istio=("strict-mtls",))))
    return requests


def plan(facts: Facts, requests: Sequence[tuple[str, Remedy]], scope: str) -> Plan:
    """Everything the remedies ask for, minus what the cluster already has (scope `changes`)."""
    full = scope == "full"
    result = Plan()
    data = facts.config.data if facts.config is not None else {}
    views = _views(facts)
    wanted = _ids(requests, lambda remedy: remedy.cilium)
    keys_seen: set[str] = set()
    called_for: list[Write] = []
    for setting, ids in wanted.items():
        if setting.key in keys_seen:
            continue  # a conflicting value for a key already planned: the first request wins
        keys_seen.add(setting.key)
        reasons = sorted({r for view in views for r in setting.blocked_by(view)})
        if reasons:
            result.blocked.append(Blocked(setting, tuple(ids), tuple(reasons)))
            continue
        called_for.append(Write(setting, tuple(ids)))
    result.writes = [w for w in called_for if full or not w.setting.satisfied_by(data.get(w.setting.key))]
    for nc in facts.snapshot.node_configs:
        undone = [
            w
            for w in called_for
            if w.setting.key in nc.defaults and not w.setting.satisfied_by(nc.defaults[w.setting.key])
        ]
        if undone:
            result.node_patches.append(
                NodePatch(
                    namespace=nc.namespace,
                    name=nc.name,
                    defaults={w.setting.key: w.setting.value for w in undone},
                    findings=tuple(sorted({i for w in undone for i in w.findings})),
                )
            )
    restart_asked = any(
        remedy.restart_agents and finding for finding, remedy in requests if not remedy.cilium
    )
    result.restart = bool(result.writes or result.node_patches or restart_asked)
    istio = _ids(requests, lambda remedy: remedy.istio)
    result.platform = "platform" in istio
    if "probe-allowance" in istio:
        result.probe = _probe(facts, list(_ids(requests, lambda remedy: remedy.isolating)))
    result.strict_mtls = "strict-mtls" in istio
    result.steps = list(_ids(requests, lambda remedy: remedy.steps))
    return result


# ----------------------------------------------------------------------------- what a target covers


def covered(finding: Finding, target: str, the_plan: Plan) -> bool:
    """Whether `target` really makes every change the finding's remedy asks for."""
    remedy = finding.remedy
    if remedy is None or not remedy.applicable or remedy.steps:
        return False
    written = {w.setting.key for w in the_plan.writes}
    blocked = {b.setting.key for b in the_plan.blocked}
    for setting in remedy.cilium:
        if setting.key in blocked:
            return False
        if setting.key in written and not _target_writes(target, setting):
            return False
    if "platform" in remedy.istio and target not in CANONICAL_TARGETS:
        return False
    probe = the_plan.probe
    return "probe-allowance" not in remedy.istio or (probe is not None and probe.mode != "none")


def _target_writes(target: str, setting: CiliumSetting) -> bool:
    """Whether `target` has a way to write `setting` into cilium-config."""
    if target in CANONICAL_TARGETS and setting.k8sd_annotation:
        return True
    if target in ("helm", *CANONICAL_TARGETS):
        return setting.helm is not None
    return True


def helm_writes(target: str, the_plan: Plan, data: Mapping[str, str]) -> tuple[list[Write], list[Write]]:
    """(settings written as Helm values, settings skipped as not needing one) for a Helm-based target."""
    values, skipped = [], []
    for w in the_plan.writes:
        s = w.setting
        if target in CANONICAL_TARGETS and s.k8sd_annotation:
            continue
        if s.helm is None:
            continue
        if s.helm_when_set and s.satisfied_by(data.get(s.key)):
            skipped.append(w)  # e.g. encryption.enabled also drives WireGuard/IPsec: leave it alone
            continue
        values.append(w)
    return values, skipped
