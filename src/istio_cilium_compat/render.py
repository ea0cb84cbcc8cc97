"""The change a cluster needs, written for the tool that manages its Cilium.

A finding says what is wrong and carries a `Remedy` (settings and objects to change);
`plan.py` decides what that means for this cluster, and this module (with its templates)
is the only place that turns the plan into commands, for a target: the `render` script,
the charm action's result and every finding's `fix` text come from the same plan. Every value that comes from the cluster (namespaces, release and object
names) is escaped for the language it lands in by the template filters registered
here, so a hostile name stays inside its quoting. jinja2 is imported only when
rendering: the charm's status path never imports it.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .plan import (
    CANONICAL_TARGETS,
    SCOPES,
    TARGETS,
    Plan,
    Write,
    covered,
    helm_writes,
    plan,
    requests_for,
)
from .remedy import Remedy
from .report import Finding, Report, Severity
from .rules.facts import DEFAULT_CNI_BIN_DIR, DEFAULT_CNI_CONF_DIR, Facts, format_version

if TYPE_CHECKING:
    import jinja2

    from .snapshot import Snapshot

HELM_REPO = "https://helm.cilium.io/"
CK_CHARTS = "/snap/k8s/current/k8s/manifests/charts"
"""Where the k8s snap ships the chart k8sd installs ck-network from, `cilium-<chart version>.tgz`
(canonical/k8s-snap src/k8s/pkg/snap/snap.go HelmClient: `$SNAP/k8s/manifests`;
src/k8s/pkg/k8sd/features/cilium/chart.go ChartCilium.ManifestPath `charts/cilium-<v>.tgz`)."""
CCNP_NAME = "allow-ambient-hostprobes"
PEER_AUTH_V1_SINCE = (1, 22)
"""PeerAuthentication is served as security.istio.io/v1 from Istio 1.22 (v1beta1 before)."""
RESULT_KEYS = (
    "target",
    "scope",
    "config",
    "apply",
    "istio",
    "nothing_to_change",
    "addressed",
    "not_addressed",
)

_CONFIG_TITLES = {
    "helm": "Helm values (the commands below set them with --set; keep them in your values file too)",
    "cilium-cli": "cilium-config keys",
    "configmap-patch": "JSON merge patch for ConfigMap cilium-config",
    "canonical-k8s": "Helm values of the ck-network release and cluster annotations",
    "canonical-k8s-charm": "Helm values of the ck-network release and cluster annotations",
}


# ----------------------------------------------------------------------------- escaping filters


def sh(value: object) -> str:
    """A single shell word on one line, whatever the value holds.

    shlex.quote keeps a newline inside its quotes, which would let cluster data start a new
    line of a printed fix; bash's $'...' spells every non-printable character as an escape.
    """
    word = str(value)
    if word.isprintable():
        return shlex.quote(word)
    escaped = "".join(
        {"\\": "\\\\", "'": "\\'"}.get(ch, ch) if ch.isprintable() else _escape(ch) for ch in word
    )
    return f"$'{escaped}'"


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def sh_block(block: str) -> str:
    """A script of our own lines as one shell word (for `juju exec`); cluster words in it are `sh`-quoted."""
    return shlex.quote(block)


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


def remote_script(block: str) -> str:
    """A block for `juju exec`: a script of several lines stops at its first failing command."""
    block = block.strip()
    return f"set -eu\n{block}" if "\n" in block else block


def commented(text: str) -> str:
    """Every line of `text` as a `#` comment (settings are shown, never run)."""
    return "".join(f"# {one_line(line)}".rstrip() + "\n" for line in text.splitlines())


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
    env.filters.update(
        sh=sh,
        yaml_str=yaml_str,
        json=to_json,
        one_line=one_line,
        remote_script=remote_script,
        sh_block=sh_block,
    )
    return env


# ----------------------------------------------------------------------------- targets


def _check_choice(kind: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {kind} {value!r}: choose one of {', '.join(allowed)}")


def resolve_target(snapshot: Snapshot, target: str) -> str:
    """`auto` becomes the tool that manages this cluster's Cilium; others are validated.

    `helm` on a k8sd-managed Cilium becomes `canonical-k8s`: a plain `helm upgrade` of
    ck-network would replace the chart k8sd installs from the snap.
    """
    _check_choice("target", target, ("auto", *TARGETS))
    managed_by = Facts(snapshot).managed_by
    if target == "helm" and managed_by == "canonical-k8s":
        return "canonical-k8s"
    if target != "auto":
        return target
    if managed_by == "canonical-k8s":
        return "canonical-k8s"
    if managed_by == "helm":
        return "helm"
    return "cilium-cli"


def _helm_groups(writes: Sequence[Write]) -> list[dict[str, Any]]:
    """Settings as nested Helm values, grouped by their top-level key, in request order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for w in writes:
        assert w.setting.helm is not None
        top, key = w.setting.helm.split(".", 1)
        groups.setdefault(top, []).append({"key": key, "value": w.setting.value, "write": w})
    return [{"top": top, "items": items} for top, items in groups.items()]


