"""The configuration change a cluster needs, written for the tool that manages its Cilium.

A finding says what is wrong; this module prints what to run. Every value that
comes from the cluster (namespaces, release and object names) is escaped for the
language it lands in by the template filters registered here, so a hostile name
stays inside its quoting. jinja2 is imported only when rendering: the charm
imports this module inside its action, and a hook must not pay for it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .report import Report, Severity
from .rules.facts import DEFAULT_CNI_BIN_DIR, DEFAULT_CNI_CONF_DIR, Facts, format_version, parse_bool

if TYPE_CHECKING:
    import jinja2

    from .snapshot import DaemonSetInfo, Snapshot

TARGETS = ("helm", "cilium-cli", "configmap-patch", "canonical-k8s", "canonical-k8s-charm")
SCOPES = ("changes", "full")
CANONICAL_TARGETS = ("canonical-k8s", "canonical-k8s-charm")
VALUES_FILE = "values-istio-ambient.yaml"
CK_CHART = "/snap/k8s/current/k8s/manifests/charts/cilium-*.tgz"
"""The Cilium chart k8sd installs as ck-network: `$SNAP/k8s/manifests/charts/cilium-<version>.tgz`,
one per snap revision (canonical/k8sd `features/cilium/chart.go`). A glob, because the chart
version is not the agent image's (e.g. chart 1.17.1 ran image 1.17.12-ck0-static)."""
ENABLE_DEFAULT_DENY_SINCE = (1, 16)
UPSTREAM_REPOSITORIES = frozenset({"quay.io/cilium/cilium", "docker.io/cilium/cilium", "cilium/cilium"})

_CONFIG_TITLES = {
    "helm": f"Helm values ({VALUES_FILE})",
    "cilium-cli": "cilium CLI",
    "configmap-patch": "JSON merge patch for ConfigMap cilium-config",
    "canonical-k8s": "Helm values of the ck-network release and cluster annotations",
    "canonical-k8s-charm": "Helm values of the ck-network release and cluster annotations",
}


@dataclass(frozen=True)
class Setting:
    """One cilium-config key Istio ambient needs, and how each tool spells it."""

    finding: str
    key: str
    value: str
    helm_path: str
    absent_ok: bool
    """Whether the agent default (key absent) is already the needed value."""

    @property
    def wanted(self) -> bool:
        """The needed value as a boolean."""
        return self.value == "true"

    def satisfied_by(self, raw: str | None) -> bool:
        """True when `raw` (None: absent) already gives the needed value."""
        return self.absent_ok if raw is None else parse_bool(raw) is self.wanted


SETTINGS: tuple[Setting, ...] = (
    Setting("CIC001", "bpf-lb-sock-hostns-only", "true", "socketLB.hostNamespaceOnly", absent_ok=False),
    Setting("CIC003", "cni-exclusive", "false", "cni.exclusive", absent_ok=True),
    Setting("CIC010", "enable-bpf-masquerade", "false", "bpf.masquerade", absent_ok=True),
    Setting("CIC011", "enable-host-legacy-routing", "true", "bpf.hostLegacyRouting", absent_ok=True),
    # The chart writes enable-ztunnel only for encryption.type=ztunnel, as encryption.enabled.
    Setting("CIC012", "enable-ztunnel", "false", "encryption.enabled", absent_ok=True),
)
ISTIO_FINDINGS = ("CIC004", "CIC005")
SAME_AS = {"CIC022": "CIC001"}
"""Findings whose change is another's (CIC022's waypoints come back with CIC001's setting)."""
RESTART_FINDING = "CIC009"
HANDLED = frozenset({*(s.finding for s in SETTINGS), *ISTIO_FINDINGS, RESTART_FINDING, *SAME_AS})


@dataclass(frozen=True)
class Rendered:
    """The change for one target: configuration, the commands that apply it, Istio's side."""

    target: str
    scope: str
    config: str
    apply: str
    istio: str
    nothing_to_change: bool
    notes: str = ""
    """Comment lines: how Cilium is managed, which findings this covers, what it leaves out."""

    def text(self) -> str:
        """What `istio-cilium-compat render` prints: commented sections, ready to read or paste."""
        out = [f"# istio-cilium-compat render: target {self.target}, scope {self.scope}\n"]
        if self.notes:
            out.append(_ended(self.notes))
        if self.nothing_to_change and "# Nothing to change" not in self.notes:
            out.append(
                "# Nothing to change: Cilium and Istio already have the settings Istio ambient needs.\n"
            )
        for title, body in (
            (_CONFIG_TITLES.get(self.target, "Configuration"), self.config),
            ("Apply", self.apply),
            ("Istio", self.istio),
        ):
            if body.strip():
                out.append(f"\n# == {title} ==\n{_ended(body)}")
        return "".join(out)


