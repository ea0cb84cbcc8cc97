"""`tox -e mutation`: mutation testing of the rule engine (src/istio_cilium_compat/rules) with cosmic-ray.

Why cosmic-ray, not mutmut 3: mutmut 3 never mutates a decorated function (its
file_mutation.py skips them so trampolines stay safe), and every rule's `evaluate` is
registered with `@rule(...)`, every derived fact is a `@cached_property`: the checks
themselves would go unmutated. cosmic-ray mutates the source file on disk and runs a
test command per mutant, so it sees everything.

It never touches the checkout: the project is copied to a work directory (one copy per
job, so jobs run in parallel), each job imports its own copy, and mutants whose every
change lies inside a type annotation are skipped (with `from __future__ import
annotations` those are never evaluated, so they could only survive). The score is
killed / (killed + survived); a timeout counts as killed, as cosmic-ray counts it.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = "src/istio_cilium_compat/rules"
FAST_TESTS = (
    "tests/unit/test_rules_boundaries.py",
    "tests/unit/test_rules.py",
    "tests/unit/test_policy_rules.py",
    "tests/unit/test_waypoints.py",
    "tests/unit/test_runtime_rules.py",
)
"""What each mutant is tested with: the pure exact-outcome rule tests (no I/O), about two seconds in all."""
SKIPPED_PLUGINS = ("cacheprovider", "hypothesispytest", "randomly")
"""Hypothesis' pytest plugin costs 0.7 s per run, more than the fast tests take; they do not use it."""
COPIED = ("src", "tests", "lib", "pyproject.toml")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", "golden")


def copy_tree(dest: Path) -> Path:
    """Copy what the fast tests need; the copy is what gets mutated."""
    dest.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=IGNORED)
        elif source.exists():
            shutil.copy2(source, dest / name)
    return dest


def tree_env(tree: Path) -> dict[str, str]:
    """The tests of a copy import that copy, not the checkout tox points PYTHONPATH at."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(tree / p) for p in ("src", ".", "lib"))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def pytest_command(tests: Iterable[str]) -> str:
    """One pytest run, stopping at the first failure (a kill needs only one); no plugin it does not need."""
    return " ".join(
        [sys.executable, "-m", "pytest", "-x", "-q", *(f"-p no:{p}" for p in SKIPPED_PLUGINS), *tests]
    )


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) of every annotation, as (line, column-in-characters) like parso's positions."""
    lines = source.splitlines()

    def char_col(line: int, byte_col: int) -> int:
        return len(lines[line - 1].encode()[:byte_col].decode(errors="replace"))

    spans = []
    for node in ast.walk(ast.parse(source)):
        found: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            found.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
        for ann in found:
            if ann is None or ann.end_lineno is None or ann.end_col_offset is None:
                continue
            spans.append(
                (
                    (ann.lineno, char_col(ann.lineno, ann.col_offset)),
                    (ann.end_lineno, char_col(ann.end_lineno, ann.end_col_offset)),
                )
            )
    return spans


def inside(
    start: tuple[int, int], end: tuple[int, int], spans: list[tuple[tuple[int, int], tuple[int, int]]]
) -> bool:
    """Does [start, end) lie within one of `spans`?"""
    return any(low <= tuple(start) and tuple(end) <= high for low, high in spans)


IDENTITY_SWAPS = frozenset(
    f"core/ReplaceComparisonOperator_{swap}" for swap in ("Eq_Is", "Is_Eq", "NotEq_IsNot", "IsNot_NotEq")
)
"""`==` <-> `is` (and `!=` <-> `is not`): equivalent wherever CPython interns the operands
(string literals, small ints, None, booleans), i.e. in every test; they could only survive."""


def skip_equivalent_mutants(session: Path, tree: Path) -> Counter[str]:
    """Mark as skipped the mutants that cannot change behaviour; count them by reason."""
    from cosmic_ray.work_db import WorkDB, use_db  # pyright: ignore[reportMissingImports]
    from cosmic_ray.work_item import WorkerOutcome, WorkResult  # pyright: ignore[reportMissingImports]

    spans: dict[str, Any] = {}

    def why(mutation: Any) -> str:
        if mutation.operator_name in IDENTITY_SWAPS:
            return "identity/equality swap"
        module = str(mutation.module_path)
        if module not in spans:
            spans[module] = annotation_spans((tree / module).read_text())
        return "annotation" if inside(mutation.start_pos, mutation.end_pos, spans[module]) else ""

    skipped: Counter[str] = Counter()
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            reasons = {why(m) for m in item.mutations}
            if "" in reasons:
                continue
            reason = " + ".join(sorted(reasons))
            db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=reason))
            skipped[reason] += 1
    return skipped


