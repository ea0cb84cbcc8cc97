#!/usr/bin/env python3
"""Benchmarks of istio-cilium-compat: hook cold start, API requests per check, large clusters.

Run with ``tox -e bench`` or ``python benchmarks/run.py`` from the repository root.
Prints a table with each target next to its figure and writes
``benchmarks/results/latest.json``. It is a benchmark, not a test: a missed target
is reported as MISS and the exit code is still 0; only a crash exits non-zero.

1. Hook cold start: ``update-status`` of this charm (the repository as the charm
   directory, ``$KUBECONFIG`` pointing at a fake API server over HTTPS loaded with
   ``examples/canonical-k8s-1.36-recommended``) against ``benchmarks/baseline_charm`` (the
   same hook-tool calls, none of the work: the target's denominator) and
   ``benchmarks/bare_charm`` (ops alone), same process-level harness
   (``tests/harness``), runs paired and interleaved. Also the hook's ``-X importtime``
   profile against the baseline's, its hook-tool calls, API requests, and the path's
   phases timed in one process (``benchmarks/phases.py``). Fourth, unless ``--no-istio-k8s``:
   Charmed Istio's own charm (``benchmarks/istio_k8s.py``, vendored in
   ``benchmarks/istio_k8s_charm``, on its own venv of its locked dependencies), the same hook in
   the same loop: ours / istio-k8s, target under a third.
2. One check (``collect`` + ``evaluate`` in this process, a fresh client each time)
   against fake clusters of growing size: requests (first pages / continuation
   pages) and wall time.
3. ``istio-cilium-compat check --manifests FILE`` as a subprocess on the largest
   cluster saved as one YAML ``kind: List``, and as JSON.
4. The runtime probe (``check --runtime``): 100 ztunnel pods behind the fake API's pod
   proxy, each serving a busy node's metrics (``tests/ztunnel.py``: 30 workloads with 8
   destinations each, both directions, four connection families); time, requests and
   bytes per probe, compressed as ztunnel serves it and not.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "lib", REPO, REPO / "src"):  # src ends up first, as with tox's PYTHONPATH
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import yaml  # noqa: E402

from istio_cilium_compat.collect import client_from_kubeconfig, collect  # noqa: E402
from istio_cilium_compat.rules import evaluate  # noqa: E402
from tests.bigcluster import big_cluster  # noqa: E402
from tests.fakekube import FakeKube, PodPort, RecordedRequest  # noqa: E402
from tests.harness import HookResult, HookState, RelationState, run_hook  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
import istio_k8s  # noqa: E402

CHARMS = {
    "bare": REPO / "benchmarks" / "bare_charm",
    "baseline": REPO / "benchmarks" / "baseline_charm",
    "charm": REPO,
}
"""bare: ops and one status-set; baseline: the charm's hook-tool calls and nothing else."""
ISTIO_K8S = "istio-k8s"
"""Charmed Istio's charm (benchmarks/istio_k8s.py), the fourth charm unless --no-istio-k8s."""
EXAMPLE = REPO / "examples" / "canonical-k8s-1.36-recommended"
RESULTS = REPO / "benchmarks" / "results" / "latest.json"
HOOK = "update-status"

HOOK_RATIO_MAX = 1.3
ISTIO_K8S_RATIO_MAX = 1 / 3
"""Ours / istio-k8s's update-status, ratio of medians: the team guide's "under a third"."""
RUNTIME_SECONDS_MAX = 5.0
"""The runtime probe of 100 busy ztunnel pods, fake API in this process."""
CHECK_SECONDS_MAX = 1.0
MANIFESTS_SECONDS_MAX = 2.0
IMPORTS_SHOWN = 8


@dataclass(frozen=True)
class Plan:
    """What to run: sizes and repetitions."""

    hook_runs: int
    sizes: tuple[int, ...]
    check_runs: int = 3
    cli_runs: int = 3

    @property
    def largest(self) -> int:
        return self.sizes[-1]


FULL = Plan(hook_runs=7, sizes=(10, 1_000, 5_000))
QUICK = Plan(hook_runs=3, sizes=(10, 1_000), cli_runs=2)
RUNTIME_PODS = {"full": 100, "quick": 10}


