"""Cilium Helm chart values -> the `cilium-config` keys that chart version renders.

A values file (as GitOps repositories keep them) says nothing about the keys it leaves
out: the chart's own defaults fill them in, and they change between chart versions
(`cni.exclusive` is true unless told, `enableIPv4Masquerade` became a template default in
1.18, `encryption.type: ztunnel` appeared in 1.19). This module merges the values over the
defaults of one chart version and evaluates the parts of that version's
`templates/cilium-configmap.yaml` that write the keys the checks read, so a values file is
checked exactly like the ConfigMap the chart would install.

Pure: parsed values in, raw Kubernetes-shaped objects out (a `cilium-config` ConfigMap and
the agent DaemonSet's image and CNI hostPaths), fed to `assemble.build_snapshot` like any
other input.

Sources, read per chart version from the released charts (cilium/charts, `cilium-<v>.tgz`,
files `cilium/values.yaml` and `cilium/templates/cilium-configmap.yaml`, and
`cilium/templates/cilium-agent/daemonset.yaml` for the CNI hostPaths): 1.14.19, 1.15.19,
1.16.19, 1.17.1, 1.17.12, 1.18.4, 1.18.12, 1.19.4, 1.19.6. Within a minor version the
translated parts do not differ between these releases. Tests compare the translation with
what `helm template` renders from those charts (tests/unit/test_helm_values.py).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SUPPORTED = ("1.14", "1.15", "1.16", "1.17", "1.18", "1.19")
"""Chart minor versions whose defaults and template logic are encoded here."""
DEFAULT_NAMESPACE = "kube-system"
DEFAULT_RELEASE = "cilium"

KEYS = (
    "kube-proxy-replacement",
    "bpf-lb-sock",
    "bpf-lb-sock-hostns-only",
    "cni-exclusive",
    "cni-chaining-mode",
    "enable-bpf-masquerade",
    "enable-host-legacy-routing",
    "enable-ipv4",
    "enable-ipv6",
    "enable-ipv4-masquerade",
    "enable-ipv6-masquerade",
    "enable-ip-masq-agent",
    "routing-mode",
    "enable-endpoint-routes",
    "enable-policy",
    "enable-non-default-deny-policies",
    "enable-l7-proxy",
    "enable-wireguard",
    "enable-ztunnel",
    "install-no-conntrack-iptables-rules",
)
"""The `cilium-config` keys translated: every key the checks read that the chart writes."""

CHART_KEYS = frozenset(
    {
        "kubeProxyReplacement",
        "socketLB",
        "hostServices",
        "bpf",
        "cni",
        "ipam",
        "hubble",
        "routingMode",
        "tunnelProtocol",
        "tunnel",
        "k8sServiceHost",
        "k8sServicePort",
        "ipv4NativeRoutingCIDR",
        "ipv6NativeRoutingCIDR",
        "enableIPv4Masquerade",
        "enableIPv6Masquerade",
        "policyEnforcementMode",
        "enableNonDefaultDenyPolicies",
        "endpointRoutes",
        "encryption",
        "installNoConntrackIptablesRules",
        "ipMasqAgent",
        "l7Proxy",
        "envoy",
        "gatewayAPI",
        "clustermesh",
        "egressGateway",
        "bgpControlPlane",
        "l2announcements",
        "loadBalancer",
        "nodePort",
        "hostPort",
        "devices",
        "upgradeCompatibility",
        "cgroup",
        "operator",
        "prometheus",
    }
)
"""Top-level keys of the Cilium chart's values.yaml that tell a values file from other YAML."""

_DISTINCTIVE = CHART_KEYS - {"operator", "prometheus", "devices", "tunnel", "ipam", "cgroup"}


class ValuesError(Exception):
    """The values cannot be rendered: the chart itself would refuse them."""


