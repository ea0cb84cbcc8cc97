"""Smoke test of the benchmarks: `benchmarks/run.py --quick` runs and writes its three sections."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    proc = subprocess.run(
        # Without Charmed Istio's charm: it needs a venv from PyPI (tox -e bench measures it).
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--no-istio-k8s", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Targets" in proc.stdout

    results = json.loads(out.read_text(encoding="utf-8"))
    assert {"hook_cold_start", "check_requests", "manifests_check"} <= results.keys()

    hook = results["hook_cold_start"]
    assert all(hook[name]["median_s"] > 0 for name in ("bare", "baseline", "charm"))
    # The baseline makes exactly the charm's hook-tool calls: the ratio is the charm's own work.
    assert hook["same_tool_calls"] is True
    assert hook["tool_calls"]["baseline"] == hook["tool_calls"]["charm"]
    assert sum(hook["tool_calls"]["bare"].values()) < sum(hook["tool_calls"]["charm"].values())
    assert hook["ratio_of_medians"] == hook["charm"]["median_s"] / hook["baseline"]["median_s"]
    assert next(iter(hook["phases_ms"])) == "import ops" and all(v >= 0 for v in hook["phases_ms"].values())
    assert hook["status"]["name"] == "active"
    assert hook["api_requests"]["methods"] == ["GET"]
    assert hook["imports"]["top"]

    sizes = results["check_requests"]["sizes"]
    assert len(sizes) >= 2
    small, large = sizes[0], sizes[-1]
    assert large["namespaces"] > small["namespaces"]
    # The request count does not grow with the cluster, apart from continuation pages.
    assert small["first_page_requests"] == large["first_page_requests"]
    assert small["first_pages"] == large["first_pages"]
    assert small["continuation_pages"] == 0 < large["continuation_pages"]
    assert results["check_requests"]["first_pages_identical"] is True

    manifests = results["manifests_check"]
    for key in ("yaml", "json"):
        assert manifests[key]["exit_code"] == 0
        assert manifests[key]["verdict"] == "compatible"
    runtime = results["runtime_probe"]
    assert runtime["pods"] == 10
    for key in ("gzip", "identity"):
        assert runtime[key]["requests"] == 1 + runtime["pods"]
        assert 0 < runtime[key]["text_bytes_per_pod"] < runtime["body_bytes"]  # stopped after the family
    assert runtime["gzip"]["wire_bytes_per_pod"] < runtime["identity"]["wire_bytes_per_pod"]
    assert runtime["gzip"]["connections_counted"] == runtime["identity"]["connections_counted"] > 0
    assert len(results["targets"]) == 5
