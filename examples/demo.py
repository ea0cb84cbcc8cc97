"""`tox -e demo`: run `istio-cilium-compat check` on every saved example cluster and values file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent


def main() -> int:
    """Check each example folder; a non-zero exit only when an input could not be read."""
    folders = sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    if not folders:
        print("no example clusters found", file=sys.stderr)
        return 1
    runs = [(folder.name, ["--manifests", f"examples/{folder.name}"]) for folder in folders]
    for values in sorted(EXAMPLES.glob("cilium-values*.yaml")):  # Helm values files, not clusters
        runs.append((values.name, ["--cilium-values", f"examples/{values.name}", "--cilium-version", "1.19"]))
    for title, args in runs:
        print(f"\n{' ' + title + ' ':=^100}")
        print(f"$ istio-cilium-compat check {' '.join(args)}")
        result = subprocess.run(
            ["istio-cilium-compat", "check", *args],
            check=False,
            text=True,
            capture_output=True,
            cwd=EXAMPLES.parent,
        )
        sys.stdout.write(result.stdout)
        sys.stdout.write(result.stderr)
        print(f"(exit code {result.returncode})")
        if result.returncode not in (0, 1):
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