@dataclass(frozen=True)
class Chart:
    """What one chart minor version renders differently, as read from its files."""

    minor: tuple[int, int]
    read: tuple[str, ...]
    """Chart releases whose files were read for this entry."""
    defaults: Mapping[str, Any]
    """The values.yaml entries the translation reads, as the chart ships them."""
    kpr_values: tuple[str, ...]
    """kubeProxyReplacement values the template accepts (others: `fail`)."""
    legacy_tunnel: bool = False
    """1.14: the deprecated `tunnel` value picks routing-mode when routingMode is empty."""
    routing_form: str = "chain"
    """`chain` (1.14-1.16: gke, aksbyocni, routingMode, else tunnel) or `default` (1.17+)."""
    native_by_default: tuple[str, ...] = ("gke",)
    """Values whose `enabled` makes routingMode default to native (1.19 adds eni)."""
    ipv4_masquerade_template_default: bool = False
    """1.18+: enableIPv4Masquerade is ~ in values.yaml and the template supplies the default."""
    non_default_deny: bool = False
    """1.17+: enable-non-default-deny-policies is rendered."""
    ztunnel_encryption: bool = False
    """1.19+: encryption.type=ztunnel renders enable-ztunnel."""
    eni_endpoint_routes_unless_set: bool = True
    """1.15+: ENI forces enable-endpoint-routes only when endpointRoutes.enabled is off."""
    kpr_default_chain: bool = True
    """≤ 1.18: upgradeCompatibility < 1.14 brings back the old probe/disabled KPR defaults."""
    schema: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """JSON types values.schema.json (1.16+) allows at the paths translated; Helm refuses others."""
    removed: tuple[str, ...] = ()
    """Values templates/validate.yaml refuses (`tunnel`, removed in 1.15)."""

    @property
    def version(self) -> str:
        """`1.17`."""
        return f"{self.minor[0]}.{self.minor[1]}"


def _base_defaults() -> dict[str, Any]:
    # Identical in every values.yaml read (1.14.19 … 1.19.6), at these paths.
    return {
        "agent": True,
        "operator": {"enabled": True},
        "preflight": {"enabled": False},
        "clustermesh": {"useAPIServer": False},
        "upgradeCompatibility": None,
        "image": {"repository": "quay.io/cilium/cilium", "override": None},
        "socketLB": {"enabled": False},
        "cni": {
            "install": True,
            "exclusive": True,
            "customConf": False,
            "chainingMode": None,
            "chainingTarget": None,
            "binPath": "/opt/cni/bin",
            "confPath": "/etc/cni/net.d",
        },
        "bpf": {"masquerade": None, "hostLegacyRouting": None},
        "enableIPv4Masquerade": True,
        "enableIPv6Masquerade": True,
        "ipv4": {"enabled": True},
        "ipv6": {"enabled": False},
        "routingMode": "",
        "policyEnforcementMode": "default",
        "endpointRoutes": {"enabled": False},
        "encryption": {"enabled": False, "type": "ipsec"},
        "installNoConntrackIptablesRules": False,
        "ipMasqAgent": {"enabled": False},
        "l7Proxy": True,
        "gke": {"enabled": False},
        "eni": {"enabled": False},
        "azure": {"enabled": False},
        "aksbyocni": {"enabled": False},
        "alibabacloud": {"enabled": False},
    }


def _defaults(minor: int) -> dict[str, Any]:
    values = _base_defaults()
    if minor <= 17:
        values["externalWorkloads"] = {"enabled": False}  # removed from values.yaml in 1.18
    if minor == 14:
        values["tunnel"] = ""  # deprecated in 1.14, gone from 1.15's values.yaml
    if minor >= 17:
        values["enableNonDefaultDenyPolicies"] = True
    if minor >= 18:
        values["kubeProxyReplacement"] = "false"  # absent (so "false" from the template) before
        values["enableIPv4Masquerade"] = None
    return values


