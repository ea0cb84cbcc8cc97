#!/usr/bin/env python3
# Copyright 2026 istio-cilium-compat-k8s contributors
# See LICENSE file for licensing details.

"""Juju glue for the Istio ambient / Cilium compatibility checker.

ops emits collect-status at the end of every dispatch, hooks and actions alike: that
is where the one check of a dispatch runs (collect -> evaluate) and becomes the unit
status, so no lifecycle or relation event needs a handler of its own. The actions
reuse the same check. The charm never parses Cilium keys: the engine in
`istio_cilium_compat` decides and knows nothing of Juju; this module maps its report
to a status line, action results and hints naming this application. Nothing on the
check path may raise out of a hook.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ops

from istio_cilium_compat.report import Finding, Report, Severity, Verdict, to_text
from istio_cilium_compat.rules import evaluate

if TYPE_CHECKING:
    from istio_cilium_compat.snapshot import Snapshot

logger = logging.getLogger(__name__)
# ops forwards every log record to `juju-log`, one subprocess each: the HTTP client's
# per-request DEBUG/INFO lines (about ten per request) would cost seconds per hook.
for _name in ("httpx2", "httpcore2", "httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

RELATION = "istio-metadata"
API_TIMEOUT = 5.0
"""Seconds per Kubernetes API request; the collector stops at the first unreachable one."""
STATUS_MAX = 120
"""`juju status` shows a message on one line; longer ones wrap or are cut by terminals."""
ACTION = "check-compatibility"
RESULT_TEXT_MAX = 60_000
"""Juju passes action results on a command line (~100 KB in all)."""

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_namespace_name(value: str) -> bool:
    """A Kubernetes namespace name: a DNS-1123 label (lower case, digits, '-', at most 63)."""
    return len(value) <= 63 and _DNS1123_LABEL.match(value) is not None


def one_line(text: str, limit: int = STATUS_MAX, suffix: str = "") -> str:
    """`text` on one line, cut with '…' so that `text + suffix` fits in `limit` characters."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    room = max(limit - len(suffix), 1)
    if len(flat) > room:
        flat = flat[: room - 1].rstrip() + "…"
    return flat + suffix


# ----------------------------------------------------------------------------- status lines


@dataclass(frozen=True)
class Hints:
    """The commands a status line points at, for this application and unit."""

    app: str
    unit: str

    @property
    def trust(self) -> str:
        """Grants the cluster-wide read access the checks need."""
        return f"juju trust {self.app} --scope=cluster"

    @property
    def run(self) -> str:
        """Re-checks now and returns every finding."""
        return f"juju run {self.unit} {ACTION}"


def unreachable_message(reason: str) -> str:
    """The waiting status when the API cannot be reached (or no client could be built)."""
    return one_line(f"Kubernetes API unreachable: {reason}", suffix="; retrying at next event")


def _resources(resources: list[str], room: int) -> str:
    """As many resource names as fit in `room`, then how many more."""
    shown: list[str] = []
    for index, name in enumerate(resources):
        rest = len(resources) - index - 1
        more = f" (+{rest} more)" if rest else ""
        if len(", ".join([*shown, name])) + len(more) > room:
            break
        shown.append(name)
    hidden = len(resources) - len(shown)
    if not shown:
        return f"{len(resources)} resource type" + ("s" if len(resources) > 1 else "")
    return ", ".join(shown) + (f" (+{hidden} more)" if hidden else "")


def forbidden_message(resources: list[str], hints: Hints) -> str:
    """The blocked status naming what could not be read, and the `juju trust` remedy."""
    suffix = f"; run: {hints.trust}"
    what = _resources(resources, STATUS_MAX - len(suffix) - len("cannot read "))
    return one_line(f"cannot read {what}", suffix=suffix)


