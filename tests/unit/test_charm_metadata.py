"""The charm's YAML files agree with each other and with src/charm.py.

Result keys convention (see the comment at the top of actions.yaml): every key an action
handler sets is listed, in backticks, in the action's description after "Results:";
`<id>` stands for a finding id in lower case. The check is dynamic: both actions run
against the broken example cluster (which produces every key, `istio` included).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops import testing

from charm import IstioCiliumCompatCharm

REPO = Path(__file__).resolve().parents[2]
CHARM_SOURCE = (REPO / "src" / "charm.py").read_text()


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((REPO / name).read_text())
    assert isinstance(data, dict), f"{name} is not a mapping"
    return data


METADATA = load("metadata.yaml")
ACTIONS = load("actions.yaml")
CONFIG = load("config.yaml")
CHARMCRAFT = load("charmcraft.yaml")


# ----------------------------------------------------------------------------- charmcraft.yaml


def test_charmcraft_yaml_is_build_only() -> None:
    """With a metadata.yaml, these keys in charmcraft.yaml are dropped or ignored (DESIGN.md)."""
    forbidden = {"requires", "provides", "peers", "actions", "config", "assumes", "containers", "resources"}
    assert not forbidden & set(CHARMCRAFT), sorted(forbidden & set(CHARMCRAFT))
    assert not {"name", "summary", "description"} & set(CHARMCRAFT)
    assert CHARMCRAFT["type"] == "charm"


def test_charmcraft_builds_ubuntu_24_04_amd64() -> None:
    platforms = CHARMCRAFT["platforms"]
    base = CHARMCRAFT.get("base")
    if base is None:
        assert "ubuntu@24.04:amd64" in platforms
    else:
        assert base == "ubuntu@24.04"
        assert "amd64" in platforms


def test_charm_part_installs_the_locked_dependencies() -> None:
    """uv plugin: `uv sync --frozen --extra charm` from uv.lock (tests/unit/test_lock.py)."""
    tomllib = pytest.importorskip("tomllib")

    part = CHARMCRAFT["parts"]["charm"]
    assert part["plugin"] == "uv"
    assert part["uv-extras"] == ["charm"]
    assert (REPO / "uv.lock").is_file()
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) == {"charm"}  # what the charm needs beyond the engine, and only that
    assert {r.split(">")[0] for r in extras["charm"]} == {"ops", "charmlibs-interfaces-istio-metadata"}
    # No pre-lock ways of naming dependencies left beside the lock.
    assert not {"charm-binary-python-packages", "charm-python-packages", "charm-requirements"} & set(part)


def test_charm_ships_its_own_dispatch() -> None:
    """charmcraft 4.5's generated dispatch for the uv plugin fails its own `entrypoint` linter."""
    assert "install -m 0755 dispatch" in CHARMCRAFT["parts"]["charm"]["override-build"]
    dispatch = (REPO / "dispatch").read_text()
    last = [line for line in dispatch.splitlines() if line.strip()][-1]
    assert last.split()[-1] == "./src/charm.py"  # where the linters read the entrypoint
    assert "exec venv/bin/python" in last and "JUJU_DISPATCH_PATH=" in last
    assert os.access(REPO / "dispatch", os.X_OK)


def test_entrypoint_exists() -> None:
    assert (REPO / "src" / "charm.py").is_file()
    assert "ops.main(IstioCiliumCompatCharm)" in CHARM_SOURCE


def test_entrypoint_and_dispatch_are_executable_in_git() -> None:
    """Mode 100644 made every hook exit 126 (issue #12) and fails `charmcraft analyse`.

    A dispatch that runs `exec ./src/charm.py` (charmcraft's for its charm plugin) needs
    the bit, as Juju needs it on ./dispatch. The packed charm keeps the modes git checked
    out, so the index must say 100755 (`git update-index --chmod=+x <path>`).
    """
    assert CHARM_SOURCE.startswith("#!/usr/bin/env python3\n")
    assert os.access(REPO / "src" / "charm.py", os.X_OK), "src/charm.py is not executable here"
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the working tree's mode was checked above")
    for path in ("src/charm.py", "dispatch"):
        listed = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "--stage", "--", path],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert listed[:1] == ["100755"], f"git records {path} as {listed[:1]}"


# ----------------------------------------------------------------------------- metadata.yaml


def test_metadata_identity() -> None:
    assert METADATA["name"] == "istio-cilium-compat-k8s"
    assert METADATA.get("display-name")
    assert METADATA["summary"] and "\n" not in METADATA["summary"].strip()
    # Says why: socket LB loses the Service address (waypoints skipped); mTLS is kept in ambient,
    # so the sidecar-era "plaintext" claim (retired CIC002) must not come back.
    assert "waypoint" in METADATA["description"]
    assert "plaintext" not in METADATA["description"]


def test_metadata_assumes() -> None:
    assert METADATA["assumes"] == ["k8s-api", "juju >= 3.6"]


def test_metadata_istio_metadata_endpoint() -> None:
    endpoint = METADATA["requires"]["istio-metadata"]
    assert endpoint["interface"] == "istio_metadata"
    assert endpoint["limit"] == 1
    assert endpoint["optional"] is True
    assert not METADATA.get("containers")
    assert not METADATA.get("provides") and not METADATA.get("peers")


# ----------------------------------------------------------------------------- config.yaml