def _schema(minor: int) -> dict[str, tuple[str, ...]]:
    """values.schema.json types at the translated paths (the chart has a schema from 1.16)."""
    if minor < 16:
        return {}
    boolean, string = ("boolean",), ("string",)
    schema: dict[str, tuple[str, ...]] = {
        path: boolean
        for path in (
            "agent",
            "operator.enabled",
            "preflight.enabled",
            "socketLB.enabled",
            "cni.install",
            "cni.exclusive",
            "cni.customConf",
            "enableIPv4Masquerade",
            "enableIPv6Masquerade",
            "ipv4.enabled",
            "ipv6.enabled",
            "encryption.enabled",
            "installNoConntrackIptablesRules",
            "ipMasqAgent.enabled",
            "l7Proxy",
            "gke.enabled",
            "eni.enabled",
            "azure.enabled",
            "aksbyocni.enabled",
            "alibabacloud.enabled",
        )
    }
    schema.update(
        {
            path: string
            for path in (
                "routingMode",
                "policyEnforcementMode",
                "encryption.type",
                "cni.binPath",
                "cni.confPath",
            )
        }
    )
    schema.update(
        {
            "bpf.masquerade": ("null", "boolean"),
            "bpf.hostLegacyRouting": ("null", "boolean"),
            "cni.chainingMode": ("null", "string"),
            "cni.chainingTarget": ("null", "string"),
            "upgradeCompatibility": ("null", "string"),
            "endpointRoutes.enabled": ("boolean", "string"),
        }
    )
    if minor >= 17:
        schema["enableNonDefaultDenyPolicies"] = boolean
    if minor >= 18:
        schema["kubeProxyReplacement"] = ("string", "boolean")
        schema["enableIPv4Masquerade"] = ("null", "boolean")
    return schema


def _chart(minor: int, read: tuple[str, ...], **template: Any) -> Chart:
    return Chart(
        (1, minor),
        read,
        _defaults(minor),
        schema=_schema(minor),
        removed=("tunnel",) if minor >= 15 else (),
        **template,
    )


_OLD_KPR = ("disabled", "partial", "strict", "true", "false")
_KPR = ("true", "false")
_NEWER = {"routing_form": "default", "non_default_deny": True}

CHARTS: dict[str, Chart] = {
    "1.14": _chart(
        14, ("1.14.19",), kpr_values=_OLD_KPR, legacy_tunnel=True, eni_endpoint_routes_unless_set=False
    ),
    "1.15": _chart(15, ("1.15.19",), kpr_values=_OLD_KPR),
    "1.16": _chart(16, ("1.16.19",), kpr_values=_KPR),
    "1.17": _chart(17, ("1.17.1", "1.17.12"), kpr_values=_KPR, **_NEWER),
    "1.18": _chart(
        18, ("1.18.4", "1.18.12"), kpr_values=_KPR, ipv4_masquerade_template_default=True, **_NEWER
    ),
    "1.19": _chart(
        19,
        ("1.19.4", "1.19.6"),
        kpr_values=_KPR,
        native_by_default=("eni", "gke"),
        ipv4_masquerade_template_default=True,
        ztunnel_encryption=True,
        kpr_default_chain=False,
        **_NEWER,
    ),
}
"""Per chart minor: values.yaml defaults, values.schema.json types and template differences."""

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+][0-9A-Za-z.-]+)?$")


def parse_version(text: str) -> tuple[int, int, int | None]:
    """`1.17`, `v1.17.4`, `1.19.0-rc.1` -> (major, minor, patch or None); ValueError otherwise."""
    match = _VERSION.match(text.strip())
    if not match:
        raise ValueError(f"not a Cilium version: {text!r} (expected X.Y or X.Y.Z, e.g. 1.17)")
    return int(match[1]), int(match[2]), int(match[3]) if match[3] is not None else None


@dataclass(frozen=True)
class ChartChoice:
    """Which chart's defaults are used, and why (said to the user, never silently)."""

    chart: Chart
    requested: str | None
    """The version asked for (--cilium-version), or taken from image.tag; None when neither."""
    origin: str
    """`option`, `image.tag` or `default`."""
    image_version: str
    """The agent version the rendered DaemonSet advertises (X.Y or X.Y.Z)."""
    note: str = ""
    """Why another version's defaults were used, for stderr and the report's source."""