# --------------------------------------------------------------------------- helpers


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def verdict_word(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def request_key(request: RecordedRequest) -> str:
    """A request as path and sorted query, to compare two runs' requests."""
    query = urlencode(sorted(request.query.items()), doseq=True)
    return f"{request.path}?{query}" if query else request.path


def only_gets(requests: Sequence[RecordedRequest], what: str) -> None:
    methods = sorted({r.method for r in requests})
    if methods not in ([], ["GET"]):
        raise RuntimeError(f"{what} sent {methods} requests: the product must only read (GET)")


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep set-up data (a fake cluster of 60,000 objects) out of the measured GC passes.

    The fake API server runs in this process; without this, every full collection during a
    check would also walk the fake's objects, which a real API server (another process)
    never costs the client.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def fake_cluster(objects: list[dict[str, Any]], workdir: Path) -> Iterator[tuple[FakeKube, Path]]:
    fake = FakeKube(objects).start()
    try:
        kubeconfig = fake.write_kubeconfig(workdir / f"kubeconfig-{id(fake)}")
        with frozen_heap():
            yield fake, kubeconfig
    finally:
        fake.stop()


# --------------------------------------------------------------------------- 1. hook cold start

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")


@dataclass(frozen=True)
class ImportEntry:
    module: str
    self_us: int
    cumulative_us: int
    depth: int


def parse_importtime(stderr: str) -> list[ImportEntry]:
    """``-X importtime`` lines, in the order printed (children before their parent)."""
    entries: list[ImportEntry] = []
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            entries.append(ImportEntry(match[4], int(match[1]), int(match[2]), len(match[3]) // 2))
    return entries


def startup_modules() -> set[str]:
    """Modules the interpreter imports before any script runs (site, encodings, ...)."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {e.module for e in parse_importtime(proc.stderr)}


def top_imports(
    entries: list[ImportEntry], bare: list[ImportEntry], count: int, skip: AbstractSet[str] = frozenset()
) -> list[dict[str, Any]]:
    """Top-level imports by cumulative time, with what of each the bare charm never imports.

    Cumulative times depend on import order (charm.py imports ``logging`` before ``ops``,
    so ``ops`` looks cheaper than in the bare charm); ``new_ms``, the self time of the
    modules in the tree that the bare charm does not import at all, does not.
    """
    bare_names = {e.module for e in bare}
    rows: list[dict[str, Any]] = []
    tree: list[ImportEntry] = []
    for entry in entries:
        tree.append(entry)
        if entry.depth != 0:
            continue
        if entry.module in skip:
            tree = []
            continue
        children = sorted((c for c in tree if c.depth == 1), key=lambda c: -c.cumulative_us)[:2]
        rows.append(
            {
                "module": entry.module,
                "cumulative_ms": entry.cumulative_us / 1000,
                "new_ms": sum(e.self_us for e in tree if e.module not in bare_names) / 1000,
                "children": [{"module": c.module, "cumulative_ms": c.cumulative_us / 1000} for c in children],
            }
        )
        tree = []
    rows.sort(key=lambda r: -r["cumulative_ms"])
    return rows[:count]


def tool_summary(result: HookResult) -> dict[str, int]:
    return dict(Counter(call.name for call in result.calls))


@dataclass(frozen=True)
class Dispatch:
    """One charm of section 1: its directory, the unit it runs as, the interpreter of its venv."""

    charm_dir: Path
    state: HookState
    python: str = sys.executable


def bench_hook(plan: Plan, workdir: Path, with_istio_k8s: bool = True) -> dict[str, Any]:
    # Served over HTTPS and verified against the fake's CA, as the charm reads its cluster
    # in a pod: the service account's ca.crt, one TLS handshake per hook.
    with FakeKube.from_paths(EXAMPLE, tls=True) as fake:
        kubeconfig = fake.write_kubeconfig(workdir / "kubeconfig-example")
        env = {"KUBECONFIG": str(kubeconfig)}
        # As deployed: integrated with istio-k8s, which has published its root namespace.
        state = HookState(
            relations=[
                RelationState(
                    id="istio-metadata:7",
                    remote_app="istio-k8s",
                    remote_units=["istio-k8s/0"],
                    remote_app_data={"root_namespace": "istio-system"},
                )
            ]
        )
        charms = {name: Dispatch(path, state) for name, path in CHARMS.items()}
        if with_istio_k8s:
            # Charmed Istio's charm on its own venv (its uv.lock's versions), as the leader of
            # istio-k8s in model istio-system: the same fake hook tools, env and fake API.
            charms[ISTIO_K8S] = Dispatch(
                istio_k8s.CHARM_DIR, istio_k8s.hook_state(), str(istio_k8s.ensure_venv())
            )
        # Steady state, as update-status runs on a live unit: each charm keeps its unit
        # directory (state database, bytecode) from one hook to the next.
        units = {name: workdir / f"unit-{name}" for name in charms}
        requests: dict[str, list[RecordedRequest]] = {name: [] for name in charms}

        cpu: dict[str, list[float]] = {name: [] for name in charms}
        tool_cpu: dict[str, list[float]] = {name: [] for name in charms}

        def run(name: str, extra: dict[str, str] | None = None) -> HookResult:
            fake.clear_requests()
            before = children_cpu()
            spec = charms[name]
            result = run_hook(
                spec.charm_dir,
                HOOK,
                state=spec.state,
                env={**env, **(extra or {})},
                unit_dir=units[name],
                python=spec.python,
            ).assert_ok()  # a hook that crashed is no comparison: its exit status must be 0
            cpu[name].append(children_cpu() - before)
            tool_cpu[name].append(sum(call.cpu_s for call in result.calls))
            requests[name] = list(fake.requests)
            if name == "charm":
                only_gets(requests[name], f"the charm's {HOOK} hook")
            return result

        for name in charms:  # warm-up (bytecode caches, page cache), not measured
            run(name)
            cpu[name].clear()
            tool_cpu[name].clear()

        times: dict[str, list[float]] = {name: [] for name in charms}
        last: dict[str, HookResult] = {}
        api_requests: dict[str, list[int]] = {name: [] for name in charms}
        names = list(charms)
        for index in range(plan.hook_runs):
            # Paired and interleaved: each round runs every charm, in a rotating order.
            for name in names[index % len(names) :] + names[: index % len(names)]:
                last[name] = run(name)
                times[name].append(last[name].duration)
                api_requests[name].append(len(requests[name]))
        istio_requests = requests.get(ISTIO_K8S, [])

        cpu_medians = {name: median(values) for name, values in cpu.items()}
        profile = {"PYTHONPROFILEIMPORTTIME": "1"}  # = python -X importtime, in the hook process
        charm_imports = parse_importtime(run("charm", profile).stderr)
        baseline_imports = parse_importtime(run("baseline", profile).stderr)
        phases = bench_phases(kubeconfig, runs=plan.hook_runs)
    tool_exit_cpu = istio_k8s.tool_exit_cpu_seconds() if with_istio_k8s else 0.0

    baseline_names = {e.module for e in baseline_imports}
    charm_only_self = sum(e.self_us for e in charm_imports if e.module not in baseline_names) / 1000
    status = last["charm"].status_sets()[-1] if last["charm"].status_sets() else ("", "")
    medians = {name: median(values) for name, values in times.items()}
    results: dict[str, Any] = {
        "hook": HOOK,
        "runs": plan.hook_runs,
        "fake_cluster": str(EXAMPLE.relative_to(REPO)) + " (HTTPS, verified with its CA)",
        **{
            name: {"seconds": values, "median_s": medians[name], "min_s": min(values)}
            for name, values in times.items()
        },
        "charms": list(charms),
        "ratio_of_medians": medians["charm"] / medians["baseline"],
        "ratio_to_bare": medians["charm"] / medians["bare"],
        "paired_ratios": [c / b for c, b in zip(times["charm"], times["baseline"], strict=True)],
        # CPU time (user + system) of the hook and its hook-tool processes: what the unit pays,
        # and far less sensitive than wall time to other load on the machine.
        "cpu_median_s": cpu_medians,
        "cpu_ratio": cpu_medians["charm"] / cpu_medians["baseline"],
        "status": {"name": status[0], "message": status[1]},
        "tool_calls": {name: tool_summary(result) for name, result in last.items()},
        "same_tool_calls": tool_summary(last["baseline"]) == tool_summary(last["charm"]),
        "api_requests": {"per_hook": sorted(set(api_requests["charm"])), "methods": ["GET"]},
        "imports": {
            "top": top_imports(charm_imports, baseline_imports, IMPORTS_SHOWN, skip=startup_modules()),
            "charm_only_self_ms": charm_only_self,
            "charm_only_modules": len({e.module for e in charm_imports} - baseline_names),
        },
        "phases_ms": phases,
    }
    if with_istio_k8s:
        # The hook process's own CPU time: all of it, less its hook-tool processes' (what each
        # recorded, and the shutdown that follows its record, measured apart). The measured runs
        # only: the -X importtime runs after them are left out.
        for name in charms:
            tool_cpu[name] = [
                t + len(last[name].calls) * tool_exit_cpu for t in tool_cpu[name][: plan.hook_runs]
            ]
        own_cpu = {
            name: median([c - t for c, t in zip(cpu[name][: plan.hook_runs], tool_cpu[name], strict=True)])
            for name in charms
        }
        tool_cpu_medians = {name: median(values) for name, values in tool_cpu.items()}
        results["istio_k8s"] = istio_k8s_summary(
            last[ISTIO_K8S], medians, cpu_medians, own_cpu, tool_cpu_medians, tool_exit_cpu, istio_requests
        )
        results["paired_ratios_istio_k8s"] = [
            c / i for c, i in zip(times["charm"], times[ISTIO_K8S], strict=True)
        ]
    return results


def istio_k8s_summary(
    result: HookResult,
    medians: dict[str, float],
    cpu_medians: dict[str, float],
    own_cpu: dict[str, float],
    tool_cpu: dict[str, float],
    tool_exit_cpu: float,
    requests: Sequence[RecordedRequest],
) -> dict[str, Any]:
    """Charmed Istio's update-status against ours: exit status, status reached, calls, ratios.

    ``own_cpu_s`` is each hook process's CPU time without its hook-tool processes': the fake
    tools (Python, about 20 ms each) cost more than Juju's (Go), and istio-k8s makes several
    times as many calls as this charm, so the wall-time ratio leans on the harness.
    """
    statuses = result.status_sets()
    return {
        "upstream": istio_k8s.UPSTREAM,
        "commit": istio_k8s.COMMIT,
        "model": istio_k8s.MODEL,
        "exit_code": result.returncode,
        "status": {"name": statuses[-1][0], "message": statuses[-1][1]} if statuses else None,
        "tool_calls": tool_summary(result),
        "api_requests": {
            "count": len(requests),
            "methods": sorted({r.method for r in requests}),
            "paths": [r.path for r in requests],
        },
        "ratio": medians["charm"] / medians[ISTIO_K8S],
        "cpu_ratio": cpu_medians["charm"] / cpu_medians[ISTIO_K8S],
        "own_cpu_s": {"charm": own_cpu["charm"], ISTIO_K8S: own_cpu[ISTIO_K8S]},
        "tool_cpu_s": {"charm": tool_cpu["charm"], ISTIO_K8S: tool_cpu[ISTIO_K8S]},
        "own_cpu_ratio": own_cpu["charm"] / own_cpu[ISTIO_K8S],
        "tool_exit_cpu_s": tool_exit_cpu,
    }


def children_cpu() -> float:
    """User + system seconds of every waited-for child process so far (hooks and their tools)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_phases(kubeconfig: Path, runs: int) -> dict[str, float]:
    """benchmarks/phases.py in fresh processes: median milliseconds per phase of the hook's path."""
    env = {**cli_env(), "KUBECONFIG": str(kubeconfig)}
    samples: list[dict[str, float]] = []
    for _ in range(max(runs, 3)):
        proc = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "phases.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        samples.append(json.loads(proc.stdout))
    return {name: median([s[name] for s in samples]) for name in samples[0]}


# --------------------------------------------------------------------------- 2. one check


def one_check(kubeconfig: Path, fake: FakeKube) -> tuple[float, dict[str, Any]]:
    fake.clear_requests()
    start = time.perf_counter()
    api = client_from_kubeconfig(str(kubeconfig), None, timeout=30.0)
    reads = collect(api)
    snapshot = reads.snapshot()
    report = evaluate(snapshot)
    elapsed = time.perf_counter() - start
    api.close()
    requests = list(fake.requests)
    only_gets(requests, "the collector")
    if reads.requests != len(requests):
        raise RuntimeError(f"collector counted {reads.requests} requests, the server saw {len(requests)}")
    if snapshot.problems:
        raise RuntimeError(f"the check met problems: {snapshot.problems}")
    first = [r for r in requests if "continue" not in r.query]
    return elapsed, {
        "requests": len(requests),
        "first_pages": len(first),
        "continuation_pages": len(requests) - len(first),
        "first_page_requests": [request_key(r) for r in first],
        "verdict": report.verdict.value,
        "findings": list(report.ids),
    }


def bench_checks(
    plan: Plan, clusters: Callable[[int], list[dict[str, Any]]], workdir: Path
) -> dict[str, Any]:
    sizes: list[dict[str, Any]] = []
    for index, namespaces in enumerate(plan.sizes):
        objects = clusters(namespaces)
        with fake_cluster(objects, workdir) as (fake, kubeconfig):
            if index == 0:
                one_check(kubeconfig, fake)  # warm-up: lazy imports, msgspec decoders
            times: list[float] = []
            info: dict[str, Any] = {}
            for _ in range(plan.check_runs):
                elapsed, info = one_check(kubeconfig, fake)
                times.append(elapsed)
        sizes.append(
            {
                "namespaces": namespaces,
                "objects": len(objects),
                **info,
                "seconds": times,
                "median_s": median(times),
            }
        )
    small, large = sizes[0], sizes[-1]
    return {
        "shape": "per namespace: 10 pods, 1 NetworkPolicy, half ambient; 200 CiliumNetworkPolicies",
        "runs": plan.check_runs,
        "sizes": sizes,
        "first_pages_identical": small["first_page_requests"] == large["first_page_requests"],
    }


# --------------------------------------------------------------------------- 4. runtime probe


def busy_node_metrics(workloads: int = 30, destinations: int = 8) -> bytes:
    """One node's ztunnel /metrics: every workload talks to `destinations` others, both directions."""
    from tests.ztunnel import Conn, exposition

    conns = []
    for w in range(workloads):
        source = (f"team-{w % 6}", f"app-{w}")
        for d in range(destinations):
            target = (f"team-{(w + d) % 6}", f"app-{(w + d + 1) % 40}")
            service = f"{target[1]}.{target[0]}.svc.cluster.local" if d % 4 else None
            conns.append(Conn("source", source, target, service, True, 10 + w + d))
            conns.append(Conn("destination", target, source, service, d % 8 != 7, 10 + w))
    return exposition(conns).encode()


def bench_runtime(runs: int, pods: int, workdir: Path) -> dict[str, Any]:
    from istio_cilium_compat.runtime import MAX_BYTES, ProbeStats, probe
    from tests.clusters import healthy
    from tests.ztunnel import ztunnel_pod

    body = busy_node_metrics()
    objects = [*healthy(), *(ztunnel_pod(f"ztunnel-{i:03d}", f"node-{i:03d}") for i in range(pods))]
    variants: dict[str, Any] = {}
    for name, gzip in (("gzip", True), ("identity", False)):
        answer = PodPort(body, gzip=gzip)  # one body for every pod (its gzip is computed once)
        with fake_cluster(objects, workdir) as (fake, kubeconfig):
            for i in range(pods):
                fake.serve_pod_port("istio-system", f"ztunnel-{i:03d}", 15020, answer)
            times: list[float] = []
            cpu: list[float] = []
            stats = ProbeStats()
            summary = None
            for _ in range(runs + 1):  # the first run warms the client up, not counted
                fake.clear_requests()
                stats = ProbeStats()
                api = client_from_kubeconfig(str(kubeconfig), None, timeout=30.0)
                start, start_cpu = time.perf_counter(), time.process_time()
                summary = probe(api, namespace="istio-system", stats=stats)
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
                api.close()
            requests = list(fake.requests)
            only_gets(requests, "the runtime probe")
        assert summary is not None
        if stats.requests != len(requests) or not all(p.read for p in summary.pods):
            raise RuntimeError(
                f"probe: {stats.requests} requests counted, {len(requests)} seen; {summary.pods[:2]}"
            )
        measured = times[1:]
        variants[name] = {
            "median_s": median(measured),
            "seconds": measured,
            "cpu_median_s": median(cpu[1:]),
            "requests": len(requests),
            "wire_bytes_per_pod": stats.wire_bytes // pods,
            "text_bytes_per_pod": stats.text_bytes // pods,
            "connections_counted": sum(c.count for c in summary.connections),
        }
    return {
        "pods": pods,
        "runs": runs,
        "load_average": os.getloadavg()[0],
        "body_bytes": len(body),
        "series_per_family": body.count(b"istio_tcp_connections_opened_total{"),
        "max_bytes": MAX_BYTES,
        **variants,
    }


# --------------------------------------------------------------------------- 3. check --manifests


def write_yaml(objects: list[dict[str, Any]], path: Path) -> None:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # yaml.safe_dump, with the C emitter
    document = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": objects}
    with path.open("w", encoding="utf-8") as stream:
        yaml.dump(document, stream, Dumper=dumper, sort_keys=False, allow_unicode=True)


def write_json(objects: list[dict[str, Any]], path: Path) -> None:
    document = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": objects}
    path.write_text(json.dumps(document, indent=4), encoding="utf-8")  # kubectl -o json indents by 4


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO / "src"), str(REPO), str(REPO / "lib")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_cli(target: Path, runs: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "istio_cilium_compat.cli", "check", "--manifests", str(target)]
    times: list[float] = []
    verdict = ""
    returncode = 0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=300)
        times.append(time.perf_counter() - start)
        returncode = proc.returncode
        if returncode not in (0, 1):
            raise RuntimeError(f"`{' '.join(command)}` exited {returncode}: {proc.stderr.strip()}")
        match = re.search(r"^Verdict: (\S+)", proc.stdout, re.MULTILINE)
        verdict = match[1] if match else "?"
    size = (
        sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        if target.is_dir()
        else target.stat().st_size
    )
    return {
        "path": target.name,
        "mib": size / 2**20,
        "seconds": times,
        "median_s": median(times),
        "exit_code": returncode,
        "verdict": verdict,
    }


def bench_manifests(
    plan: Plan, clusters: Callable[[int], list[dict[str, Any]]], workdir: Path
) -> dict[str, Any]:
    objects = clusters(plan.largest)
    yaml_path, json_path = workdir / "cluster.yaml", workdir / "cluster.json"
    start = time.perf_counter()
    write_yaml(objects, yaml_path)
    yaml_write = time.perf_counter() - start
    write_json(objects, json_path)
    return {
        "namespaces": plan.largest,
        "objects": len(objects),
        "runs": plan.cli_runs,
        "yaml_write_s": yaml_write,
        "floor": {**run_cli(EXAMPLE, plan.cli_runs), "path": str(EXAMPLE.relative_to(REPO))},
        "yaml": run_cli(yaml_path, plan.cli_runs),
        "json": run_cli(json_path, plan.cli_runs),
    }


# --------------------------------------------------------------------------- report


def targets(
    hook: dict[str, Any], checks: dict[str, Any], manifests: dict[str, Any], runtime: dict[str, Any]
) -> list[dict[str, Any]]:
    large = checks["sizes"][-1]
    small = checks["sizes"][0]
    n = f"{large['namespaces']:,}"
    rows = [
        {
            "name": "hook cold start vs baseline charm",
            "figure": f"{hook['ratio_of_medians']:.2f}×",
            "target": f"≤ {HOOK_RATIO_MAX}×",
            "pass": hook["ratio_of_medians"] <= HOOK_RATIO_MAX and hook["same_tool_calls"],
        },
        {
            "name": f"requests, {small['namespaces']} vs {n} namespaces",
            "figure": (
                f"{small['first_pages']} vs {large['first_pages']} first pages "
                f"(+{large['continuation_pages']} continuation)"
            ),
            "target": "identical apart from continuation pages",
            "pass": checks["first_pages_identical"],
        },
        {
            "name": f"one check, {n} namespaces",
            "figure": secs(large["median_s"]),
            "target": f"< {CHECK_SECONDS_MAX:g} s",
            "pass": large["median_s"] < CHECK_SECONDS_MAX,
        },
        {
            "name": f"check --manifests, {n} namespaces (YAML)",
            "figure": secs(manifests["yaml"]["median_s"]),
            "target": f"< {MANIFESTS_SECONDS_MAX:g} s",
            "pass": manifests["yaml"]["median_s"] < MANIFESTS_SECONDS_MAX,
        },
        {
            "name": f"runtime probe, {runtime['pods']} busy ztunnel pods",
            "figure": f"{secs(runtime['gzip']['median_s'])}, {runtime['gzip']['requests']} requests",
            "target": f"< {RUNTIME_SECONDS_MAX:g} s",
            "pass": runtime["gzip"]["median_s"] < RUNTIME_SECONDS_MAX,
        },
    ]
    istio = hook.get("istio_k8s")
    if istio:
        rows.insert(
            1,
            {
                "name": "hook: ours / istio-k8s's update-status",
                "figure": f"{istio['ratio']:.2f} ({ms(hook['charm']['median_s'])} / {ms(hook[ISTIO_K8S]['median_s'])})",
                "target": f"< {ISTIO_K8S_RATIO_MAX:.2f}",
                "pass": istio_k8s_pass(istio),
            },
        )
    return rows


def add_istio_k8s(add: Callable[[str], None], hook: dict[str, Any], istio: dict[str, Any]) -> None:
    """Section 1's lines on Charmed Istio's charm: the ratio, and that its hook really ran."""
    ratio, paired = istio["ratio"], hook["paired_ratios_istio_k8s"]
    add(
        f"   istio-k8s ({istio['upstream']} {istio['commit'][:7]}) {ms(hook[ISTIO_K8S]['median_s'])};"
        f" ours / istio-k8s = {ratio:.2f} (target < {ISTIO_K8S_RATIO_MAX:.2f})"
        f" {verdict_word(istio_k8s_pass(istio))}; paired {min(paired):.2f}–{max(paired):.2f};"
        f" CPU {istio['cpu_ratio']:.2f}"
    )
    status = istio["status"]
    reached = f"status-set {status['name']} {status['message']!r}" if status else "NO status-set"
    calls = istio["tool_calls"]
    api = istio["api_requests"]
    add(
        f"     its hook: exit {istio['exit_code']}, {reached}; {sum(calls.values())} hook-tool calls"
        f" ({', '.join(f'{k} {v}' for k, v in calls.items())}); {api['count']} API requests"
        f" ({'/'.join(api['methods']) or 'none'}) in namespace {istio['model']}"
    )
    own, tools = istio["own_cpu_s"], istio["tool_cpu_s"]
    add(
        f"     CPU of the hook process alone: ours {ms(own['charm'])}, istio-k8s {ms(own[ISTIO_K8S])}:"
        f" {istio['own_cpu_ratio']:.2f} (less their fake hook tools' {ms(tools['charm'])} and"
        f" {ms(tools[ISTIO_K8S])}: each call's recorded CPU + {istio['tool_exit_cpu_s'] * 1000:.1f} ms exit)"
    )


def istio_k8s_pass(istio: dict[str, Any]) -> bool:
    """Under a third, and only for a hook that exited 0 after setting its status."""
    return istio["ratio"] < ISTIO_K8S_RATIO_MAX and istio["exit_code"] == 0 and istio["status"] is not None


def print_table(results: dict[str, Any]) -> None:
    meta, hook = results["meta"], results["hook_cold_start"]
    checks, manifests = results["check_requests"], results["manifests_check"]
    out: list[str] = []
    add = out.append
    add(f"istio-cilium-compat benchmarks — Python {meta['python']}, ops {meta['ops']}, {meta['mode']} mode")
    add("")
    add(f"1. Hook cold start: {hook['hook']}, {hook['runs']} runs each, interleaved   median     min")
    bare, baseline, charm = hook["bare"], hook["baseline"], hook["charm"]
    rows = [
        ("bare charm (ops, one status-set)", bare),
        ("baseline charm (the charm's hook-tool calls only)", baseline),
        ("istio-cilium-compat-k8s", charm),
    ]
    istio = hook.get("istio_k8s")
    if istio:
        rows.append((f"istio-k8s ({istio['upstream']} {istio['commit'][:7]})", hook[ISTIO_K8S]))
    for label, row in rows:
        add(f"   {label:<55} {ms(row['median_s']):>8} {ms(row['min_s']):>8}")
    ratio = hook["ratio_of_medians"]
    paired = hook["paired_ratios"]
    add(
        f"   vs baseline: ratio of medians {ratio:.2f}× (target ≤ {HOOK_RATIO_MAX}×)"
        f" {verdict_word(ratio <= HOOK_RATIO_MAX)}; paired {min(paired):.2f}–{max(paired):.2f}×;"
        f" extra {ms(charm['median_s'] - baseline['median_s'])} per hook"
    )
    add(f"   vs bare: {hook['ratio_to_bare']:.2f}× (the baseline's extra hook-tool calls included)")
    cpu = hook["cpu_median_s"]
    add(
        f"   CPU time (hook + hook tools, median): bare {ms(cpu['bare'])}, baseline {ms(cpu['baseline'])},"
        f" charm {ms(cpu['charm'])}: {hook['cpu_ratio']:.2f}× the baseline"
    )
    if istio:
        add_istio_k8s(add, hook, istio)
    tools = hook["tool_calls"]
    by_tool = ", ".join(f"{k} {v}" for k, v in tools["charm"].items())
    same = (
        "the same as the baseline" if hook["same_tool_calls"] else f"baseline {tools['baseline']} (MISMATCH)"
    )
    add(
        f"   hook-tool calls: {sum(tools['charm'].values())} ({by_tool}); {same}; bare {sum(tools['bare'].values())}"
    )
    add(
        f"   API requests: {'/'.join(map(str, hook['api_requests']['per_hook']))} per hook, GET only;"
        f" status: {hook['status']['name']} {hook['status']['message']!r}"
    )
    phases = hook["phases_ms"]
    add(
        "   one process, timed (benchmarks/phases.py, median): "
        + ", ".join(f"{name} {value:.0f} ms" for name, value in phases.items())
    )
    imports = hook["imports"]
    add(
        f"   imports after start-up (-X importtime in the hook, top {len(imports['top'])}; "
        f"not in the baseline: {imports['charm_only_modules']} modules, {imports['charm_only_self_ms']:.0f} ms self)"
    )
    add("     module                         cumulative   not in baseline  ← largest direct imports")
    for row in imports["top"]:
        kids = ", ".join(f"{c['module']} {c['cumulative_ms']:.1f}" for c in row["children"])
        add(
            f"     {row['module']:<30} {row['cumulative_ms']:6.1f} ms  {row['new_ms']:6.1f} ms"
            f"{'  ← ' + kids if kids else ''}"
        )
    add("")
    add(f"2. One check: collect + evaluate, in-process, fresh client, median of {checks['runs']}")
    add("   namespaces   objects  requests  first pages  continuation      wall  verdict")
    for size in checks["sizes"]:
        add(
            f"   {size['namespaces']:>10,} {size['objects']:>9,} {size['requests']:>9} {size['first_pages']:>12}"
            f" {size['continuation_pages']:>13} {secs(size['median_s']):>9}  {size['verdict']}"
        )
    add("")
    add(
        f"3. istio-cilium-compat check --manifests (subprocess), {manifests['namespaces']:,} namespaces,"
        f" median of {manifests['runs']}"
    )
    add("   input                                           size      wall  exit  verdict")
    for key, label in (
        ("floor", "example folder (start-up floor)"),
        ("yaml", "one YAML kind: List"),
        ("json", "the same as JSON"),
    ):
        row = manifests[key]
        add(
            f"   {label:<44} {row['mib']:>5.1f} MiB {secs(row['median_s']):>8} {row['exit_code']:>5}  {row['verdict']}"
        )
    add(
        f"   (writing the YAML with the {meta['yaml_dumper']} took {secs(manifests['yaml_write_s'])}; not measured)"
    )
    add("")
    runtime = results["runtime_probe"]
    add(
        f"4. Runtime probe (check --runtime): {runtime['pods']} ztunnel pods, a busy node's /metrics each "
        f"({runtime['body_bytes'] / 1024:.0f} KiB, {runtime['series_per_family']} series per family), "
        f"median of {runtime['runs']}"
    )
    add("   served as       wall       CPU  requests  wire/pod  text read/pod  connections counted")
    for key in ("gzip", "identity"):
        row = runtime[key]
        add(
            f"   {key:<10} {secs(row['median_s']):>9} {secs(row['cpu_median_s']):>9} {row['requests']:>9}"
            f" {row['wire_bytes_per_pod'] / 1024:>6.0f} KiB {row['text_bytes_per_pod'] / 1024:>10.0f} KiB"
            f"  {row['connections_counted']:>10,}"
        )
    add(
        "   (CPU: this process, the fake API's threads included; load average at the end "
        f"{runtime['load_average']:.1f})"
    )
    add("")
    add("Targets")
    for target in results["targets"]:
        add(
            f"   {verdict_word(target['pass'])}  {target['name']:<44} {target['figure']:<40} {target['target']}"
        )
    print("\n".join(out), flush=True)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer runs and smaller clusters (a smoke test)")
    parser.add_argument(
        "--runs", type=int, metavar="N", help="hook cold-start runs of each charm (default 7)"
    )
    parser.add_argument(
        "--no-istio-k8s",
        action="store_true",
        help="leave Charmed Istio's charm out of section 1 (it needs its own venv, from PyPI)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, metavar="FILE", help="JSON results file")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.runs is not None:
        if args.runs < 1:
            parser.error("--runs must be at least 1")
        plan = Plan(hook_runs=args.runs, sizes=plan.sizes, check_runs=plan.check_runs, cli_runs=plan.cli_runs)

    cache: dict[int, list[dict[str, Any]]] = {}

    def clusters(namespaces: int) -> list[dict[str, Any]]:
        if namespaces not in cache:
            cache[namespaces] = big_cluster(namespaces, pods_per_namespace=10, cilium_policies=200)
        return cache[namespaces]

    import lightkube
    import ops

    with tempfile.TemporaryDirectory(prefix="icc-bench-") as tmp:
        workdir = Path(tmp)
        hook = bench_hook(plan, workdir, with_istio_k8s=not args.no_istio_k8s)
        checks = bench_checks(plan, clusters, workdir)
        manifests = bench_manifests(plan, clusters, workdir)
        mode = "quick" if args.quick else "full"
        runtime = bench_runtime(plan.check_runs, RUNTIME_PODS[mode], workdir)

    results: dict[str, Any] = {
        "meta": {
            "mode": "quick" if args.quick else "full",
            "python": platform.python_version(),
            "platform": platform.platform(),
            "ops": ops.__version__,
            "lightkube": getattr(lightkube, "__version__", "?"),
            "yaml_dumper": getattr(yaml, "CSafeDumper", yaml.SafeDumper).__name__,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "hook_cold_start": hook,
        "check_requests": checks,
        "manifests_check": manifests,
        "runtime_probe": runtime,
    }
    results["targets"] = targets(hook, checks, manifests, runtime)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
