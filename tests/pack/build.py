"""Pack the charm with the real charmcraft (4.x from PyPI) on this Debian host, then lint it.

``python -m tests.pack.build --out DIR --workdir DIR`` (what ``tox -e pack`` runs).
charmcraft refuses to build for Ubuntu 24.04 on Debian and has no option to skip the
check, so (DESIGN.md, "Charm layout traps"), without patching it:

1. Debian's ``python3-apt``/``python3-venv``/``python3-dev`` are installed with apt-get
   if missing (charmcraft's destructive mode needs python3-apt; the uv plugin lists the
   other two as build packages).
2. charmcraft, pyOpenSSL and uv (``tests/pack/requirements.in``, compiled with every
   dependency pinned into ``requirements.txt``) go into a venv made from Debian's
   ``/usr/bin/python3 --system-site-packages`` (reused while the pins are unchanged).
3. The tracked and untracked-but-not-ignored files of the work tree are copied to a
   clean build directory (destructive mode builds in the project directory).
4. ``charmcraft pack --destructive-mode`` runs in a private mount namespace whose
   ``/etc/os-release`` says Ubuntu 24.04, with a real Python 3.12 first on ``PATH`` (the
   unit's Python on Ubuntu 24.04; a pyenv shim directory is not enough: uv must find the
   interpreter itself) so the packed ``venv/`` holds cp312 modules.
5. ``charmcraft analyse`` lints the artefact; any error fails the build.

Writes the ``.charm`` to ``--out`` and ``result.json`` (charm path, Python used, the
analysis, timings) to ``--workdir`` for ``tests/pack``. Needs root (``unshare -m``).
Exit code 0, or 1 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_PACKAGES = ("python3-apt", "python3-venv", "python3-dev")
CHARM_GLOB = "istio-cilium-compat-k8s_*.charm"
UBUNTU_2404_OS_RELEASE = """\
PRETTY_NAME="Ubuntu 24.04 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
UBUNTU_CODENAME=noble
"""
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BuildError(Exception):
    """The build cannot go on; the message says why and what to do."""


def log(message: str) -> None:
    print(f"pack: {message}", flush=True)


def run(cmd: list[str], *, what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; on failure raise with the tail of its output."""
    proc = subprocess.run(cmd, text=True, capture_output=True, check=False, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc


# ----------------------------------------------------------------------------- toolchain


def _missing_debs() -> list[str]:
    missing: list[str] = []
    for package in DEBIAN_PACKAGES:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or "install ok installed" not in proc.stdout:
            missing.append(package)
    return missing


def ensure_debian_packages() -> None:
    if not Path(DEBIAN_PYTHON).is_file() or shutil.which("dpkg-query") is None:
        raise BuildError(f"needs a Debian/Ubuntu host with {DEBIAN_PYTHON} (charmcraft uses python3-apt)")
    missing = _missing_debs()
    if not missing:
        return
    log(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], what="apt-get update", env=env)
    run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        what="apt-get install",
        env=env,
    )


def ensure_toolchain(venv: Path) -> Path:
    """The charmcraft venv, created or refreshed when requirements.txt changed; its bin/.

    pip installs only uv (pinned there); uv installs the rest, exactly as compiled from
    requirements.in, about ten times faster than pip resolves charmcraft's dependencies.
    """
    stamp = venv / ".requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    charmcraft = venv / "bin" / "charmcraft"
    if charmcraft.is_file() and stamp.is_file() and stamp.read_text().strip() == wanted:
        return venv / "bin"
    log(f"installing the toolchain into {venv} ({REQUIREMENTS.relative_to(REPO)})")
    shutil.rmtree(venv, ignore_errors=True)
    run([DEBIAN_PYTHON, "-m", "venv", "--system-site-packages", str(venv)], what="python3 -m venv")
    python = str(venv / "bin" / "python")
    uv_pin = next(
        line.split()[0] for line in REQUIREMENTS.read_text().splitlines() if line.startswith("uv==")
    )
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", uv_pin], what="pip install uv")
    uv = str(venv / "bin" / "uv")
    run(
        [uv, "pip", "install", "-q", "--python", python, "-r", str(REQUIREMENTS)],
        what="uv pip install charmcraft",
    )
    stamp.write_text(wanted + "\n")
    return venv / "bin"


def _candidates() -> list[str]:
    named = os.environ.get("PACK_PYTHON")
    if named:
        return [named]
    found = ["/usr/bin/python3.12"]  # an Ubuntu 24.04 host
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    versions = sorted(
        pyenv_root.glob("versions/3.12.*/bin/python3.12"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parts[-3].split(".")],
    )
    found += [str(p) for p in reversed(versions)]
    on_path = shutil.which("python3.12")
    return [*found, *([on_path] if on_path else [])]


def unit_python() -> Path:
    """A real Python 3.12 executable (Ubuntu 24.04's version) whose directory holds python3.

    ``PACK_PYTHON`` names it; else Ubuntu's, else the newest pyenv 3.12 (pyenv's shims
    run whichever version is selected, so they are not used), else python3.12 on PATH.
    """
    named = next((c for c in _candidates() if Path(c).is_file()), None)
    if named is None:
        raise BuildError(
            "needs Python 3.12 (the unit's Python on Ubuntu 24.04): set PACK_PYTHON or install it"
        )
    proc = run(
        [named, "-c", "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"],
        what=f"{named} --version",
    )
    executable, version = proc.stdout.split()
    if version != "3.12":
        raise BuildError(f"{named} is Python {version}, not 3.12")
    python3 = Path(executable).with_name("python3")
    if not python3.exists() or Path(os.path.realpath(python3)) != Path(os.path.realpath(executable)):
        raise BuildError(f"{Path(executable).parent} has no python3 that is {executable}")
    return Path(executable)