def choose_chart(requested: str | None, values: Mapping[str, Any]) -> ChartChoice:
    """The chart for `requested` (X.Y[.Z]); else the one image.tag names; else the newest."""
    origin = "option"
    if requested is None:
        tag = _get(values, "image", "tag")
        if isinstance(tag, str) and _VERSION.match(tag.strip()):
            requested, origin = tag.strip(), "image.tag"
    if requested is None:
        newest = CHARTS[SUPPORTED[-1]]
        return ChartChoice(
            newest,
            None,
            "default",
            newest.version,
            note=f"no --cilium-version given: chart {newest.version} defaults used "
            f"(pass --cilium-version X.Y for your chart)",
        )
    major, minor, patch = parse_version(requested)
    shown = f"{major}.{minor}" + (f".{patch}" if patch is not None else "")
    key = f"{major}.{minor}"
    if key in CHARTS:
        return ChartChoice(CHARTS[key], requested, origin, shown)
    known = [CHARTS[k] for k in SUPPORTED]
    chart = known[0] if (major, minor) < known[0].minor else known[-1]
    return ChartChoice(
        chart,
        requested,
        origin,
        shown,
        note=f"Cilium chart {key} is not known here (supported: {SUPPORTED[0]}-{SUPPORTED[-1]}): "
        f"chart {chart.version} defaults used",
    )


@dataclass(frozen=True)
class Rendered:
    """What the chart would install, as far as the checks read it."""

    choice: ChartChoice
    config: Mapping[str, str] | None
    """The translated `cilium-config` data; None when the chart renders no cilium-config."""
    objects: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = field(default=())


