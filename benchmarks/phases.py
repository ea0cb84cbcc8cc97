#!/usr/bin/env python3
"""Where one check's time goes in a fresh process: the hook's path, timed phase by phase.

Run by benchmarks/run.py (``$KUBECONFIG`` on a fake API server); prints one JSON object of
milliseconds per phase, in the order the charm's update-status hook goes through them:
``import ops``, the engine the charm imports at start (report, rules), the collector
(lightkube, httpx2), building the client, the reads, assembling the snapshot, the rules.
"""

from __future__ import annotations

import json
import time

marks = [("start", time.perf_counter())]


def mark(name: str) -> None:
    marks.append((name, time.perf_counter()))


import ops  # noqa: E402

mark("import ops")
from istio_cilium_compat.report import Report  # noqa: E402
from istio_cilium_compat.rules import evaluate  # noqa: E402

mark("import engine (report, rules)")
from istio_cilium_compat import collect as kube  # noqa: E402

mark("import collector (lightkube, httpx2)")
api = kube.in_cluster_client(timeout=5.0)
mark("build client")
reads = kube.collect(api)
mark(f"read the cluster ({reads.requests} GETs)")
snapshot = reads.snapshot()
mark("assemble")
report: Report = evaluate(snapshot)
mark("evaluate")
assert ops and report.verdict and not reads.problems, reads.problems
print(json.dumps({name: (t - marks[i][1]) * 1000 for i, (name, t) in enumerate(marks[1:])}))