# ----------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Rendered:
    """The change for one target: configuration, the commands that apply it, Istio's side."""

    target: str
    scope: str
    config: str
    apply: str
    istio: str
    nothing_to_change: bool
    addressed: tuple[str, ...] = ()
    not_addressed: tuple[str, ...] = ()
    header: str = ""
    """Comment lines that open the script: how Cilium is managed, what changes, what is left out."""

    def text(self) -> str:
        """What `istio-cilium-compat render` prints: a bash script, settings shown as comments."""
        out = [_ended(self.header)]
        if self.nothing_to_change:
            return "".join(out)
        out.append("set -euo pipefail\n")
        if self.config.strip():
            title = _CONFIG_TITLES.get(self.target, "Configuration")
            out.append(f"\n# == {title} ==\n{commented(self.config)}")
        for title, body in (("Apply", self.apply), ("Istio", self.istio)):
            if body.strip():
                out.append(f"\n# == {title} ==\n{_ended(body)}")
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        """`render -o json`, and (keys spelled for Juju) the render-cilium-config action's results."""
        return {
            "target": self.target,
            "scope": self.scope,
            "config": self.config,
            "apply": self.apply,
            "istio": self.istio,
            "nothing_to_change": self.nothing_to_change,
            "addressed": list(self.addressed),
            "not_addressed": list(self.not_addressed),
        }


NO_CONFIG = "(no Cilium setting to change)"
NO_APPLY = "(no command to run)"
NO_ISTIO = "(no Istio change)"
NO_FINDINGS = "(none)"
_EMPTY = {"config": NO_CONFIG, "apply": NO_APPLY, "istio": NO_ISTIO}
"""Juju action results carry no empty value (whether Juju keeps one is unverified): a placeholder says so."""


def action_results(rendered: Rendered) -> dict[str, str]:
    """`to_dict()` as Juju action results: keys with hyphens, every value a non-empty string."""
    results: dict[str, str] = {}
    for key, value in rendered.to_dict().items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = ", ".join(value) or NO_FINDINGS
        else:
            text = str(value) or _EMPTY.get(key, NO_FINDINGS)
        results[key.replace("_", "-")] = text
    return results


def _ended(text: str) -> str:
    """Sections are joined line-wise: each must end with a newline."""
    return text if not text or text.endswith("\n") else text + "\n"


