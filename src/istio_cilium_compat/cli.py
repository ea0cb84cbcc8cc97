"""The `istio-cilium-compat` command: the engine without Juju.

Exit codes follow istioctl's habit of a verdict in the code: 0 compatible (or
only warnings), 1 at least one error finding, 2 the input could not be read.
Never a traceback: any input problem is one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .collect import Reads
    from .snapshot import Snapshot

EXIT_OK, EXIT_INCOMPATIBLE, EXIT_INPUT = 0, 1, 2
TARGETS = ("auto", "helm", "cilium-cli", "configmap-patch", "canonical-k8s", "canonical-k8s-charm")


class InputError(Exception):
    """The cluster or the manifests could not be read."""


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input (saved manifests, or else the live cluster)")
    group.add_argument(
        "--manifests",
        "-f",
        action="append",
        metavar="PATH",
        help="YAML/JSON file or directory saved with `kubectl get -o yaml`; repeatable",
    )
    _add_live_options(group)


class _Options(Protocol):
    """An argument parser or group: where options are added."""

    def add_argument(self, *args: Any, **kwargs: Any) -> Any: ...


def _add_live_options(group: _Options) -> None:
    group.add_argument(
        "--kubeconfig", metavar="FILE", help="kubeconfig (default: $KUBECONFIG, ~/.kube/config)"
    )
    group.add_argument("--context", metavar="NAME", help="kubeconfig context")
    group.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="per API request")
    group.add_argument(
        "--istio-namespace", metavar="NS", help="Istio root namespace (default: where ztunnel runs)"
    )
    group.add_argument(
        "--cilium-namespace", metavar="NS", help="namespace of cilium-config (default: discover)"
    )


def build_parser() -> argparse.ArgumentParser:
    """Arguments of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="istio-cilium-compat",
        description="Check that Cilium lets Istio ambient encrypt and authorize traffic.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="run every check and print the findings")
    _add_input_options(check)
    check.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text")
    render = sub.add_parser("render", help="print the recommended Cilium/Istio configuration change")
    _add_input_options(render)
    render.add_argument("--target", choices=TARGETS, default="auto")
    render.add_argument("--scope", choices=("changes", "full"), default="changes")
    dump = sub.add_parser(
        "dump", help="save what `check` reads from the live cluster, for `check --manifests` elsewhere"
    )
    dump.add_argument("directory", metavar="DIR", help="where to write one YAML file per kind")
    _add_live_options(dump.add_argument_group("live cluster"))
    sub.add_parser("checks", help="list the checks and their ids")
    return parser


def load_snapshot(args: argparse.Namespace) -> Snapshot:
    """Read the input the options name; raise InputError with a one-line reason."""
    if args.manifests:
        from .manifests import ManifestError, load_snapshot

        try:
            return load_snapshot(
                args.manifests, istio_namespace=args.istio_namespace, cilium_namespace=args.cilium_namespace
            )
        except ManifestError as exc:
            raise InputError(str(exc)) from exc
    from .collect import CollectError, client_from_kubeconfig, read_snapshot

    try:
        api = client_from_kubeconfig(args.kubeconfig, args.context, timeout=args.timeout)
        return read_snapshot(
            api, istio_namespace=args.istio_namespace, cilium_namespace=args.cilium_namespace
        )
    except CollectError as exc:
        raise InputError(str(exc)) from exc


def _unreachable(found: Snapshot | Reads) -> str | None:
    for problem in found.problems:
        if problem.kind == "unreachable":
            return f"cannot reach the Kubernetes API: {problem.message}"
    return None


def cmd_check(args: argparse.Namespace) -> int:
    """`check`: print the report; the exit code is the verdict."""
    from .report import Severity, format_report
    from .rules import evaluate

    snapshot = load_snapshot(args)
    report = evaluate(snapshot)
    sys.stdout.write(format_report(report, args.output))
    reason = _unreachable(snapshot)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_INCOMPATIBLE if any(f.severity is Severity.ERROR for f in report.findings) else EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    """`render`: print the change for the chosen target."""
    from .render import render
    from .rules import evaluate

    snapshot = load_snapshot(args)
    reason = _unreachable(snapshot)
    if reason:
        raise InputError(reason)
    report = evaluate(snapshot)
    if snapshot.cilium_config is None:
        # Every setting is unknown: "nothing to change" would be a lie.
        raise InputError(f"no cilium-config was read, nothing to render ({', '.join(report.ids)})")
    rendered = render(snapshot, report, target=args.target, scope=args.scope)
    sys.stdout.write(rendered.text())
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
        raise InputError(str(exc)) from exc
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
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
