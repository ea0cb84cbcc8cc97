"""The charm as Juju runs it (fresh process per hook), where per-hook costs are visible."""

from __future__ import annotations

from pathlib import Path

from tests.clusters import N_CHECKS
from tests.fakekube import FakeKube, PodPort, load_objects
from tests.harness import HookState, RelationState, run_action, run_hook
from tests.ztunnel import Conn, exposition, ztunnel_pod

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "canonical-k8s-1.36-recommended"
COMPATIBLE = f"Cilium 1.19.4: compatible with Istio ambient ({N_CHECKS} checks)"
MOVED = "CIC008: No ztunnel in Istio root namespace istio-mesh (from relation); it runs elsewhere; run check-compatibility"


def imported(stderr: str, module: str) -> bool:
    """Whether `-X importtime` output (PYTHONPROFILEIMPORTTIME) shows `module` imported."""
    return any(line.rsplit("|", 1)[-1].strip() == module for line in stderr.splitlines() if "|" in line)


def test_relation_data_is_parsed_only_when_it_changes(tmp_path: Path) -> None:
    """pydantic (via the istio-metadata library) costs ~0.1 s: pay it only for new relation data."""
    relation = RelationState(
        id="istio-metadata:7",
        remote_app="istio-k8s",
        remote_units=["istio-k8s/0"],
        remote_app_data={"root_namespace": "istio-system"},
    )
    state = HookState(relations=[relation])
    unit = tmp_path / "unit"
    with FakeKube.from_paths(EXAMPLE) as fake:
        env = {
            "KUBECONFIG": str(fake.write_kubeconfig(tmp_path / "kubeconfig")),
            "PYTHONPROFILEIMPORTTIME": "1",
        }

        def hook(name: str, hook_state: HookState, status: str = COMPATIBLE) -> str:
            target = "istio-metadata:7" if "relation" in name else None
            result = run_hook(REPO, name, state=hook_state, env=env, unit_dir=unit, relation=target)
            result.assert_ok()
            assert result.status_sets()[-1] == ("active", status)
            return result.stderr

        assert imported(hook("istio-metadata-relation-changed", state), "pydantic")
        assert not imported(hook("update-status", state), "pydantic")
        assert not imported(hook("update-status", state), "charmlibs.interfaces.istio_metadata")
        moved = RelationState(**{**relation.__dict__, "remote_app_data": {"root_namespace": "istio-mesh"}})
        # New data is parsed (and used: there is no ztunnel in istio-mesh).
        assert imported(
            hook("istio-metadata-relation-changed", HookState(relations=[moved]), MOVED), "pydantic"
        )
        assert not imported(hook("update-status", HookState(relations=[moved]), MOVED), "pydantic")


def test_hooks_never_run_or_import_the_runtime_probe(tmp_path: Path) -> None:
    """The probe costs a request per ztunnel pod: only `check-compatibility runtime=true` pays for it."""
    objects = [*load_objects(EXAMPLE), ztunnel_pod("ztunnel-a", "node-a")]
    with FakeKube(objects) as fake:
        body = exposition([Conn("source", ("bookinfo", "a"), ("bookinfo", "b"), None, True, 1)]).encode()
        fake.serve_pod_port("istio-system", "ztunnel-a", 15020, PodPort(body))
        env = {
            "KUBECONFIG": str(fake.write_kubeconfig(tmp_path / "kubeconfig")),
            "PYTHONPROFILEIMPORTTIME": "1",
        }
        for hook in ("install", "update-status"):
            result = run_hook(REPO, hook, env=env).assert_ok()
            assert not imported(result.stderr, "istio_cilium_compat.runtime"), hook
            assert not imported(result.stderr, "istio_cilium_compat.exposition"), hook
        plain = run_action(REPO, "check-compatibility", env=env).assert_ok()
        assert not imported(plain.stderr, "istio_cilium_compat.runtime")
        assert not [r for r in fake.requests if "/proxy/" in r.path]
        probed = run_action(REPO, "check-compatibility", {"runtime": True}, env=env).assert_ok()
        assert imported(probed.stderr, "istio_cilium_compat.runtime")
        assert [r.path for r in fake.requests if "/proxy/" in r.path] == [
            "/api/v1/namespaces/istio-system/pods/ztunnel-a:15020/proxy/metrics"
        ]
    assert "runtime" in probed.action_results()