def _context(
    facts: Facts, report: Report, the_plan: Plan, target: str, scope: str, brief: bool = False
) -> dict[str, Any]:
    snapshot = facts.snapshot
    data = facts.config.data if facts.config is not None else {}
    canonical = target in CANONICAL_TARGETS
    helm_values, helm_skipped = helm_writes(target, the_plan, data)
    annotations = [w for w in the_plan.writes if canonical and w.setting.k8sd_annotation]
    agent = facts.cilium_agent
    istio_cni = facts.istio_cni
    cilium_dirs = agent.host_paths if agent else {}
    istio_dirs = istio_cni.host_paths if istio_cni else {}
    release, release_ns = facts.helm_release
    istio_version = facts.istio_version[0] if facts.istio_version else None
    active = [f for f in report.ordered if f.severity is not Severity.INFO]
    return {
        "target": target,
        "scope": scope,
        "plan": the_plan,
        "brief": brief,
        "remote": target == "canonical-k8s-charm",
        "kubectl": "sudo k8s kubectl" if canonical else "kubectl",
        "helm": "sudo k8s helm" if canonical else "helm",
        "heredoc": "<<\\EOF" if target == "canonical-k8s-charm" else "<<'EOF'",
        "findings": [f.id for f in active],
        "managed_by": facts.managed_by,
        "helm_annotated": facts.config is not None
        and "meta.helm.sh/release-name" in facts.config.annotations,
        "cilium_found": facts.config is not None,
        "cilium_ns": facts.cilium_namespace,
        "agent_ns": agent.namespace if agent else facts.cilium_namespace,
        "agent_name": agent.name if agent else "cilium",
        "release": release,
        "release_ns": release_ns,
        "version": facts.version_shown,
        "writes": the_plan.writes,
        "helm_values": helm_values,
        "helm_skipped": helm_skipped,
        "helm_groups": _helm_groups(helm_values),
        "helm_sets": [f"{w.setting.helm}={w.setting.value}" for w in helm_values],
        "annotations": annotations,
        "configmap_patch": {"data": {w.setting.key: w.setting.value for w in the_plan.writes}},
        "helm_repo": HELM_REPO,
        "helm_version_template": '{{if eq .Release.Chart.Metadata.Name "cilium"}}{{.Release.Chart.Metadata.Version}}{{end}}',
        "ck_version_template": '"{{.Release.Chart.Metadata.Version}}"',
        "ck_charts": CK_CHARTS,
        "root_ns": facts.root_namespace or "istio-system",
        "root_ns_known": facts.root_namespace is not None,
        "cilium_conf_dir": cilium_dirs.get("etc-cni-netd") or DEFAULT_CNI_CONF_DIR,
        "cilium_bin_dir": cilium_dirs.get("cni-path") or DEFAULT_CNI_BIN_DIR,
        "istio_conf_dir": istio_dirs.get("cni-net-dir", ""),
        "istio_bin_dir": istio_dirs.get("cni-bin-dir", ""),
        "peer_auth_api": "security.istio.io/v1"
        if istio_version is not None and istio_version[:2] >= PEER_AUTH_V1_SINCE
        else "security.istio.io/v1beta1",
        "istio_version": format_version(istio_version),
        "snapshot_canonical": snapshot.canonical_k8s,
    }


def _render(
    facts: Facts,
    report: Report,
    requests: Sequence[tuple[str, Remedy]],
    target: str,
    scope: str,
    brief: bool = False,
) -> tuple[Plan, dict[str, Any], str, str, str]:
    the_plan = plan(facts, requests, scope)
    context = _context(facts, report, the_plan, target, scope, brief)
    env = _environment()
    module: Any = env.get_template(f"{target}.j2").make_module(context)
    istio: Any = env.get_template("istio.j2").make_module(context)
    return the_plan, context, str(module.config()), str(module.apply()), str(istio.istio())


def render(snapshot: Snapshot, report: Report, *, target: str = "auto", scope: str = "changes") -> Rendered:
    """The change Istio ambient needs from this cluster's Cilium (and Istio), for `target`."""
    _check_choice("scope", scope, SCOPES)
    resolved = resolve_target(snapshot, target)
    facts = Facts(snapshot)
    the_plan, context, config, apply, istio = _render(
        facts, report, requests_for(report, scope), resolved, scope
    )
    active = [f for f in report.ordered if f.severity is not Severity.INFO]
    addressed = tuple(f.id for f in active if covered(f, resolved, the_plan))
    not_addressed = tuple(f for f in active if f.id not in addressed)
    context.update(
        asked=target,
        nothing_to_change=the_plan.runs_nothing(resolved),
        addressed=addressed,
        not_addressed=not_addressed,
        changes=_changes(context, the_plan),
    )
    header: Any = _environment().get_template("header.j2").make_module(context)
    nothing = the_plan.runs_nothing(resolved)
    if nothing:
        config = apply = istio = ""
    return Rendered(
        target=resolved,
        scope=scope,
        config=config,
        apply=apply,
        istio=istio,
        nothing_to_change=the_plan.runs_nothing(resolved),
        addressed=addressed,
        not_addressed=tuple(f.id for f in not_addressed),
        header=str(header.header()),
    )


