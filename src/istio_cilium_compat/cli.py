"""The `istio-cilium-compat` command: the engine without Juju.

The exit code is the verdict, so the command can gate a CI pipeline: 0 compatible (warnings
allowed), 1 at least one error finding, 2 the command could not run on its input, 3 the
input was read but the verdict is unknown. A gate must never pass on "nothing read": an
empty directory, an empty file, unrelated YAML or an unreachable API exit 2, a dump without
`cilium-config` or with refused reads exits 3. Never a traceback: any input problem is one
line on stderr.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

if TYPE_CHECKING:
    from .collect import KubeApi, Reads
    from .report import Report
    from .snapshot import Snapshot

PROG = "istio-cilium-compat"
EXIT_OK, EXIT_INCOMPATIBLE, EXIT_INPUT, EXIT_UNKNOWN = 0, 1, 2, 3
RUNTIME_MAX_PODS = 100
"""Default of --runtime-max-pods (runtime.DEFAULT_MAX_PODS; not imported: only --runtime pays for it)."""
TARGETS = ("auto", "helm", "cilium-cli", "configmap-patch", "canonical-k8s", "canonical-k8s-charm")

CHECK_EXIT_CODES = """\
exit codes:
  0  compatible (warnings allowed)
  1  at least one error finding
  2  could not run on the input: a usage error; nothing Kubernetes-shaped or
     nothing the checks read in it (an empty directory or file, unrelated YAML,
     a Helm values file given to --manifests); the Kubernetes API unreachable.
     One line on stderr says what was missing; nothing on stdout in text mode.
  3  verdict unknown: the input was read but cannot decide (no cilium-config,
     reads refused or undecodable). The report is printed, stderr says why."""

RENDER_EXIT_CODES = """\
exit codes:
  0  rendered (also "# Nothing to change")
  2  could not run on the input (as for check)
  3  read, but nothing to base a change on (no cilium-config), or rendered
     from an incomplete read (some resources could not be read): stderr says
     which"""

MAIN_EPILOG = f"""\
{CHECK_EXIT_CODES}

Without a command, this help goes to stderr and the exit code is 2 (usage).
Run `{PROG} COMMAND --help` for a command's options."""