def merge(values: Iterable[Mapping[str, Any]], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: later files win, maps merge key by key, a null removes a default."""
    merged: dict[str, Any] = copy.deepcopy(dict(defaults))
    for layer in values:
        _merge_into(merged, layer)
    return merged


def _merge_into(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        key = str(key)
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def looks_like_values(document: object) -> bool:
    """A YAML mapping without apiVersion/kind whose keys are the Cilium chart's."""
    if not isinstance(document, Mapping) or "apiVersion" in document or "kind" in document:
        return False
    keys = {str(k) for k in document}
    return bool(keys & _DISTINCTIVE) or len(keys & CHART_KEYS) >= 2


def render(
    values: Sequence[Mapping[str, Any]],
    *,
    version: str | None = None,
    namespace: str | None = None,
    release: str = DEFAULT_RELEASE,
) -> Rendered:
    """The objects the chart would install for `values` (several files merge in order)."""
    merged_user: dict[str, Any] = {}
    for layer in values:
        _merge_into(merged_user, layer)
    choice = choose_chart(version, merged_user)
    chart = choice.chart
    v = merge(values, chart.defaults)
    validate(v, chart)
    namespace = namespace or DEFAULT_NAMESPACE
    notes = [choice.note] if choice.note else []
    notes.extend(misspelt(merged_user, chart))
    renders = _truthy(
        _get(v, "agent")
        or _get(v, "operator", "enabled")
        or _get(v, "externalWorkloads", "enabled")
        or _get(v, "clustermesh", "useAPIServer")
    ) and not _truthy(_get(v, "preflight", "enabled"))
    objects: list[dict[str, Any]] = []
    config: dict[str, str] | None = None
    if renders:
        config = config_data(v, chart)
        objects.append(_configmap(config, namespace, release))
    else:
        notes.append(
            "with these values the chart renders no cilium-config (agent/operator off or preflight on)"
        )
    if _truthy(_get(v, "agent")) and not _truthy(_get(v, "preflight", "enabled")):
        objects.append(_agent(v, choice, namespace, release))
    return Rendered(choice, config, tuple(objects), tuple(notes))


_READ_ALSO: Mapping[str, Any] = {
    "kubeProxyReplacement": None,
    "socketLB": {"hostNamespaceOnly": None},
    "hostServices": {"enabled": None, "hostNamespaceOnly": None},
    "image": {"tag": None},
}
"""Paths the translation reads that values.yaml leaves out (absent, or commented out)."""


def _fold(key: str) -> str:
    return key.replace("-", "").replace("_", "").lower()


def misspelt(values: Mapping[str, Any], chart: Chart) -> list[str]:
    """Keys one letter-case or separator away from a key the checks read: Helm ignores them silently.

    `socketLb.hostNamespaceOnly: true` renders nothing, so the socket-LB finding stays: say why.
    Only keys the translation knows are compared (the chart has many more), so no false alarms.
    """
    notes: list[str] = []

    def walk(user: Mapping[str, Any], known: Mapping[str, Any], path: str) -> None:
        folded = {_fold(k): k for k in known}
        for key, value in user.items():
            if not isinstance(key, str):
                continue
            if key in known:
                if isinstance(value, Mapping) and isinstance(known[key], Mapping):
                    walk(value, known[key], f"{path}{key}.")
                continue
            meant = folded.get(_fold(key))
            if meant is not None:
                notes.append(
                    f"values key {path}{key} is not the chart's {path}{meant}: "
                    f"Helm ignores it (chart {chart.version}); rename it"
                )

    walk(values, _deep_union(chart.defaults, _READ_ALSO), "")
    return notes


def _deep_union(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(a)
    for key, value in b.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_union(out[key], value)
        elif key not in out:
            out[key] = value
    return out


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "string": (str,),
    "null": (type(None),),
}


def validate(v: Mapping[str, Any], chart: Chart) -> None:
    """What Helm refuses before rendering, at the translated paths: schema types, removed values."""
    for name in chart.removed:
        if _truthy(_get(v, name)):
            raise ValuesError(f"{name} was removed from the chart in 1.15; chart {chart.version} refuses it")
    for path, types in chart.schema.items():
        parts = path.split(".")
        parent = _get(v, *parts[:-1]) if len(parts) > 1 else v
        if len(parts) > 1 and parent is not None and not isinstance(parent, Mapping):
            raise ValuesError(f"{'.'.join(parts[:-1])}: chart {chart.version} wants a mapping")
        if not isinstance(parent, Mapping) or parts[-1] not in parent:
            continue
        value = parent[parts[-1]]
        allowed = tuple(t for name in types for t in _JSON_TYPES[name])
        if not isinstance(value, allowed) or (bool not in allowed and isinstance(value, bool)):
            want = " or ".join(types)
            raise ValuesError(
                f"{path}: {_to_string(value)!r} is not {want} (chart {chart.version} values.schema.json)"
            )


def config_data(v: Mapping[str, Any], chart: Chart) -> dict[str, str]:
    """`templates/cilium-configmap.yaml` of `chart`, for the keys in KEYS, on merged values."""
    data: dict[str, str] = {}

    def put(key: str, value: object) -> None:
        rendered = _quote(value)
        if rendered is not None:
            data[key] = rendered

    uc = _get(v, "upgradeCompatibility")
    # The default-value ladder at the top of the template: each block applies when the
    # cluster was first deployed at that version or later (unset: every block applies).
    default_bpf_masquerade = "false"
    default_kpr = "false"
    if _deployed_at_least(uc, "1.8"):
        default_bpf_masquerade = "true"
        if chart.kpr_default_chain:
            default_kpr = "probe"
    if _deployed_at_least(uc, "1.10"):
        default_bpf_masquerade = "false"
    if chart.kpr_default_chain and _deployed_at_least(uc, "1.12"):
        default_kpr = "disabled"
    if _deployed_at_least(uc, "1.14"):
        default_kpr = "false"
    default_ipv4_masquerade = "true"
    if chart.ipv4_masquerade_template_default and _deployed_at_least(uc, "1.18") and _on(v, "eni"):
        default_ipv4_masquerade = "false"

    kpr_value = _get(v, "kubeProxyReplacement")
    kpr = _coalesce("" if kpr_value is None else _to_string(kpr_value), default_kpr)
    if kpr not in chart.kpr_values:
        allowed = ", ".join(chart.kpr_values)
        raise ValuesError(
            f"kubeProxyReplacement {_to_string(kpr)!r}: chart {chart.version} accepts only {allowed}"
        )
    chaining_mode = "none"
    if _get(v, "cni", "chainingMode") is not None:
        chaining_mode = _to_string(_get(v, "cni", "chainingMode"))
    elif _get(v, "cni", "chainingTarget") is not None:
        chaining_mode = "generic-veth"

    if _has(v, "policyEnforcementMode"):
        put("enable-policy", _to_string(_get(v, "policyEnforcementMode")).lower())
    put("enable-ipv4", _get(v, "ipv4", "enabled"))
    put("enable-ipv6", _get(v, "ipv6", "enabled"))

    host_legacy = _get(v, "bpf", "hostLegacyRouting")
    if host_legacy is not None:
        put("enable-host-legacy-routing", host_legacy)
    elif chaining_mode != "none":
        put("enable-host-legacy-routing", "true")

    data.update(_routing(v, chart))
    if _on(v, "gke"):
        data["enable-endpoint-routes"] = "true"
    if _on(v, "eni") and (
        not chart.eni_endpoint_routes_unless_set or not _truthy(_get(v, "endpointRoutes", "enabled"))
    ):
        data["enable-endpoint-routes"] = "true"
    if _on(v, "azure") or _on(v, "alibabacloud"):
        data["enable-endpoint-routes"] = "true"
    if _has(v, "l7Proxy"):
        put("enable-l7-proxy", _get(v, "l7Proxy"))
    if chaining_mode != "none":
        put("cni-chaining-mode", chaining_mode)

    if chart.ipv4_masquerade_template_default:
        ipv4_masquerade = _get(v, "enableIPv4Masquerade")
        put("enable-ipv4-masquerade", default_ipv4_masquerade if ipv4_masquerade is None else ipv4_masquerade)
    else:
        put("enable-ipv4-masquerade", _get(v, "enableIPv4Masquerade"))
    put("enable-ipv6-masquerade", _get(v, "enableIPv6Masquerade"))
    bpf_masquerade = _get(v, "bpf", "masquerade")
    if bpf_masquerade is not None:
        put("enable-bpf-masquerade", bpf_masquerade)
    elif default_bpf_masquerade == "true":
        put("enable-bpf-masquerade", "true")
    if _truthy(_get(v, "ipMasqAgent")) and _truthy(_get(v, "ipMasqAgent", "enabled")):
        data["enable-ip-masq-agent"] = "true"

    if _truthy(_get(v, "encryption", "enabled")):
        kind = _get(v, "encryption", "type")
        if kind == "wireguard":
            put("enable-wireguard", _get(v, "encryption", "enabled"))
        elif kind == "ztunnel" and chart.ztunnel_encryption:
            put("enable-ztunnel", _get(v, "encryption", "enabled"))

    if _on(v, "azure") or _on(v, "eni") or _on(v, "gke") or chaining_mode != "none":
        data["install-no-conntrack-iptables-rules"] = "false"
    else:
        put("install-no-conntrack-iptables-rules", _get(v, "installNoConntrackIptablesRules"))

    data["kube-proxy-replacement"] = kpr
    socket_lb = _coalesce(_get(v, "socketLB"), _get(v, "hostServices"))
    if _truthy(socket_lb) and not isinstance(socket_lb, Mapping):
        raise ValuesError(f"socketLB: {_to_string(socket_lb)!r} is not a mapping (the chart fails)")
    if isinstance(socket_lb, Mapping):
        if "enabled" in socket_lb:
            put("bpf-lb-sock", socket_lb["enabled"])
        if "hostNamespaceOnly" in socket_lb:
            put("bpf-lb-sock-hostns-only", socket_lb["hostNamespaceOnly"])

    if _truthy(_get(v, "endpointRoutes")) and _truthy(_get(v, "endpointRoutes", "enabled")):
        put("enable-endpoint-routes", _get(v, "endpointRoutes", "enabled"))
    if not _truthy(_get(v, "cni", "customConf")) and _truthy(_get(v, "cni", "install")):
        put("cni-exclusive", _get(v, "cni", "exclusive"))
    if chart.non_default_deny:
        put("enable-non-default-deny-policies", _get(v, "enableNonDefaultDenyPolicies"))
    return {key: data[key] for key in KEYS if key in data}


def _routing(v: Mapping[str, Any], chart: Chart) -> dict[str, str]:
    routing_mode = _get(v, "routingMode")
    if chart.routing_form == "default":
        # routing-mode: {{ .Values.routingMode | default (ternary "native" "tunnel" <cloud>) }}
        if _on(v, "gke") and _coalesce(routing_mode, "native") != "native":
            raise ValuesError("routingMode must be native when gke.enabled=true (the chart fails)")
        if _on(v, "aksbyocni") and _coalesce(routing_mode, "tunnel") != "tunnel":
            raise ValuesError("routingMode must be tunnel when aksbyocni.enabled=true (the chart fails)")
        native = any(_on(v, name) for name in chart.native_by_default)
        return {"routing-mode": _to_string(_coalesce(routing_mode, "native" if native else "tunnel"))}
    if _on(v, "gke"):
        if _coalesce(routing_mode, "native") != "native":
            raise ValuesError("routingMode must be native when gke.enabled=true (the chart fails)")
        return {"routing-mode": "native"}
    if _on(v, "aksbyocni"):
        if _coalesce(routing_mode, "tunnel") != "tunnel":
            raise ValuesError("routingMode must be tunnel when aksbyocni.enabled=true (the chart fails)")
        return {"routing-mode": "tunnel"}
    if _truthy(routing_mode):
        return {"routing-mode": _to_string(routing_mode)}
    if chart.legacy_tunnel and _get(v, "tunnel") == "disabled":
        return {"routing-mode": "native"}
    return {"routing-mode": "tunnel"}


def _configmap(data: Mapping[str, str], namespace: str, release: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "cilium-config",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {
                "meta.helm.sh/release-name": release,
                "meta.helm.sh/release-namespace": namespace,
            },
        },
        "data": dict(data),
    }