def _ended(text: str) -> str:
    """Sections are joined line-wise: each must end with a newline."""
    return text if text.endswith("\n") else text + "\n"


def _check_choice(kind: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {kind} {value!r}: choose one of {', '.join(allowed)}")


def resolve_target(snapshot: Snapshot, target: str) -> str:
    """`auto` becomes the tool that manages this cluster's Cilium; others are validated."""
    _check_choice("target", target, ("auto", *TARGETS))
    if target != "auto":
        return target
    managed_by = Facts(snapshot).managed_by
    if managed_by == "canonical-k8s":
        return "canonical-k8s"
    if managed_by == "helm":
        return "helm"
    return "cilium-cli"


# ----------------------------------------------------------------------------- escaping filters


def sh(value: object) -> str:
    """A single shell word, whatever the value holds."""
    return shlex.quote(str(value))


def yaml_str(value: object) -> str:
    """A YAML double-quoted scalar; every non-printable character escaped, so no raw line break."""
    out = ['"']
    for ch in str(value):
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def to_json(value: object, indent: int | None = None) -> str:
    """JSON (ASCII only, so nothing in it can end a line or a quoted shell word early)."""
    if indent is None:
        return json.dumps(value, separators=(",", ":"))
    return json.dumps(value, indent=indent)


def one_line(value: object) -> str:
    """Text for a `#` comment: a newline (or any non-printable) would end it and start a command."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(value))


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("istio_cilium_compat", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(sh=sh, yaml_str=yaml_str, json=to_json, one_line=one_line)
    return env


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class NodePatch:
    """A CiliumNodeConfig whose `defaults` undo needed settings, and the values to put back."""

    namespace: str
    name: str
    defaults: Mapping[str, str]
    findings: tuple[str, ...]

    @property
    def patch(self) -> dict[str, Any]:
        """The merge patch `kubectl patch --type merge` takes."""
        return {"spec": {"defaults": dict(self.defaults)}}


@dataclass
class _Plan:
    """What to change, derived once from the findings; the templates only format it."""

    settings: list[Setting] = field(default_factory=list)
    node_patches: list[NodePatch] = field(default_factory=list)
    restart: bool = False
    platform: bool = False
    peer_auth: bool = False
    ccnp: bool = False

    @property
    def empty(self) -> bool:
        """Nothing to print: `nothing_to_change`."""
        return not (
            self.settings or self.node_patches or self.restart or self.platform or self.peer_auth or self.ccnp
        )


def _active(report: Report) -> set[str]:
    """Ids of the findings that ask for a change (INFO findings are context only)."""
    return {f.id for f in report.findings if f.severity is not Severity.INFO}


def _plan(facts: Facts, active: set[str], scope: str, target: str) -> _Plan:
    full = scope == "full"
    plan = _Plan()
    data = facts.config.data if facts.config is not None else {}
    called_for = [s for s in SETTINGS if full or s.finding in active]
    plan.settings = [s for s in called_for if full or not s.satisfied_by(data.get(s.key))]
    for nc in facts.snapshot.node_configs:
        undone = [s for s in called_for if s.key in nc.defaults and not s.satisfied_by(nc.defaults[s.key])]
        if undone:
            plan.node_patches.append(
                NodePatch(
                    namespace=nc.namespace,
                    name=nc.name,
                    defaults={s.key: s.value for s in undone},
                    findings=tuple(sorted({s.finding for s in undone})),
                )
            )
    plan.restart = bool(plan.settings or plan.node_patches or RESTART_FINDING in active)
    plan.platform = "CIC004" in active or (full and target in CANONICAL_TARGETS)
    plan.peer_auth = full
    plan.ccnp = full or "CIC005" in active
    return plan


def _helm_groups(settings: Sequence[Setting]) -> list[dict[str, Any]]:
    """Settings as nested Helm values, grouped by their top-level key, in catalogue order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in settings:
        top, key = s.helm_path.split(".", 1)
        groups.setdefault(top, []).append({"key": key, "value": s.value, "setting": s})
    return [{"top": top, "items": items} for top, items in groups.items()]


def _upstream_image(agent: DaemonSetInfo | None) -> bool:
    """Upstream images carry the chart's version; vendors' tags need not (k8sd: chart 1.17.1, image 1.17.12)."""
    if agent is None:
        return False
    repos = {image.split("@", 1)[0].rsplit(":", 1)[0] for image in agent.images}
    return bool(repos & UPSTREAM_REPOSITORIES)


def _full_tag(agent: DaemonSetInfo | None) -> bool:
    """`--version` needs the chart's patch too: a tag like v1.17 (Helm values, X.Y given) has none."""
    return agent is not None and any(
        re.search(r":v?\d+\.\d+\.\d+", image.split("@", 1)[0].rsplit("/", 1)[-1]) for image in agent.images
    )


def _context(facts: Facts, report: Report, plan: _Plan, target: str, scope: str) -> dict[str, Any]:
    snapshot = facts.snapshot
    active = _active(report)
    data = facts.config.data if facts.config is not None else {}
    ztunnel_on = parse_bool(data.get("enable-ztunnel", "false")) is not False
    canonical = target in CANONICAL_TARGETS

    helm_settings = [s for s in plan.settings if s.finding != "CIC012" or ztunnel_on]
    if canonical:  # k8sd owns cni.exclusive: it is set through a cluster annotation instead.
        helm_settings = [s for s in helm_settings if s.finding != "CIC003"]
    agent = facts.cilium_agent
    istio_cni = facts.istio_cni
    cilium_dirs = agent.host_paths if agent else {}
    istio_dirs = istio_cni.host_paths if istio_cni else {}
    release, release_ns = facts.helm_release
    version = facts.version
    return {
        "target": target,
        "scope": scope,
        "plan": plan,
        "findings": sorted(active),
        "addressed": sorted(active & HANDLED),
        "not_addressed": sorted(active - HANDLED),
        "managed_by": facts.managed_by,
        "helm_annotated": facts.config is not None
        and "meta.helm.sh/release-name" in facts.config.annotations,
        "cilium_found": facts.config is not None,
        "cilium_ns": facts.cilium_namespace,
        "agent_ns": agent.namespace if agent else facts.cilium_namespace,
        "agent_name": agent.name if agent else "cilium",
        "release": release,
        "release_ns": release_ns,
        "version": format_version(version),
        "chart_version": format_version(version) if _upstream_image(agent) and _full_tag(agent) else None,
        "settings": plan.settings,
        "helm_groups": _helm_groups(helm_settings),
        "helm_sets": [f"{s.helm_path}={s.value}" for s in helm_settings],
        "ztunnel_helm_skipped": any(s.finding == "CIC012" for s in plan.settings) and not ztunnel_on,
        "remove_exclusive": canonical and any(s.finding == "CIC003" for s in plan.settings),
        "configmap_patch": {"data": {s.key: s.value for s in plan.settings}},
        "ck_chart": CK_CHART,
        "values_file": VALUES_FILE,
        "root_ns": facts.root_namespace or "istio-system",
        "root_ns_known": facts.root_namespace is not None,
        "cilium_conf_dir": cilium_dirs.get("etc-cni-netd") or DEFAULT_CNI_CONF_DIR,
        "cilium_bin_dir": cilium_dirs.get("cni-path") or DEFAULT_CNI_BIN_DIR,
        "istio_conf_dir": istio_dirs.get("cni-net-dir", ""),
        "istio_bin_dir": istio_dirs.get("cni-bin-dir", ""),
        "ccnp_default_deny_ok": version is None or version[:2] >= ENABLE_DEFAULT_DENY_SINCE,
        "version_known": version is not None,
        "snapshot_canonical": snapshot.canonical_k8s,
    }


def render(snapshot: Snapshot, report: Report, *, target: str = "auto", scope: str = "changes") -> Rendered:
    """The change Istio ambient needs from this cluster's Cilium (and Istio), for `target`."""
    _check_choice("scope", scope, SCOPES)
    resolved = resolve_target(snapshot, target)
    facts = Facts(snapshot)
    plan = _plan(facts, _active(report), scope, resolved)
    context = _context(facts, report, plan, resolved, scope)
    context["nothing_to_change"] = plan.empty
    env = _environment()
    module: Any = env.get_template(f"{resolved}.j2").make_module(context)
    istio: Any = env.get_template("istio.j2").make_module(context)
    notes: Any = env.get_template("notes.j2").make_module(context)
    if plan.empty:
        return Rendered(resolved, scope, "", "", "", True, notes=str(notes.notes()))
    return Rendered(
        target=resolved,
        scope=scope,
        config=str(module.config()),
        apply=str(module.apply()),
        istio=str(istio.istio()),
        nothing_to_change=False,
        notes=str(notes.notes()),
    )


__all__ = ["SETTINGS", "TARGETS", "Rendered", "render", "resolve_target"]