def source_hashes(tree: Path, targets: list[str]) -> dict[str, str]:
    """sha256 of every file mutated, before any mutant: a session's mutants apply to exactly these."""
    found: dict[str, str] = {}
    for target in targets:
        root = tree / target
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            found[str(path.relative_to(tree))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def reopen_survivors(earlier: Path, session: Path) -> int:
    """Copy an earlier session and forget its survivors' results, so only they run again.

    Sound only while the mutated files are unchanged (the caller compares their hashes): a
    test added since can kill a survivor, and can never revive a killed mutant.
    """
    import sqlite3

    shutil.copy2(earlier, session)
    with sqlite3.connect(session) as db:
        return db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'").rowcount


def _worker_init(trees: Any) -> None:
    """Each worker process owns one copy: cosmic-ray mutates relative to the cwd."""
    tree: Path = trees.get()
    os.chdir(tree)
    os.environ.update(tree_env(tree))


def _mutate_and_test(job: tuple[str, Any, str, float]) -> tuple[str, Any]:
    from cosmic_ray.mutating import mutate_and_test  # pyright: ignore[reportMissingImports]

    job_id, mutations, command, timeout = job
    return job_id, mutate_and_test(mutations, command, timeout)


def execute(session: Path, trees: list[Path], command: str, timeout: float) -> None:
    """Run every pending mutant, one worker process per copy, recording results as they come."""
    from cosmic_ray.work_db import WorkDB, use_db  # pyright: ignore[reportMissingImports]

    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = [(i.job_id, i.mutations, command, timeout) for i in db.pending_work_items]
        total = len(pending)
        ctx = multiprocessing.get_context("spawn")
        started = time.monotonic()
        with ctx.Manager() as manager:
            queue = manager.Queue()
            for tree in trees:
                queue.put(tree)
            pool = ctx.Pool(len(trees), initializer=_worker_init, initargs=(queue,))
            with pool:
                for done, (job_id, result) in enumerate(pool.imap_unordered(_mutate_and_test, pending), 1):
                    db.set_result(job_id, result)
                    if done % 50 == 0 or done == total:
                        rate = done / max(time.monotonic() - started, 1e-6)
                        print(f"  {done}/{total} mutants ({rate:.1f}/s)", flush=True)


@dataclass(frozen=True)
class Outcome:
    """One mutant's result, as the report lists it."""

    module: str
    line: int
    operator: str
    status: str
    """killed, survived, timeout, skipped, incompetent or no-test."""
    diff: str


def outcomes(session: Path) -> Iterator[Outcome]:
    """Every completed mutant of the session."""
    from cosmic_ray.work_db import WorkDB, use_db  # pyright: ignore[reportMissingImports]

    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            mutation = item.mutations[0]
            worker = str(result.worker_outcome.value)
            test = str(result.test_outcome.value) if result.test_outcome is not None else ""
            if worker in ("skipped", "no-test"):
                status = worker
            elif worker != "normal" or test == "incompetent":
                status = "incompetent"
            elif test == "killed" and result.output == "timeout":
                status = "timeout"
            else:
                status = test
            diff = "\n".join(
                line
                for line in (result.diff or "").splitlines()
                if line[:1] in "+-" and not line.startswith(("+++", "---"))
            )
            yield Outcome(
                str(mutation.module_path), mutation.start_pos[0], mutation.operator_name, status, diff
            )


def score(found: list[Outcome]) -> tuple[float, Counter[str]]:
    """Kill rate over the mutants that ran to a verdict."""
    counts = Counter(o.status for o in found)
    killed = counts["killed"] + counts["timeout"]
    judged = killed + counts["survived"]
    return (100.0 * killed / judged if judged else 0.0), counts


def report(found: list[Outcome], out: Path) -> float:
    """Print the score and the survivors; write them all to `out` (JSON lines)."""
    rate, counts = score(found)
    survivors = sorted((o for o in found if o.status == "survived"), key=lambda o: (o.module, o.line))
    for o in survivors:
        print(f"SURVIVED {o.module}:{o.line} {o.operator.rsplit('/', 1)[-1]}")
        for line in o.diff.splitlines():
            print(f"    {line.strip()[:150]}")
    with out.open("w") as fh:
        for o in found:
            fh.write(json.dumps(o.__dict__) + "\n")
    print()
    for module in sorted({o.module for o in found}):
        mine = [o for o in found if o.module == module]
        module_rate, module_counts = score(mine)
        tally = ", ".join(f"{module_counts[k]} {k}" for k in sorted(module_counts))
        print(f"{module}: {module_rate:.1f}% killed ({tally})")
    tally = ", ".join(f"{counts[k]} {k}" for k in sorted(counts))
    print(f"\nmutation score: {rate:.1f}% killed ({tally}); every outcome in {out}")
    return rate


def main(argv: list[str] | None = None) -> int:
    """Copy, init, filter, baseline, run, report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per mutant's test run")
    parser.add_argument("--target", action="append", help=f"file or folder to mutate (default {TARGET})")
    parser.add_argument("--tests", nargs="+", default=list(FAST_TESTS))
    parser.add_argument("--workdir", type=Path, help="keep the session here (default: a temporary folder)")
    parser.add_argument("--fail-under", type=float, default=0.0, help="exit 1 below this kill rate (percent)")
    parser.add_argument(
        "--survivors-of",
        type=Path,
        metavar="WORKDIR",
        help="re-test only the survivors of an earlier --workdir (refused if the mutated files changed since)",
    )
    args = parser.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="mutation-"))
    if work.exists():
        shutil.rmtree(work)
    trees = [copy_tree(work / f"tree-{n}") for n in range(max(1, args.jobs))]
    session = work / "session.sqlite"
    config = work / "cosmic-ray.toml"
    command = pytest_command(args.tests)
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(args.target or [TARGET])}\n"
        f"timeout = {args.timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n"
        '[cosmic-ray.distributor]\nname = "local"\n'
    )
    env = tree_env(trees[0])
    hashes = source_hashes(trees[0], args.target or [TARGET])
    (work / "sources.json").write_text(json.dumps(hashes, indent=1) + "\n")
    if args.survivors_of:
        earlier = json.loads((args.survivors_of / "sources.json").read_text())
        if earlier != hashes:
            changed = sorted(k for k in {*earlier, *hashes} if earlier.get(k) != hashes.get(k))
            print(f"mutated files changed since {args.survivors_of}: {', '.join(changed)}", file=sys.stderr)
            return 2
        again = reopen_survivors(args.survivors_of / "session.sqlite", session)
        print(f"{work}: re-testing the {again} survivors of {args.survivors_of}")
    else:
        cosmic_ray = [sys.executable, "-m", "cosmic_ray.cli"]
        subprocess.run([*cosmic_ray, "init", str(config), str(session)], cwd=trees[0], env=env, check=True)
        skipped = skip_equivalent_mutants(session, trees[0])
        print(
            f"{work}: mutants of {', '.join(args.target or [TARGET])}; skipped as equivalent: "
            + (", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items())) or "none")
        )

    where = subprocess.run(
        [sys.executable, "-c", "import istio_cilium_compat.rules as r; print(r.__file__)"],
        cwd=trees[0],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(trees[0].resolve()):
        print(f"the tests would import {where}, not the mutated copy", file=sys.stderr)
        return 2
    baseline = subprocess.run(command.split(), cwd=trees[0], env=env, capture_output=True, text=True)
    if baseline.returncode != 0:
        print(f"baseline failed, nothing to measure:\n{baseline.stdout[-3000:]}", file=sys.stderr)
        return 2
    print(f"tests per mutant: {command}")
    started = time.monotonic()
    execute(session, trees, command, args.timeout)
    print(f"ran in {time.monotonic() - started:.0f} s with {len(trees)} job(s)")
    rate = report(list(outcomes(session)), work / "outcomes.jsonl")
    return 1 if rate < args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