def _agent(v: Mapping[str, Any], choice: ChartChoice, namespace: str, release: str) -> dict[str, Any]:
    """The agent DaemonSet as far as the checks read it: image (the version) and CNI hostPaths."""
    override = _get(v, "image", "override")
    tag = _get(v, "image", "tag")
    if override:
        image = _to_string(override)
    else:
        repository = _to_string(_get(v, "image", "repository") or "quay.io/cilium/cilium")
        image = f"{repository}:{_to_string(tag) if tag else 'v' + choice.image_version}"
    volumes = [
        {
            "name": "cni-path",
            "hostPath": {"path": _to_string(_get(v, "cni", "binPath")), "type": "DirectoryOrCreate"},
        },
        {
            "name": "etc-cni-netd",
            "hostPath": {"path": _to_string(_get(v, "cni", "confPath")), "type": "DirectoryOrCreate"},
        },
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "cilium",
            "namespace": namespace,
            "labels": {"k8s-app": "cilium", "app.kubernetes.io/managed-by": "Helm"},
            "annotations": {
                "meta.helm.sh/release-name": release,
                "meta.helm.sh/release-namespace": namespace,
            },
        },
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "cilium"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "cilium"}},
                "spec": {"containers": [{"name": "cilium-agent", "image": image}], "volumes": volumes},
            },
        },
    }