def test_config_options() -> None:
    options = CONFIG["options"]
    assert options == {
        "cilium-namespace": {
            "type": "string",
            "default": "",
            "description": options["cilium-namespace"]["description"],
        },
        "istio-root-namespace": {
            "type": "string",
            "default": "",
            "description": options["istio-root-namespace"]["description"],
        },
        "warnings-block": {
            "type": "boolean",
            "default": False,
            "description": options["warnings-block"]["description"],
        },
    }


def test_every_option_is_a_typed_field_of_the_config_class() -> None:
    """ops' load_config passes each option to CharmConfig by name ('-' -> '_')."""
    import dataclasses

    from charm import CharmConfig

    python_type = {"string": "str", "boolean": "bool", "int": "int", "float": "float"}
    fields = {f.name.replace("_", "-"): f for f in dataclasses.fields(CharmConfig)}
    assert set(fields) == set(CONFIG["options"])
    for name, option in CONFIG["options"].items():
        assert fields[name].type == python_type[option["type"]], name
        assert fields[name].default == option["default"], name


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"cilium-namespace": "Kube_System"},
            "invalid config: cilium-namespace='Kube_System' is not a namespace name",
        ),
        ({"istio-root-namespace": "-x"}, "invalid config: istio-root-namespace='-x' is not a namespace name"),
    ],
)
def test_bad_option_blocks_and_fails_the_actions(config: dict[str, str], message: str) -> None:
    ctx = testing.Context(IstioCiliumCompatCharm)
    out = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(message)
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("check-compatibility"), testing.State(config=config))
    assert failed.value.message == out.unit_status.message


def test_only_what_needs_a_handler_is_observed() -> None:
    """collect-status ends every dispatch; lifecycle and relation events need no handler."""
    ctx = testing.Context(IstioCiliumCompatCharm)
    with ctx(ctx.on.update_status(), testing.State()) as manager:
        framework = manager.charm.framework
        observed = sorted(
            kind
            for observer, _, _, kind in framework._observers  # pyright: ignore[reportPrivateUsage]
            if observer == manager.charm.handle.path
        )
    assert observed == ["check_compatibility_action", "collect_unit_status", "render_cilium_config_action"]


# ----------------------------------------------------------------------------- actions.yaml


def test_actions_schema() -> None:
    assert set(ACTIONS) == {"check-compatibility", "render-cilium-config"}
    for name, action in ACTIONS.items():
        assert action.get("additionalProperties") is False, name
        assert action.get("description"), name
    assert ACTIONS["check-compatibility"]["params"] == {
        "runtime": {
            "type": "boolean",
            "description": ACTIONS["check-compatibility"]["params"]["runtime"]["description"],
            "default": False,
        }
    }
    params = ACTIONS["render-cilium-config"]["params"]
    assert params["target"]["enum"] == [
        "auto",
        "helm",
        "cilium-cli",
        "configmap-patch",
        "canonical-k8s",
        "canonical-k8s-charm",
    ]
    assert params["target"]["default"] == "auto"
    assert params["scope"]["enum"] == ["changes", "full"]
    assert params["scope"]["default"] == "changes"


def test_render_targets_match_the_cli() -> None:
    from istio_cilium_compat.cli import TARGETS

    assert list(TARGETS) == ACTIONS["render-cilium-config"]["params"]["target"]["enum"]


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_has_an_observed_handler(
    action: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An unobserved action would neither fail nor set results; ours fail without an API."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    assert hasattr(IstioCiliumCompatCharm, "on")
    ctx = testing.Context(IstioCiliumCompatCharm)
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action(action), testing.State())
    assert "cannot reach the Kubernetes API" in failed.value.message


def documented_results(action: str) -> set[str]:
    description: str = ACTIONS[action]["description"]
    _, sep, tail = description.partition("Results:")
    assert sep, f"{action}: description has no 'Results:' part"
    return set(re.findall(r"`([a-z0-9<>.-]+)`", tail))


def flatten(results: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            keys |= flatten(value, name + ".")  # pyright: ignore[reportUnknownArgumentType]
        else:
            keys.add(name)
    return keys


def normalise(key: str) -> str:
    return re.sub(r"^findings\.cic\d{3}\.", "findings.<id>.", key)


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("check-compatibility", {}),
        ("check-compatibility", {"runtime": True}),
        ("render-cilium-config", {}),
        ("render-cilium-config", {"target": "helm"}),
    ],
)
def test_every_result_key_is_documented(
    action: str, params: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.fakekube import FakeKube

    with FakeKube.from_paths(REPO / "examples" / "canonical-k8s-1.36-charmed-istio") as fake:
        monkeypatch.setenv("KUBECONFIG", str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
        ctx = testing.Context(IstioCiliumCompatCharm)
        ctx.run(ctx.on.action(action, params=params), testing.State())
    produced = {normalise(k) for k in flatten(ctx.action_results or {})}
    documented = documented_results(action)
    assert produced, "the action set no results"
    assert produced <= documented, f"undocumented result keys: {sorted(produced - documented)}"
    # The broken example produces every documented key (istio and findings included).
    optional = {"runtime"} if action == "check-compatibility" and not params.get("runtime") else set()
    leaves = {k for k in documented if k != "findings"} - optional
    assert leaves <= produced, f"documented but never set: {sorted(leaves - produced)}"


def test_result_keys_are_valid_for_juju() -> None:
    """ops rejects keys outside [a-z0-9.-] (starting and ending alphanumeric)."""
    for action in ACTIONS:
        for key in documented_results(action):
            assert re.fullmatch(r"[a-z0-9]([a-z0-9.<>-]*[a-z0-9>])?", key), key