# ----------------------------------------------------------------------------- build


def export_tree(build: Path) -> None:
    """Copy what git would commit (tracked + untracked, not ignored) as it is in the work tree."""
    listed = run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        what="git ls-files",
    ).stdout.split("\0")
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    for name in filter(None, listed):
        source = REPO / name
        if not source.is_file():  # deleted in the work tree, or a submodule
            continue
        target = build / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    if not (Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()):
        # craft-parts installs build-snaps through snapd except in a container; here uv
        # comes from the toolchain venv on PATH instead.
        recipe = build / "charmcraft.yaml"
        lines = recipe.read_text().splitlines(keepends=True)
        recipe.write_text("".join(line for line in lines if not line.strip().startswith("build-snaps:")))
        log("not in a container: dropped build-snaps from the build copy (uv is on PATH)")


def pack(build: Path, tools: Path, python: Path) -> Path:
    os_release = build.parent / "os-release.ubuntu-24.04"
    os_release.write_text(UBUNTU_2404_OS_RELEASE)
    charmcraft = tools / "charmcraft"
    script = 'mount --bind "$0" /etc/os-release && exec "$@"'
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        unshare.insert(1, "--map-root-user")
    env = {
        "PATH": os.pathsep.join([str(python.parent), str(tools), HOST_PATH]),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": str(build.parent / "runtime"),
    }
    (build.parent / "runtime").mkdir(mode=0o700, exist_ok=True)
    for key in (
        "PIP_INDEX_URL",
        "UV_INDEX_URL",
        "UV_CACHE_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "SSL_CERT_FILE",
    ):
        if key in os.environ:
            env[key] = os.environ[key]
    cmd = [*unshare, "sh", "-c", script, str(os_release), str(charmcraft), "pack", "--destructive-mode", "-v"]
    proc = subprocess.run(cmd, cwd=build, env=env, text=True, capture_output=True, check=False)
    (build.parent / "charmcraft-pack.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        raise BuildError(f"charmcraft pack failed (exit {proc.returncode}); log in {build.parent}:\n{tail}")
    charms = sorted(build.glob(CHARM_GLOB))
    if len(charms) != 1:
        raise BuildError(f"charmcraft pack made {[c.name for c in charms]}, expected one {CHARM_GLOB}")
    return charms[0]


def analyse(charm: Path, tools: Path) -> list[dict[str, Any]]:
    """``charmcraft analyse --format=json``; raise when a linter reports an error."""
    env = {**os.environ, "PATH": os.pathsep.join([str(tools), HOST_PATH])}
    proc = run(
        [str(tools / "charmcraft"), "analyse", "--format=json", str(charm)],
        what="charmcraft analyse",
        env=env,
    )
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    for result in results:
        log(f"  analyse {result['name']}: {result['result']}")
    errors = [r for r in results if str(r.get("result")).lower() in ("error", "errors", "fatal")]
    if errors:
        raise BuildError(
            "charmcraft analyse reports errors: "
            + "; ".join(f"{r['name']}: {r.get('text', '')}" for r in errors)
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pack the charm with charmcraft, then lint it.")
    parser.add_argument(
        "--out", type=Path, default=REPO, help="where the .charm goes (default: the repository)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=REPO / ".tox" / "pack" / "tmp", help="build tree, logs, result.json"
    )
    parser.add_argument(
        "--toolchain", type=Path, default=REPO / ".tox" / "charmcraft", help="the charmcraft venv (reused)"
    )
    args = parser.parse_args(argv)
    workdir: Path = args.workdir.resolve()
    out: Path = args.out.resolve()
    try:
        if sys.platform != "linux":
            raise BuildError("packing needs Linux (mount namespaces)")
        started = time.perf_counter()
        ensure_debian_packages()
        tools = ensure_toolchain(args.toolchain.resolve())
        python = unit_python()
        setup_seconds = time.perf_counter() - started
        log(f"toolchain ready in {setup_seconds:.1f} s; Python for venv/: {python}")
        build = workdir / "build"
        export_tree(build)
        started = time.perf_counter()
        built = pack(build, tools, python)
        pack_seconds = time.perf_counter() - started
        log(f"packed {built.name} in {pack_seconds:.1f} s ({built.stat().st_size / 1e6:.1f} MB)")
        started = time.perf_counter()
        analysis = analyse(built, tools)
        analyse_seconds = time.perf_counter() - started
    except BuildError as exc:
        print(f"pack: {exc}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(CHARM_GLOB):
        stale.unlink()
    charm = out / built.name
    shutil.copy2(built, charm)
    result = {
        "charm": str(charm),
        "python": str(python),
        "charmcraft": str(tools / "charmcraft"),
        "analysis": analysis,
        "seconds": {"toolchain": setup_seconds, "pack": pack_seconds, "analyse": analyse_seconds},
    }
    (workdir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {charm}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