class InputError(Exception):
    """The cluster or the files could not be read; the message is the one line shown."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the exit-code table as written and shows every option's default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text
            or action.default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class _Options(Protocol):
    """An argument parser or group: where options are added."""

    def add_argument(self, *args: Any, **kwargs: Any) -> Any: ...


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input (saved manifests and/or Helm values, or else the live cluster)")
    group.add_argument(
        "--manifests",
        "-f",
        action="append",
        metavar="PATH",
        help="YAML/JSON file or directory (recursive *.yaml, *.yml, *.json) saved with "
        f"`kubectl get -o yaml` or written by `{PROG} dump`; repeatable "
        "(default: none, the live cluster is read)",
    )
    group.add_argument(
        "--cilium-values",
        action="append",
        metavar="FILE",
        help="values file of the Cilium Helm chart, as kept in GitOps repositories: checked as the "
        "cilium-config that chart version would render; repeatable, later files win as with "
        "`helm -f`; combine with --manifests for the Istio side (default: none)",
    )
    group.add_argument(
        "--cilium-version",
        metavar="X.Y",
        help="Cilium chart version whose defaults fill in what the values leave out "
        "(default: the version in image.tag, else the newest supported, said on stderr)",
    )
    _add_live_options(group)


def _add_live_options(group: _Options) -> None:
    group.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig of the live cluster (default: $KUBECONFIG, the first file of a list "
        "that exists, else ~/.kube/config)",
    )
    group.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current one)")
    group.add_argument(
        "--timeout", type=float, default=5.0, metavar="SECONDS", help="timeout of each API request"
    )
    group.add_argument(
        "--istio-namespace",
        metavar="NS",
        help="Istio root namespace (default: where the ztunnel DaemonSet runs)",
    )
    group.add_argument(
        "--cilium-namespace",
        metavar="NS",
        help="namespace of cilium-config (default: discovered; kube-system for --cilium-values)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Arguments of every subcommand."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check that Cilium lets Istio ambient work: that socket load balancing, CNI\n"
        "exclusivity, masquerading, host routing and network policies leave ztunnel the\n"
        "traffic it must see. Reads a live cluster, saved manifests or a Cilium Helm\n"
        "values file; prints each finding with its evidence and fix.",
        epilog=MAIN_EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    check = sub.add_parser(
        "check",
        help="run every check and print the findings (the exit code is the verdict)",
        description="Run every check on the input and print each finding with its evidence and\n"
        "fix, then the verdict. Examples:\n"
        f"  {PROG} check                     # the live cluster ($KUBECONFIG)\n"
        f"  {PROG} check --manifests dump/   # saved by `dump dump/`\n"
        f"  {PROG} check --cilium-values values.yaml --cilium-version 1.17",
        epilog=CHECK_EXIT_CODES,
        formatter_class=_Formatter,
    )
    _add_input_options(check)
    check.add_argument(
        "-o",
        "--output",
        choices=("text", "json", "yaml"),
        default="text",
        help="report format; text wraps to the terminal width",
    )
    runtime = check.add_argument_group("runtime evidence (live clusters only)")
    runtime.add_argument(
        "--runtime",
        action="store_true",
        help="also read ztunnel's connection counters through the API server's pod proxy "
        "(needs get on pods/proxy; default: off)",
    )
    runtime.add_argument(
        "--runtime-max-pods",
        type=_positive,
        default=RUNTIME_MAX_PODS,
        metavar="N",
        help=f"read at most N ztunnel pods (default {RUNTIME_MAX_PODS})",
    )
    render = sub.add_parser(
        "render",
        help="print the recommended Cilium/Istio configuration change as a bash script",
        description="Print the change the findings call for, for the tool that manages Cilium,\n"
        "as a bash script (settings inside heredocs or comments). Same inputs as check.",
        epilog=RENDER_EXIT_CODES,
        formatter_class=_Formatter,
    )
    _add_input_options(render)
    render.add_argument(
        "--target",
        choices=TARGETS,
        default="auto",
        metavar="TARGET",
        help=f"how Cilium is managed: {', '.join(TARGETS)}; auto detects it",
    )
    render.add_argument(
        "--scope",
        choices=("changes", "full"),
        default="changes",
        help="changes: only what the findings call for; full: every setting the checks read",
    )
    render.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: the bash script; json: its parts, as the charm's render-cilium-config action returns them",
    )
    dump = sub.add_parser(
        "dump",
        help="save what check reads from the live cluster, for check --manifests elsewhere",
        description="Save exactly what check reads from the live cluster (never Secrets), one\n"
        "`kind: List` YAML file per kind, so that `check --manifests DIR` on another\n"
        "machine gives the same report.",
        formatter_class=_Formatter,
    )
    dump.add_argument("directory", metavar="DIR", help="where to write the files (created if missing)")
    _add_live_options(dump.add_argument_group("live cluster"))
    sub.add_parser(
        "checks",
        help="list the checks: id, severity, title",
        description="List the catalogue of checks (ids are stable).",
        formatter_class=_Formatter,
    )
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


# -- input --------------------------------------------------------------------------


@dataclass
class Input:
    """What the options named, read: the snapshot, notes for stderr, and how to name it again."""

    snapshot: Snapshot
    live: bool
    notes: list[str] = field(default_factory=list)


def load_input(args: argparse.Namespace) -> Input:
    """Read the input the options name; raise InputError with a one-line reason."""
    values = getattr(args, "cilium_values", None)
    if values:
        return _load_offline(args, values)
    if args.manifests:
        return _load_offline(args, None)
    from .collect import CollectError, client_from_kubeconfig, read_snapshot

    try:
        api = client_from_kubeconfig(args.kubeconfig, args.context, timeout=args.timeout)
        snapshot = read_snapshot(
            api, istio_namespace=args.istio_namespace, cilium_namespace=args.cilium_namespace
        )
    except CollectError as exc:
        raise InputError(f"{exc}; pass --kubeconfig FILE, or --manifests DIR for saved YAML") from exc
    if getattr(args, "runtime", False) and _unreachable(snapshot) is None:
        snapshot = _with_runtime(api, snapshot, args)
    return Input(snapshot, live=True)


def _with_runtime(api: KubeApi, snapshot: Snapshot, args: argparse.Namespace) -> Snapshot:
    """The snapshot plus what ztunnel's counters say (`check --runtime`)."""
    import dataclasses

    from .runtime import probe

    summary = probe(
        api, namespace=snapshot.istio_root_namespace, timeout=args.timeout, max_pods=args.runtime_max_pods
    )
    return dataclasses.replace(snapshot, runtime=summary)