def status_message(report: Report, hints: Hints, forbidden: list[str] | None = None) -> str:
    """One line for `juju status`: the worst finding, how many more, and what to run.

    The hint is the full `juju run <unit> check-compatibility` when it fits beside the
    finding's summary, else the action's name: the summary (with its fix) is worth more
    than the command's prefix. When some reads were refused, the hint is the `juju trust`
    remedy and names what could not be read, after the finding those reads did not hide.
    """
    problems: list[Finding] = [f for f in report.ordered if f.severity is not Severity.INFO]
    if not problems:
        version = report.cilium.get("version")
        subject = f"Cilium {version}" if version else "Cilium"
        if any(f.id == "CIC008" for f in report.findings):  # no ztunnel: say it was a pre-flight
            return one_line(
                f"{subject}: ready for Istio ambient, ztunnel not found ({len(report.checks)} checks)"
            )
        return one_line(f"{subject}: compatible with Istio ambient ({len(report.checks)} checks)")
    worst = problems[0]
    head = one_line(f"{worst.id}: {worst.summary}", limit=10_000)
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    if forbidden:
        tail = f"; cannot read {{what}}: {hints.trust}"
        room = STATUS_MAX - len(head) - len(more) - len(tail.format(what=""))
        suffix = more + tail.format(what=_resources(forbidden, max(room, 20)))
        return one_line(head, suffix=suffix)
    full = f"{more}; {hints.run}"
    if len(head) + len(full) <= STATUS_MAX:
        return head + full
    return one_line(head, suffix=f"{more}; run {ACTION}")


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True, kw_only=True)
class CharmConfig:
    """The options of config.yaml, typed and validated (ops' `load_config` fills it).

    A bad value raises ValueError, whose message becomes the blocked status.
    """

    cilium_namespace: str = ""
    istio_root_namespace: str = ""
    warnings_block: bool = False

    def __post_init__(self) -> None:
        for field in ("cilium_namespace", "istio_root_namespace"):
            value = str(getattr(self, field)).strip()
            object.__setattr__(self, field, value)
            if value and not is_namespace_name(value):
                shown = value if len(value) <= 40 else value[:39] + "…"
                option = field.replace("_", "-")
                raise ValueError(f"{option}={shown!r} is not a namespace name (DNS-1123 label)")
        if not isinstance(self.warnings_block, bool):
            raise ValueError(f"warnings-block={self.warnings_block!r} is not a boolean")


@dataclass(frozen=True)
class Outcome:
    """One check: the unit status, what was read, and why an action must fail (if it must)."""

    status: ops.StatusBase
    snapshot: Snapshot | None = None
    report: Report | None = None
    failure: str | None = None
    """Set when the cluster could not be read (or the check could not run): actions fail with it."""


