"""The charm under API faults, hook by hook as Juju runs it: a fresh process, fake hook tools.

Each hook process reads a fake kube-apiserver over real HTTP through `$KUBECONFIG`. A
fault must never make a hook fail: it exits 0 and its `status-set` says what went wrong
and what to do. Then a safety net: every event the charm observes and every action,
against a recording fake loaded with the canonical example, send only GETs and never
touch a Secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import BY_NAME, Case
from tests.fakekube import FakeKube
from tests.harness import HookResult, HookState, RelationState, run_action, run_hook

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "canonical-k8s-1.36-charmed-istio"
EXAMPLE_STATUS = (
    "blocked",
    "CIC001: Socket LB hides Services from ztunnel: set bpf-lb-sock-hostns-only=true (+3 more); "
    "run check-compatibility",
)
WORKERS = 2
"""Hooks run in parallel: each is a separate process, the fake server is threaded."""


def last_status(result: HookResult) -> tuple[str, str]:
    sets = result.status_sets()
    assert sets, f"no status-set; stderr:\n{result.stderr}"
    return sets[-1]


def assert_explains(result: HookResult, kind: str, message: str | re.Pattern[str]) -> None:
    assert result.returncode == 0, result.stderr
    status, text = last_status(result)
    assert status == kind, text
    if isinstance(message, re.Pattern):
        assert message.fullmatch(text), text
    else:
        assert text == message
    assert len(text) <= 120 and "\n" not in text


def istio_relation(data: dict[str, str]) -> RelationState:
    return RelationState(
        id="istio-metadata:7",
        remote_app="istio-k8s",
        remote_units=["istio-k8s/0"],
        remote_app_data=data,
    )


# ----------------------------------------------------------------------------- faults


FAULTS = [
    "forbidden-configmaps",
    "forbidden-everything",
    "server-500-on-ciliumnetworkpolicies",
    "reset-on-networkpolicies",
    "reset-everything",
    "truncated-networkpolicies",
    "slow-server-beyond-timeout",  # the charm's own timeout (5 s): this hook takes that long
    "api-down",
]


def run_update_status(case: Case, tmp_path: Path) -> HookResult:
    with FakeKube(case.objects) as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
        if case.setup is not None:
            case.setup(fake)
        result = run_hook(REPO, "update-status", env={"KUBECONFIG": str(kubeconfig)}, timeout=30)
        assert {r.method for r in fake.requests} <= {"GET"}
    return result


@pytest.mark.parametrize("name", FAULTS)
def test_fault_is_explained_in_the_status(name: str, tmp_path: Path) -> None:
    case = BY_NAME[name]
    result = run_update_status(case, tmp_path)
    kind, message = case.expected_status
    assert_explains(result, kind, message)


def test_fault_statuses_name_the_remedy() -> None:
    """What each class of fault tells the operator to do (the exact texts are in the corpus)."""
    remedies = {
        "forbidden-configmaps": ("blocked", "juju trust istio-cilium-compat-k8s --scope=cluster"),
        "forbidden-everything": ("blocked", "juju trust istio-cilium-compat-k8s --scope=cluster"),
        "server-500-on-ciliumnetworkpolicies": ("blocked", "Could not read ciliumnetworkpolicies.cilium.io"),
        "reset-on-networkpolicies": ("blocked", "Could not read networkpolicies.networking.k8s.io"),
        "truncated-networkpolicies": ("blocked", "Could not read networkpolicies.networking.k8s.io"),
        "reset-everything": ("waiting", "Kubernetes API unreachable"),
        "slow-server-beyond-timeout": ("waiting", "Kubernetes API unreachable: ReadTimeout"),
        "api-down": ("waiting", "Kubernetes API unreachable: ConnectError"),
    }
    assert sorted(remedies) == sorted(FAULTS)
    for name, (kind, needle) in remedies.items():
        status, message = BY_NAME[name].expected_status
        assert status == kind
        assert needle in (message if isinstance(message, str) else message.pattern.replace("\\", ""))


@pytest.mark.parametrize(
    "data",
    [
        {"root_namespace": "Not A Namespace!"},
        {"rootNamespace": "istio-system"},
        {"root_namespace": "x" * 64},
    ],
    ids=["not-a-namespace-name", "missing-key", "too-long"],
)
def test_malformed_relation_data_falls_back_to_discovery(data: dict[str, str], tmp_path: Path) -> None:
    case = BY_NAME["istio-root-discovered-from-ztunnel"]  # Istio in istio-mesh, found via ztunnel
    with FakeKube(case.objects) as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
        result = run_hook(
            REPO,
            "update-status",
            state=HookState(relations=[istio_relation(data)]),
            env={"KUBECONFIG": str(kubeconfig)},
        )
        ztunnel_lists = [
            r.path
            for r in fake.requests
            if "metadata.name=ztunnel" in "".join(r.query.get("fieldSelector", []))
        ]
    kind, message = case.expected_status
    assert isinstance(message, str)
    assert_explains(result, kind, message)
    assert ztunnel_lists == ["/apis/apps/v1/daemonsets"]  # all namespaces: discovery, not the bad value
    warnings = [m for level, m in result.log_records() if level == "WARNING"]
    assert any("istio-metadata" in m for m in warnings), warnings


# ----------------------------------------------------------------------------- read-only, always


HOOKS = [
    "install",
    "start",
    "config-changed",
    "upgrade-charm",
    "update-status",
    "leader-elected",
    "istio-metadata-relation-joined",
    "istio-metadata-relation-changed",
    "istio-metadata-relation-departed",
    "istio-metadata-relation-broken",
]
TARGETS = ["auto", "helm", "cilium-cli", "configmap-patch", "canonical-k8s", "canonical-k8s-charm"]


@pytest.fixture(scope="module")
def recording_kube() -> Iterator[FakeKube]:
    with FakeKube.from_paths(EXAMPLE) as fake:
        yield fake


def test_every_event_and_action_only_reads(recording_kube: FakeKube, tmp_path: Path) -> None:
    kubeconfig = str(recording_kube.write_kubeconfig(tmp_path / "kubeconfig"))
    recording_kube.clear_requests()
    state = HookState(relations=[istio_relation({"root_namespace": "istio-system"})])
    env = {"KUBECONFIG": kubeconfig}

    def hook(name: str) -> HookResult:
        return run_hook(REPO, name, state=state, env=env)

    def action(params: dict[str, Any]) -> HookResult:
        name = "render-cilium-config" if params else "check-compatibility"
        return run_action(REPO, name, params, state=state, env=env)

    runs: list[tuple[str, dict[str, Any] | None]] = [(h, None) for h in HOOKS]
    runs += [("check-compatibility", {})]
    runs += [(f"render-cilium-config target={t}", {"target": t}) for t in TARGETS]
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda r: hook(r[0]) if r[1] is None else action(r[1]), runs))

    for (name, params), result in zip(runs, results, strict=True):
        assert result.returncode == 0, f"{name}:\n{result.stderr}"
        if params is None:
            assert last_status(result) == EXAMPLE_STATUS, name
        else:
            assert result.action_failed() is None, f"{name}: {result.action_failed()}"
            assert result.action_results(), name
    check = results[len(HOOKS)].action_results()
    assert check["verdict"] == "incompatible"
    assert sorted(check["findings"]) == ["cic001", "cic004", "cic019", "cic022"]
    for params, result in zip(runs[len(HOOKS) + 1 :], results[len(HOOKS) + 1 :], strict=True):
        assert params[1] is not None
        rendered = result.action_results()
        asked = params[1]["target"]
        # helm on k8sd's Cilium is rendered for canonical-k8s: a plain helm upgrade would replace k8sd's chart
        assert asked == "auto" or rendered["target"] == ("canonical-k8s" if asked == "helm" else asked)

    requests = recording_kube.requests
    assert len(requests) >= len(runs) * 10  # every hook read the cluster
    assert {r.method for r in requests} == {"GET"}
    assert not [r.path for r in requests if "secret" in r.path.lower()]
    assert recording_kube.server_errors == []