def load_snapshot(args: argparse.Namespace) -> Snapshot:
    """The snapshot alone (kept for callers that need no notes)."""
    return load_input(args).snapshot


def _load_offline(args: argparse.Namespace, values: list[str] | None) -> Input:
    from .assemble import build_snapshot
    from .helm_values import ValuesError, render
    from .manifests import ManifestError, load, load_values

    notes: list[str] = []
    rendered = None
    sources: list[str] = []
    try:
        if values:
            layers = load_values(values)
            try:
                rendered = render(layers, version=args.cilium_version, namespace=args.cilium_namespace)
            except ValuesError as exc:
                raise InputError(f"{', '.join(values)}: {exc}") from exc
            notes.extend(rendered.notes)
            sources.append(
                f"Cilium Helm values: {', '.join(values)} (chart {rendered.choice.chart.version} defaults)"
            )
        if not args.manifests:
            assert rendered is not None
            snapshot = build_snapshot(
                rendered.objects,
                source="; ".join(sources),
                istio_namespace=args.istio_namespace,
                cilium_namespace=args.cilium_namespace,
            )
            return Input(snapshot, live=False, notes=notes)
        sources.append("manifests: " + ", ".join(args.manifests))
        loaded = load(
            args.manifests,
            istio_namespace=args.istio_namespace,
            cilium_namespace=args.cilium_namespace,
            cilium_objects=rendered.objects if rendered else None,
            source="; ".join(sources),
        )
    except ManifestError as exc:
        raise InputError(str(exc)) from exc
    where = ", ".join(args.manifests)
    if loaded.relevant == 0 and not loaded.snapshot.problems:
        raise InputError(_nothing_read(where, loaded))
    for path in loaded.values_files:
        notes.append(
            f"skipped {path}: Cilium Helm chart values, not Kubernetes objects; pass it with --cilium-values {path}"
        )
    if loaded.replaced and values:
        notes.append(
            f"the Cilium objects in {where} (cilium-config, agents) were replaced by those rendered from "
            f"{', '.join(values)}"
        )
    return Input(loaded.snapshot, live=False, notes=notes)


def _nothing_read(where: str, loaded: Any) -> str:
    """Why the manifests give the checks nothing, and what to pass instead."""
    instead = f"pass YAML saved with `kubectl get -o yaml`, or what `{PROG} dump DIR` writes"
    if loaded.values_files and loaded.objects == 0:
        path = loaded.values_files[0]
        return (
            f"{path}: Cilium Helm chart values, not Kubernetes objects; pass it with --cilium-values {path}"
        )
    if loaded.files == 0:
        return f"{where}: no *.yaml, *.yml or *.json files; {instead}"
    if loaded.documents == 0:
        return f"{where}: empty, no YAML or JSON documents; {instead}"
    if loaded.objects == 0:
        return f"{where}: no Kubernetes objects (no document has apiVersion and kind); {instead}"
    return (
        f"{where}: {loaded.objects} Kubernetes object{'s' if loaded.objects != 1 else ''}, none that the "
        f"checks read (cilium-config, Cilium and Istio DaemonSets, policies, ambient namespaces); {instead}"
    )


def _unreachable(found: Snapshot | Reads) -> str | None:
    for problem in found.problems:
        if problem.kind == "unreachable":
            server = found.source.removeprefix("cluster: ")
            return (
                f"cannot reach the Kubernetes API at {server}: {problem.message}; "
                "check --kubeconfig/--context, or pass --manifests DIR"
            )
    return None