# -- Go template semantics, as far as the translated lines use them ---------------------


def _get(values: Mapping[str, Any], *path: str) -> Any:
    current: Any = values
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _has(values: Mapping[str, Any], key: str) -> bool:
    """`hasKey .Values key`: a null in the user's values removed it."""
    return key in values


def _on(values: Mapping[str, Any], name: str) -> bool:
    """`{{ if .Values.<name>.enabled }}`."""
    return _truthy(_get(values, name, "enabled"))


def _truthy(value: object) -> bool:
    """Go template truth: false, 0, nil and empty strings/maps/lists are false; "false" is true."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, str | Mapping | list | tuple):
        return len(value) > 0
    return True


def _coalesce(*values: Any) -> Any:
    """Sprig's `coalesce`/`default`: the first non-empty value."""
    for value in values:
        if _truthy(value):
            return value
    return values[-1] if values else None


def _to_string(value: object) -> str:
    """Go's `%v` of a YAML scalar (what `quote` and `toString` print)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _quote(value: object) -> str | None:
    """`{{ x | quote }}`; None when the value is nil (the key would render empty)."""
    return None if value is None else _to_string(value)


def _deployed_at_least(upgrade_compatibility: object, version: str) -> bool:
    """`semverCompare ">=X" (default "X" .Values.upgradeCompatibility)`."""
    if not _truthy(upgrade_compatibility):
        return True
    text = _to_string(upgrade_compatibility)
    try:
        major, minor, _ = parse_version(text)
    except ValueError:
        raise ValuesError(f"upgradeCompatibility {text!r} is not a version (the chart fails)") from None
    want = tuple(int(p) for p in version.split("."))
    return (major, minor) >= want