class IstioCiliumCompatCharm(ops.CharmBase):
    """Checks that Cilium lets Istio ambient encrypt and authorize traffic."""

    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._outcome: Outcome | None = None
        self._stored.set_default(last_check="", relation_raw="", relation_root_namespace="")
        self._client: Any = None
        self.hints = Hints(app=self.app.name, unit=self.unit.name)
        # Only what needs its own handler: collect-status ends every dispatch (install,
        # config-changed, relation events, update-status, actions...) and sets the status.
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)
        framework.observe(self.on.check_compatibility_action, self._on_check_compatibility_action)
        framework.observe(self.on.render_cilium_config_action, self._on_render_cilium_config_action)

    # ------------------------------------------------------------------ events

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(self._check().status)

    def _on_check_compatibility_action(self, event: ops.ActionEvent) -> None:
        try:
            outcome = self._check()
            if outcome.failure or outcome.report is None:
                event.fail(outcome.failure or "the check did not run; see juju debug-log")
                return
            report = outcome.report
            if event.params.get("runtime") is True and outcome.snapshot is not None:
                report = self._with_runtime(outcome.snapshot)
            if outcome.snapshot is not None:
                from istio_cilium_compat.render import with_fixes  # jinja2: only output paths pay for it

                report = with_fixes(outcome.snapshot, report)
            event.set_results(
                check_results(
                    report,
                    summary=outcome.status.message,
                    hint=f"Full change: juju run {self.unit.name} render-cilium-config",
                )
            )
        except Exception as exc:
            logger.exception("check-compatibility failed")
            event.fail(internal_error(exc))

    def _on_render_cilium_config_action(self, event: ops.ActionEvent) -> None:
        try:
            target = str(event.params.get("target", "auto"))
            scope = str(event.params.get("scope", "changes"))
            outcome = self._check()
            if outcome.failure or outcome.report is None or outcome.snapshot is None:
                event.fail(outcome.failure or "the check did not run; see juju debug-log")
                return
            if outcome.snapshot.cilium_config is None:
                # Without cilium-config every setting is unknown: "nothing to change" would be a lie.
                event.fail(f"no cilium-config was read, nothing to render: {outcome.status.message}")
                return
            from istio_cilium_compat.render import action_results, render  # jinja2: only this action

            try:
                rendered = render(outcome.snapshot, outcome.report, target=target, scope=scope)
            except ValueError as exc:
                event.fail(f"invalid parameter: {exc}")
                return
            event.set_results(action_results(rendered))  # what `render -o json` prints, never an empty value
        except Exception as exc:
            logger.exception("render-cilium-config failed")
            event.fail(internal_error(exc))

    # ------------------------------------------------------------------ the check

    def _check(self) -> Outcome:
        """The one check of this dispatch: computed on first use, then reused."""
        if self._outcome is None:
            try:
                self._outcome = self._run_check()
            except Exception as exc:
                logger.exception("compatibility check failed")
                message = internal_error(exc)
                self._outcome = Outcome(status=ops.BlockedStatus(message), failure=message)
        return self._outcome

    def _config(self) -> CharmConfig:
        """Typed options; raises ValueError for a value the charm cannot use.

        Not `load_config(errors="blocked")`: that ends the dispatch on the spot, so an
        action would finish with neither results nor a failure message.
        """
        return self.load_config(CharmConfig, errors="raise")

    def _relation_root_namespace(self) -> str | None:
        """`root_namespace` from istio-k8s, or None (no relation, no data yet, or bad data).

        The published library validates the databag with pydantic, whose import costs about
        0.1 s: more than the rest of a hook's own work. The databag changes rarely, so the
        library parses it only when its raw content differs from what was last parsed.
        """
        relations = self.model.relations.get(RELATION) or []
        if not relations:
            return None
        try:
            raw = json.dumps(
                [dict(r.data.get(r.app) or {}) if r.app else {} for r in relations], sort_keys=True
            )
        except Exception:  # unreadable databag: let the library say why, uncached
            raw = None
        if raw is not None and raw == self._stored.relation_raw:
            return self._stored.relation_root_namespace or None
        namespace = self._parse_relation_data()
        if raw is not None:
            self._stored.relation_raw = raw
            self._stored.relation_root_namespace = namespace or ""
        return namespace

    def _parse_relation_data(self) -> str | None:
        try:
            from charmlibs.interfaces.istio_metadata import IstioMetadataRequirer

            data = IstioMetadataRequirer(self.model.relations, RELATION).get_data()
            if data is None:
                logger.info("no istio-metadata data yet; discovering the Istio root namespace")
                return None
            namespace = data.root_namespace
        except Exception as exc:  # ValueError (two apps), pydantic's ValidationError, model errors
            logger.warning(
                "unusable istio-metadata relation data (%s); discovering the Istio root namespace",
                one_line(f"{type(exc).__name__}: {exc}", limit=300),
            )
            return None
        if not isinstance(namespace, str) or not is_namespace_name(namespace):
            logger.warning(
                "istio-metadata root_namespace %r is not a namespace name; discovering it instead",
                namespace,
            )
            return None
        return namespace

    def _kube_client(self) -> Any:
        """One lightkube client per hook (raises CollectError when none can be built)."""
        if self._client is None:
            from istio_cilium_compat import collect as kube

            self._client = kube.in_cluster_client(timeout=API_TIMEOUT)
        return self._client

    def _with_runtime(self, snapshot: Snapshot) -> Report:
        """`runtime=true`: the report again, with ztunnel's counters; only this action imports the probe."""
        import dataclasses

        from istio_cilium_compat.runtime import probe

        summary = probe(self._kube_client(), namespace=snapshot.istio_root_namespace, timeout=API_TIMEOUT)
        return evaluate(dataclasses.replace(snapshot, runtime=summary))

    def _run_check(self) -> Outcome:
        try:
            config = self._config()
        except ValueError as exc:
            message = one_line(f"invalid config: {exc}")
            return Outcome(status=ops.BlockedStatus(message), failure=message)
        if config.istio_root_namespace:
            istio_namespace, source = config.istio_root_namespace, "option"
        else:
            istio_namespace, source = self._relation_root_namespace(), "relation"
        from istio_cilium_compat import collect as kube

        try:
            client = self._kube_client()
        except kube.CollectError as exc:
            logger.warning("no Kubernetes client: %s", exc)
            return Outcome(
                status=ops.WaitingStatus(unreachable_message(str(exc))),
                failure=f"cannot reach the Kubernetes API: {one_line(str(exc), limit=500)}",
            )
        kwargs: dict[str, Any] = {"cilium_namespace": config.cilium_namespace or None}
        if istio_namespace:
            kwargs.update(istio_namespace=istio_namespace, istio_namespace_source=source)
        snapshot = kube.read_snapshot(client, **kwargs)
        report = evaluate(snapshot)
        self._log_if_changed(snapshot, report)
        return judge(snapshot, report, warnings_block=config.warnings_block, hints=self.hints)

    def _log_if_changed(self, snapshot: Snapshot, report: Report) -> None:
        """Log the outcome only when it changes: every log line is a `juju-log` process per hook."""
        summary = (
            f"verdict {report.verdict.value}, findings {', '.join(report.ids) or 'none'}, "
            f"Istio root namespace {snapshot.istio_root_namespace} "
            f"({snapshot.istio_root_namespace_source or 'not found'})"
        )
        if self._stored.last_check != summary:
            logger.info("check: %s", summary)
            self._stored.last_check = summary