def _unknown_reason(snapshot: Snapshot, live: bool) -> str:
    """One line: why the verdict is unknown and what would decide it."""
    forbidden = list(dict.fromkeys(p.resource for p in snapshot.problems if p.kind == "forbidden"))
    failed = [p for p in snapshot.problems if p.kind != "forbidden"]
    if forbidden:
        more = f" (+{len(forbidden) - 3} more)" if len(forbidden) > 3 else ""
        return (
            f"verdict unknown: permission denied reading {', '.join(forbidden[:3])}{more}; "
            "grant get/list on them (README: What it reads), or use a kubeconfig that can"
        )
    if failed:
        return f"verdict unknown: could not read {failed[0].resource}: {failed[0].message}"
    if snapshot.cilium_config is None:
        if live:
            return (
                "verdict unknown: no cilium-config ConfigMap found in the cluster; "
                "pass --cilium-namespace NS if it lives elsewhere"
            )
        return (
            "verdict unknown: no cilium-config ConfigMap in the input; add it (kubectl get cm -A "
            "--field-selector metadata.name=cilium-config -o yaml), or pass the chart values with --cilium-values FILE"
        )
    return "verdict unknown: part of the cluster could not be read (see the findings)"


def render_hint(args: argparse.Namespace) -> str:
    """`render` with the inputs this command was given: the next command to run."""
    words = [PROG, "render"]
    for path in args.manifests or ():
        words += ["--manifests", path]
    for path in getattr(args, "cilium_values", None) or ():
        words += ["--cilium-values", path]
    for option in ("cilium_version", "kubeconfig", "context", "istio_namespace", "cilium_namespace"):
        value = getattr(args, option, None)
        if value:
            words += ["--" + option.replace("_", "-"), value]
    return "Full change: " + shlex.join(words)


# -- commands -----------------------------------------------------------------------


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    """`check`: print the report; the exit code is the verdict."""
    from .render import with_fixes
    from .report import Severity, Verdict, format_report
    from .rules import evaluate

    loaded = load_input(args)
    # Each finding's fix is its remedy, rendered for the tool that manages this Cilium.
    report = with_fixes(loaded.snapshot, evaluate(loaded.snapshot))
    reason = _unreachable(loaded.snapshot)
    if reason:
        if args.output != "text":  # machines still get the structured findings
            sys.stdout.write(format_report(report, args.output))
        raise InputError(reason)
    for note in loaded.notes:
        _note(note)
    hint = render_hint(args) if _has_fix(report, Severity) else None
    sys.stdout.write(format_report(report, args.output, hint=hint))
    if report.verdict is Verdict.INCOMPATIBLE:
        return EXIT_INCOMPATIBLE
    if report.verdict is Verdict.UNKNOWN:
        print(_unknown_reason(loaded.snapshot, loaded.live), file=sys.stderr)
        return EXIT_UNKNOWN
    return EXIT_OK


def _has_fix(report: Report, severity: Any) -> bool:
    return any(f.fix and f.severity is not severity.INFO for f in report.findings)


