"""Charmed Istio's own charm as a fourth charm in the hook cold-start benchmark (section 1).

``benchmarks/istio_k8s_charm`` holds canonical/istio-k8s-operator's ``src/`` and ``lib/`` at
:data:`COMMIT` (see its README for what was left out and why). Its Python dependencies are the
versions its ``uv.lock`` pins (``requirements.txt``, exported from it with hashes), installed from
PyPI into a venv of its own the first time the benchmark needs it: the charm runs on its ops
(2.x), lightkube and pydantic, as in its packed ``.charm``, not on ours.

Its ``update-status`` is dispatched like the other charms (``tests/harness``: the same fake hook
tools, the same ``JUJU_*`` environment, ``$KUBECONFIG`` on the same HTTPS fake API), as the
leader unit of an ``istio-k8s`` application deployed in the model ``istio-system`` (so its
namespace is the example cluster's Istio namespace, where its ``istiod`` Deployment and
``ztunnel`` and ``istio-cni-node`` DaemonSets are), with its peer relation and the
``istio-metadata`` relation to this charm.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.harness import HookState, RelationState
from tests.harness.hooks import HARNESS_DIR

BENCH = Path(__file__).resolve().parent
UPSTREAM = "canonical/istio-k8s-operator"
COMMIT = "bfb2e0f2edf6a13c3e67fbc4c9c6ebeb78ebbaa2"
CHARM_DIR = BENCH / "istio_k8s_charm"
REQUIREMENTS = CHARM_DIR / "requirements.txt"
VENV = BENCH / ".venv-istio-k8s"
"""Git-ignored; rebuilt when requirements.txt or the Python version changes."""
MODEL = "istio-system"


def hook_state() -> HookState:
    """The leader unit of istio-k8s in model istio-system, related to this charm."""
    return HookState(
        unit_name="istio-k8s/0",
        model_name=MODEL,
        leader=True,
        relations=[
            RelationState(id="peers:1", remote_app="istio-k8s"),
            RelationState(
                id="istio-metadata:7",
                remote_app="istio-cilium-compat-k8s",
                remote_units=["istio-cilium-compat-k8s/0"],
                local_app_data={"root_namespace": MODEL},
            ),
        ],
    )


def _stamp() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    return f"{digest} {platform.python_version()}\n"


def ensure_venv(venv: Path = VENV) -> Path:
    """The venv's interpreter, after installing the pinned requirements if they changed."""
    python = venv / "bin" / "python"
    stamp = venv / "requirements.stamp"
    if python.exists() and stamp.exists() and stamp.read_text() == _stamp():
        return python
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    print(f"(installing istio-k8s's pinned dependencies into {venv} from PyPI)", file=sys.stderr, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], env=env, check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-qq",
                "--require-hashes",
                "--no-deps",
                "-r",
                str(REQUIREMENTS),
            ],
            env=env,
            check=True,
        )
    except subprocess.CalledProcessError as error:
        raise RuntimeError(
            f"could not install istio-k8s's dependencies ({error}); run with --no-istio-k8s to skip it"
        ) from error
    stamp.write_text(_stamp())
    return python


def tool_exit_cpu_seconds(runs: int = 15) -> float:
    """CPU a fake hook-tool process spends after it has recorded its call (interpreter shutdown).

    Each call records its CPU time just before exiting (``tests/harness/hooktool.py``); what
    follows is not in the record. Measured here (the whole process, from ``RUSAGE_CHILDREN``,
    less what it recorded), so that the hook's own CPU is not charged with it.
    """
    code = (
        f"import sys; sys.path.insert(0, {str(HARNESS_DIR)!r}); import hooktool; "
        "sys.exit(hooktool.main(['juju-log', '--log-level', 'DEBUG', '--', 'benchmark']))"
    )
    with tempfile.TemporaryDirectory(prefix="icc-tool-") as tmp:
        state, calls = Path(tmp) / "state.json", Path(tmp) / "calls.jsonl"
        context = {"config": {}, "relation_id": None, "action": None}
        state.write_text(json.dumps({"state": HookState().to_dict(), "context": context}))
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": "C.UTF-8",
            "FAKE_JUJU_STATE": str(state),
            "FAKE_JUJU_CALLS": str(calls),
        }
        rest: list[float] = []
        for index in range(runs + 1):  # the first call warms the page cache, not counted
            before = _children_cpu()
            subprocess.run([sys.executable, "-I", "-c", code], env=env, check=True)
            whole = _children_cpu() - before
            recorded = json.loads(calls.read_text().splitlines()[-1])["cpu_s"]
            if index:
                rest.append(max(whole - recorded, 0.0))
    return statistics.median(rest)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