def _forbidden(snapshot: Snapshot) -> list[str]:
    """Resources whose reads were refused (403), in reading order, each once."""
    return list(dict.fromkeys(p.resource for p in snapshot.problems if p.kind == "forbidden"))


def judge(snapshot: Snapshot, report: Report, *, warnings_block: bool, hints: Hints) -> Outcome:
    """Map a report to the unit status (see the statuses table in README.md).

    An error finding wins over refused reads: what the readable resources prove is shown,
    and the message says what could not be read and how to grant it.
    """
    unreachable = [p for p in snapshot.problems if p.kind == "unreachable"]
    if unreachable:
        reason = unreachable[0].message
        return Outcome(
            status=ops.WaitingStatus(unreachable_message(reason)),
            snapshot=snapshot,
            report=report,
            failure=f"cannot reach the Kubernetes API: {one_line(reason, limit=500)}",
        )
    forbidden = _forbidden(snapshot)
    if report.of(Severity.ERROR):
        line = status_message(report, hints, forbidden)
        return Outcome(status=ops.BlockedStatus(line), snapshot=snapshot, report=report)
    if forbidden:
        message = forbidden_message(forbidden, hints)
        # Nothing of Cilium could be read: results would say nothing, so the actions fail.
        blind = report.verdict is Verdict.UNKNOWN and snapshot.cilium_config is None
        return Outcome(
            status=ops.BlockedStatus(message),
            snapshot=snapshot,
            report=report,
            failure=message if blind else None,
        )
    line = status_message(report, hints)
    if report.verdict is Verdict.UNKNOWN or (report.of(Severity.WARNING) and warnings_block):
        status: ops.StatusBase = ops.BlockedStatus(line)
    else:
        status = ops.ActiveStatus(line)
    return Outcome(status=status, snapshot=snapshot, report=report)


def check_results(report: Report, *, summary: str, hint: str | None = None) -> dict[str, Any]:
    """`check-compatibility` results; every key is documented in actions.yaml, none empty.

    `summary` is the unit's status message, so the action and `juju status` agree.
    """
    results: dict[str, Any] = {
        "verdict": report.verdict.value,
        "summary": summary,
        "report": _cap(to_text(report, hint=hint)),
    }
    findings = {
        finding.id.lower(): {
            "severity": finding.severity.value,
            "summary": finding.summary or "(none)",
            "evidence": "; ".join(str(e) for e in finding.evidence) or "(none)",
            "fix": finding.fix or "(none)",
        }
        for finding in report.ordered
    }
    if findings:
        results["findings"] = findings
    if report.runtime is not None:
        results["runtime"] = json.dumps(report.runtime, separators=(",", ":"))
    return results


def internal_error(exc: BaseException) -> str:
    """Status/failure text for a bug: one line, the details are in the debug log."""
    return one_line(f"internal error: {type(exc).__name__}: {exc}", suffix="; see juju debug-log")


def _cap(text: str) -> str:
    if len(text) <= RESULT_TEXT_MAX:
        return text
    return text[:RESULT_TEXT_MAX] + "\n… (truncated; run `istio-cilium-compat check` for the full report)\n"


def preload_collector() -> None:
    """Import the cluster reader (lightkube, httpx2: ~40 ms of CPU) while the hook waits.

    Every dispatch reads the cluster, but only after ops' `juju-log` calls and the
    `config-get` and `relation-*` calls of the check, during which the process only waits
    for hook tools; run in a thread from the start, the import fills those waits. A failure
    is left to the check's own import, which reports it. Nothing here decodes: lightkube's
    decoders are built on first use in the main thread (see collect.py on threads).
    """
    import contextlib

    with contextlib.suppress(Exception):  # raised again where the check imports it
        import istio_cilium_compat.collect  # noqa: F401


if __name__ == "__main__":  # pragma: nocover
    import threading

    threading.Thread(target=preload_collector, name="preload-collector").start()
    ops.main(IstioCiliumCompatCharm)