def cmd_render(args: argparse.Namespace) -> int:
    """`render`: print the change for the chosen target."""
    from .render import render
    from .report import Verdict
    from .rules import evaluate

    loaded = load_input(args)
    reason = _unreachable(loaded.snapshot)
    if reason:
        raise InputError(reason)
    for note in loaded.notes:
        _note(note)
    report = evaluate(loaded.snapshot)
    if loaded.snapshot.cilium_config is None:
        # Every setting is unknown: "nothing to change" would be a lie.
        print(f"error: nothing to render: {_unknown_reason(loaded.snapshot, loaded.live)}", file=sys.stderr)
        return EXIT_UNKNOWN
    rendered = render(loaded.snapshot, report, target=args.target, scope=args.scope)
    if args.output == "json":
        import json

        sys.stdout.write(json.dumps(rendered.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(rendered.text())
    if report.verdict is Verdict.UNKNOWN:
        print(
            f"warning: rendered from an incomplete read: {_unknown_reason(loaded.snapshot, loaded.live)}",
            file=sys.stderr,
        )
        return EXIT_UNKNOWN
    return EXIT_OK


def cmd_dump(args: argparse.Namespace) -> int:
    """`dump`: the raw objects `check` reads (no Secrets ever), one `kind: List` file per kind."""
    from pathlib import Path

    import yaml

    from .collect import CollectError, client_from_kubeconfig, collect

    try:
        api = client_from_kubeconfig(args.kubeconfig, args.context, timeout=args.timeout)
        reads = collect(api, cilium_namespace=args.cilium_namespace)
    except CollectError as exc:
        raise InputError(f"{exc}; pass --kubeconfig FILE") from exc
    reason = _unreachable(reads)
    if reason:
        raise InputError(reason)
    by_kind: dict[str, list[dict[str, object]]] = {}
    for obj in reads.objects:
        by_kind.setdefault(str(obj.get("kind")), []).append(obj)
    directory = Path(args.directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for kind, items in sorted(by_kind.items()):
            document = {
                "apiVersion": "v1",
                "kind": "List",
                "metadata": {"resourceVersion": ""},
                "items": items,
            }
            (directory / f"{kind.lower()}.yaml").write_text(
                yaml.dump(document, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False),
                encoding="utf-8",
            )
    except OSError as exc:
        raise InputError(f"cannot write {directory}: {exc.strerror or exc}") from exc
    for problem in reads.problems:
        print(f"warning: could not read {problem.resource}: {problem.message}", file=sys.stderr)
    print(f"wrote {len(reads.objects)} objects to {directory} ({len(by_kind)} files)")
    return EXIT_OK


def cmd_checks(_: argparse.Namespace) -> int:
    """`checks`: the catalogue from the rule registry, like `istioctl analyze --list-analyzers`."""
    from .rules import RETIRED, registered

    for check in registered():
        print(f"{check.id}  {check.severity.value:7}  {check.title}")
        for source in check.sources:
            print(f"        source: {source}")
    for rule_id, why in sorted(RETIRED.items()):
        print(f"{rule_id}  retired  {why}")
    return EXIT_OK


COMMANDS = {"check": cmd_check, "render": cmd_render, "dump": cmd_dump, "checks": cmd_checks}


# -- argument handling --------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_INPUT)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse like argparse, but report mistakes against the subcommand they were made in."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    subparsers = _subparsers(parser)
    if not argv:
        parser.print_help(sys.stderr)
        raise SystemExit(EXIT_INPUT)
    if not argv[0].startswith("-") and argv[0] not in subparsers:
        _usage_error(parser, f"unknown command {argv[0]!r}{_did_you_mean(argv[0], list(subparsers))}")
    args, extras = parser.parse_known_args(argv)
    if args.command is None:
        if extras:
            _usage_error(parser, f"unrecognized arguments: {' '.join(extras)}")
        parser.print_help(sys.stderr)
        raise SystemExit(EXIT_INPUT)
    sub = subparsers[args.command]
    if extras:
        options = [o for action in sub._actions for o in action.option_strings]
        unknown = extras[0]
        hint = _did_you_mean(unknown.split("=", 1)[0], options) if unknown.startswith("-") else ""
        _usage_error(sub, f"unrecognized arguments: {' '.join(extras)}{hint}")
    if args.command == "check" and args.runtime and (args.manifests or args.cilium_values):
        _usage_error(
            sub,
            "--runtime needs a live cluster (it reads ztunnel's metrics through the API server): "
            "drop --manifests/--cilium-values",
        )
    if args.command in ("check", "render"):
        if args.cilium_version and not args.cilium_values:
            _usage_error(sub, "--cilium-version needs --cilium-values FILE (it picks that chart's defaults)")
        if args.cilium_values and (args.kubeconfig or args.context):
            _usage_error(
                sub,
                "--cilium-values checks files, not the live cluster: pass the Istio side with --manifests "
                "instead of --kubeconfig/--context",
            )
        if args.cilium_version:
            from .helm_values import parse_version

            try:
                parse_version(args.cilium_version)
            except ValueError as exc:
                _usage_error(sub, f"--cilium-version: {exc}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse(argv)
    try:
        return COMMANDS[args.command](args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # never a traceback for a user; ISTIO_CILIUM_COMPAT_DEBUG=1 shows it
        if os.environ.get("ISTIO_CILIUM_COMPAT_DEBUG"):
            raise
        print(f"error: internal error ({type(exc).__name__}: {exc}); please report it", file=sys.stderr)
        return EXIT_INPUT


def run() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":
    run()