def _changes(context: Mapping[str, Any], the_plan: Plan) -> list[str]:
    """One line per change the script makes, for its header."""
    target = context["target"]
    lines = []
    for w in the_plan.writes:
        s = w.setting
        how = ""
        if target in CANONICAL_TARGETS and s.k8sd_annotation:
            how = (
                f" (removes the cluster annotation {s.k8sd_annotation})"
                if not s.wanted
                else f" (annotation {s.k8sd_annotation})"
            )
        elif target in ("helm", *CANONICAL_TARGETS):
            if w in context["helm_skipped"]:
                continue
            how = f" (Helm value {s.helm})"
        lines.append(f"cilium-config {s.key}={s.value}{how}{_for(w.findings)}")
    for p in the_plan.node_patches:
        pairs = ", ".join(f"{k}={v}" for k, v in p.defaults.items())
        lines.append(f"CiliumNodeConfig {p.namespace}/{p.name}: {pairs}{_for(p.findings)}")
    if the_plan.restart:
        lines.append("restarts the Cilium agents (they read cilium-config only at start)")
    if the_plan.platform and target in CANONICAL_TARGETS:
        lines.append('Charmed Istio: platform="" (istio-cni-node then uses the kubelet\'s CNI directories)')
    probe = the_plan.probe
    if probe is not None and probe.mode == "clusterwide":
        lines.append(
            f"CiliumClusterwideNetworkPolicy {CCNP_NAME}: ingress from {', '.join(probe.cidrs)} to every pod"
        )
    elif probe is not None and probe.mode == "per-policy":
        for patch in probe.patches:
            ref = patch.ref
            where = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
            lines.append(f"{ref.kind} {where}: one more ingress rule, from {', '.join(probe.cidrs)}")
    if the_plan.strict_mtls:
        lines.append(f"PeerAuthentication {context['root_ns']}/default: STRICT mTLS mesh-wide")
    return lines


def _for(findings: Sequence[str]) -> str:
    return f" [{', '.join(findings)}]" if findings else ""


# ----------------------------------------------------------------------------- finding fix texts


def fix_text(facts: Facts, report: Report, finding: Finding, target: str) -> str:
    """A finding's fix: its prose, then its remedy as `target` applies it (no script header).

    With commands, the prose becomes comment lines: the fix runs as printed.
    """
    prose = [finding.fix] if finding.fix else []
    remedy = finding.remedy
    if remedy is not None:
        prose.extend(remedy.steps)
    if remedy is None or not remedy.applicable:
        return "\n".join(prose)
    _, _, _, apply, istio = _render(facts, report, [(finding.id, remedy)], target, "changes", brief=True)
    commands = "".join(_ended(part) for part in (apply, istio) if part.strip()).rstrip("\n")
    if not commands:
        return "\n".join(prose)
    return "".join(commented(line) for line in prose) + commands


def with_fixes(snapshot: Snapshot, report: Report, target: str = "auto") -> Report:
    """The report with each finding's `fix` written from its remedy for the cluster's target.

    Output paths (the CLI, the check action) call this; the charm's status does not, and
    never imports jinja2.
    """
    resolved = resolve_target(snapshot, target)
    facts = Facts(snapshot)
    findings = tuple(
        dataclasses.replace(f, fix=fix_text(facts, report, f, resolved)) for f in report.findings
    )
    return dataclasses.replace(report, findings=findings)


__all__ = [
    "NO_APPLY",
    "NO_CONFIG",
    "RESULT_KEYS",
    "TARGETS",
    "Rendered",
    "action_results",
    "render",
    "resolve_target",
    "with_fixes",
]
