"""The charm imports the cluster reader in a thread while ops waits on hook tools."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_preload_imports_the_collector_without_httpcore2() -> None:
    """In a fresh interpreter: after the preload, lightkube is imported, httpcore2 is not."""
    script = textwrap.dedent(
        """
        import sys, threading
        import charm
        thread = threading.Thread(target=charm.preload_collector)
        thread.start()
        thread.join()
        assert "istio_cilium_compat.collect" in sys.modules and "lightkube" in sys.modules
        assert "httpcore2" not in sys.modules, "the collector's transport needs no httpcore2"
        print("ok")
        """
    )
    env = {"PYTHONPATH": f"{REPO / 'src'}:{REPO / 'lib'}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "ok", "")
