"""The charm, driven with ops.testing (state-transition API) against the fake API server over HTTP.

The charm builds its lightkube client with `KubeConfig.from_env()`: no in-cluster service
account exists here, so `$KUBECONFIG` (pointing at a `FakeKube`) is what it uses, over real HTTP.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ops
import pytest
import yaml
from ops import testing

import charm
import istio_cilium_compat.collect as kube
from charm import IstioCiliumCompatCharm
from istio_cilium_compat.manifests import load_snapshot
from istio_cilium_compat.render import NO_APPLY, NO_CONFIG, RESULT_KEYS, action_results, render
from istio_cilium_compat.report import Finding, Report, Severity
from istio_cilium_compat.rules import evaluate
from tests.clusters import N_CHECKS
from tests.corpus import RESOURCES
from tests.fakekube import FakeKube

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TRUST = "run: juju trust istio-cilium-compat-k8s --scope=cluster"
ZTUNNEL_ALL_NAMESPACES = "/apis/apps/v1/daemonsets"


@dataclass(frozen=True)
class Expected:
    status: type[ops.StatusBase]
    message: str
    verdict: str
    findings: frozenset[str]


BROKEN = "canonical-k8s-1.36-charmed-istio"
RECOMMENDED = "canonical-k8s-1.36-recommended"
BROKEN_134 = "canonical-k8s-1.34-charmed-istio"
SOCKETLB_OFF = "kube-proxy-socketlb-off"
DEFAULT_DENY = "default-deny-without-probe-allowance"

EXPECTED: dict[str, Expected] = {
    BROKEN: Expected(
        testing.BlockedStatus,
        "CIC001: Socket LB hides Services from ztunnel: set bpf-lb-sock-hostns-only=true (+3 more); "
        "run check-compatibility",
        "incompatible",
        frozenset({"cic001", "cic004", "cic019", "cic022"}),
    ),
    RECOMMENDED: Expected(
        testing.ActiveStatus,
        f"Cilium 1.19.4: compatible with Istio ambient ({N_CHECKS} checks)",
        "compatible",
        frozenset(),
    ),
    BROKEN_134: Expected(
        testing.BlockedStatus,
        "CIC001: Socket LB hides Services from ztunnel: set bpf-lb-sock-hostns-only=true (+2 more); "
        "run check-compatibility",
        "incompatible",
        frozenset({"cic001", "cic004", "cic019"}),
    ),
    SOCKETLB_OFF: Expected(
        testing.ActiveStatus,
        f"Cilium 1.16.12: compatible with Istio ambient ({N_CHECKS} checks)",
        "compatible",
        frozenset({"cic001"}),
    ),
    DEFAULT_DENY: Expected(
        testing.ActiveStatus,
        "CIC005: Ambient pods under ingress default-deny without a 169.254.7.127 allowance: probes fail; "
        "run check-compatibility",
        "compatible",
        frozenset({"cic005"}),
    ),
}


def example_dirs() -> list[str]:
    return sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def test_every_example_has_an_expectation() -> None:
    assert example_dirs() == sorted(EXPECTED)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, FakeKube]]:
    """One fake API server per example, shared by the tests that do not alter it."""
    started = {name: FakeKube.from_paths(EXAMPLES / name).start() for name in EXPECTED}
    yield started
    for fake in started.values():
        fake.stop()


@pytest.fixture
def use_kube(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[FakeKube], FakeKube]:
    """Point $KUBECONFIG at a fake and forget its earlier requests."""

    def use(fake: FakeKube) -> FakeKube:
        monkeypatch.setenv("KUBECONFIG", str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
        fake.clear_requests()
        return fake

    return use


@pytest.fixture(autouse=True)
def collect_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Count (and record the arguments of) every check: one per dispatched event."""
    calls: list[dict[str, Any]] = []
    real = kube.read_snapshot

    def counting(client: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(client, **kwargs)

    monkeypatch.setattr(kube, "read_snapshot", counting)
    # Never read a real cluster from the developer's environment.
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    return calls


@pytest.fixture
def ctx() -> testing.Context[IstioCiliumCompatCharm]:
    return testing.Context(IstioCiliumCompatCharm)


def run(
    ctx: testing.Context[IstioCiliumCompatCharm],
    event: Any,
    state: testing.State,
    calls: list[dict[str, Any]],
) -> testing.State:
    """Run one event and check that it did exactly one check."""
    before = len(calls)
    out = ctx.run(event, state)
    assert len(calls) - before == 1, "the check must run exactly once per dispatched event"
    return out


def assert_status(status: Any, cls: type[ops.StatusBase], message: str) -> None:
    """`status` is the output state's (ops.testing's status classes subclass ops')."""
    assert type(status) is cls, f"{type(status).__name__}({status.message!r})"
    assert status.message == message
    assert len(status.message) <= 120 and "\n" not in status.message


def istio_relation(data: dict[str, str] | None = None, app: str = "istio-k8s") -> testing.Relation:
    return testing.Relation(
        "istio-metadata",
        remote_app_name=app,
        remote_app_data=data if data is not None else {"root_namespace": "istio-system"},
    )


def ztunnel_paths(fake: FakeKube) -> list[str]:
    return [
        r.path
        for r in fake.requests
        if r.path.endswith("/daemonsets")
        and any("metadata.name=ztunnel" in v for v in r.query.get("fieldSelector", []))
    ]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- statuses per example


@pytest.mark.parametrize("example", sorted(EXPECTED))
@pytest.mark.parametrize("hook", ["install", "start", "update_status", "config_changed", "upgrade_charm"])
def test_status_per_example(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
    example: str,
    hook: str,
) -> None:
    use_kube(servers[example])
    out = run(ctx, getattr(ctx.on, hook)(), testing.State(), collect_calls)
    want = EXPECTED[example]
    assert_status(out.unit_status, want.status, want.message)
    assert collect_calls[-1] == {"cilium_namespace": None}


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_leader_elected(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
    example: str,
) -> None:
    use_kube(servers[example])
    out = run(ctx, ctx.on.leader_elected(), testing.State(leader=True), collect_calls)
    want = EXPECTED[example]
    assert_status(out.unit_status, want.status, want.message)


@pytest.mark.parametrize("example", sorted(EXPECTED))
@pytest.mark.parametrize("event", ["relation_joined", "relation_changed"])
def test_relation_root_namespace_is_used(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
    example: str,
    event: str,
) -> None:
    fake = use_kube(servers[example])
    relation = istio_relation({"root_namespace": "istio-system"})
    out = run(ctx, getattr(ctx.on, event)(relation), testing.State(relations={relation}), collect_calls)
    want = EXPECTED[example]
    assert_status(out.unit_status, want.status, want.message)
    assert collect_calls[-1] == {
        "cilium_namespace": None,
        "istio_namespace": "istio-system",
        "istio_namespace_source": "relation",
    }
    # ztunnel is listed cluster-wide whatever the root, so a wrong root namespace shows (CIC008).
    assert ztunnel_paths(fake) == ["/apis/apps/v1/daemonsets"]


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_relation_broken_falls_back_to_discovery(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
    example: str,
) -> None:
    fake = use_kube(servers[example])
    relation = istio_relation({"root_namespace": "elsewhere"})
    out = run(ctx, ctx.on.relation_broken(relation), testing.State(relations={relation}), collect_calls)
    want = EXPECTED[example]
    assert_status(out.unit_status, want.status, want.message)
    assert collect_calls[-1] == {"cilium_namespace": None}
    assert ztunnel_paths(fake) == [ZTUNNEL_ALL_NAMESPACES]


def test_relation_departed(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
) -> None:
    use_kube(servers[BROKEN])
    relation = testing.Relation(
        "istio-metadata", remote_app_name="istio-k8s", remote_app_data={"root_namespace": "istio-system"}
    )
    out = run(
        ctx,
        ctx.on.relation_departed(relation, remote_unit=0, departing_unit=0),
        testing.State(relations={relation}),
        collect_calls,
    )
    assert_status(out.unit_status, testing.BlockedStatus, EXPECTED[BROKEN].message)


def test_relation_namespace_without_istio_changes_the_findings(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
) -> None:
    """The relation's namespace is really what the check reads: no ztunnel there, so CIC008."""
    use_kube(servers[RECOMMENDED])
    relation = istio_relation({"root_namespace": "other-model"})
    run(ctx, ctx.on.action("check-compatibility"), testing.State(relations={relation}), collect_calls)
    results = ctx.action_results or {}
    assert "cic008" in results["findings"]
    assert "Istio root namespace other-model (relation)" in results["report"]


def test_option_overrides_relation(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
) -> None:
    fake = use_kube(servers[BROKEN])
    relation = istio_relation({"root_namespace": "elsewhere"})
    state = testing.State(
        relations={relation},
        config={"istio-root-namespace": "istio-system", "cilium-namespace": "kube-system"},
    )
    out = run(ctx, ctx.on.config_changed(), state, collect_calls)
    assert_status(out.unit_status, testing.BlockedStatus, EXPECTED[BROKEN].message)
    assert collect_calls[-1] == {
        "cilium_namespace": "kube-system",
        "istio_namespace": "istio-system",
        "istio_namespace_source": "option",
    }
    # ztunnel is listed cluster-wide whatever the root, so a wrong root namespace shows (CIC008).
    assert ztunnel_paths(fake) == ["/apis/apps/v1/daemonsets"]


# ----------------------------------------------------------------------------- malformed relation data


@pytest.mark.parametrize(
    "data",
    [
        {},  # joined before istio-k8s wrote anything
        {"root-namespace": "istio-system"},  # root_namespace missing
        {"root_namespace": "Not A Namespace!"},
        {"root_namespace": '{"name": "istio-system"}'},
        {"root_namespace": ""},
        {"root_namespace": "x" * 64},
    ],
    ids=["empty", "missing", "invalid-name", "json", "blank", "too-long"],
)
def test_bad_relation_data_means_discovery(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    data: dict[str, str],
) -> None:
    fake = use_kube(servers[BROKEN])
    relation = istio_relation(data)
    caplog.set_level(logging.INFO, logger="charm")
    out = run(ctx, ctx.on.relation_changed(relation), testing.State(relations={relation}), collect_calls)
    assert_status(out.unit_status, testing.BlockedStatus, EXPECTED[BROKEN].message)
    assert collect_calls[-1] == {"cilium_namespace": None}
    assert ztunnel_paths(fake) == [ZTUNNEL_ALL_NAMESPACES]
    # The reason is logged (juju debug-log).
    reasons = [
        r.getMessage() for r in caplog.records if r.name == "charm" and "discovering" in r.getMessage()
    ]
    assert reasons, caplog.text


def test_two_related_apps_means_discovery(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
) -> None:
    use_kube(servers[BROKEN])
    first = istio_relation({"root_namespace": "istio-system"}, app="istio-k8s")
    second = istio_relation({"root_namespace": "istio-b"}, app="istio-b")
    out = run(ctx, ctx.on.relation_changed(first), testing.State(relations={first, second}), collect_calls)
    assert_status(out.unit_status, testing.BlockedStatus, EXPECTED[BROKEN].message)
    assert collect_calls[-1] == {"cilium_namespace": None}


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("cilium-namespace", "Kube-System"),
        ("cilium-namespace", "kube_system"),
        ("istio-root-namespace", "-istio"),
        ("istio-root-namespace", "a" * 200),
        ("istio-root-namespace", "istio\nsystem"),
    ],
)
def test_invalid_config_blocks(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    option: str,
    value: str,
) -> None:
    fake = use_kube(servers[RECOMMENDED])
    out = ctx.run(ctx.on.config_changed(), testing.State(config={option: value}))
    status = out.unit_status
    assert isinstance(status, testing.BlockedStatus)
    assert status.message.startswith(f"invalid config: {option}=")
    assert status.message.endswith("is not a namespace name (DNS-1123 label)")
    assert len(status.message) <= 120 and "\n" not in status.message
    assert fake.requests == []  # nothing read with a bad option
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("check-compatibility"), testing.State(config={option: value}))
    assert failed.value.message == status.message


def test_warnings_block(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
) -> None:
    use_kube(servers[DEFAULT_DENY])
    out = run(ctx, ctx.on.config_changed(), testing.State(config={"warnings-block": True}), collect_calls)
    assert_status(out.unit_status, testing.BlockedStatus, EXPECTED[DEFAULT_DENY].message)
    # Info findings never block.
    use_kube(servers[SOCKETLB_OFF])
    out = run(ctx, ctx.on.config_changed(), testing.State(config={"warnings-block": True}), collect_calls)
    assert_status(out.unit_status, testing.ActiveStatus, EXPECTED[SOCKETLB_OFF].message)


# ----------------------------------------------------------------------------- cannot read


def test_forbidden_configmaps_does_not_hide_what_the_daemonsets_prove(
    ctx: testing.Context[IstioCiliumCompatCharm],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
) -> None:
    """One 403 (cilium-config) must not mask the error the readable DaemonSets prove (CIC004)."""
    with FakeKube.from_paths(EXAMPLES / BROKEN) as fake:
        fake.forbid("configmaps")
        use_kube(fake)
        out = run(ctx, ctx.on.update_status(), testing.State(), collect_calls)
        assert_status(
            out.unit_status,
            testing.BlockedStatus,
            "CIC004: Istio CNI writes to other… (+3 more); "
            "cannot read configmaps: juju trust istio-cilium-compat-k8s --scope=cluster",
        )
        ctx.run(ctx.on.action("check-compatibility"), testing.State())
        results = ctx.action_results or {}
        assert results["verdict"] == "incompatible"
        assert results["summary"] == out.unit_status.message
        assert {"cic004", "cic007", "cic014"} <= set(results["findings"])
        assert results["findings"]["cic004"]["severity"] == "error"


def test_forbidden_without_an_error_finding_says_what_to_grant(
    ctx: testing.Context[IstioCiliumCompatCharm],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
) -> None:
    with FakeKube.from_paths(EXAMPLES / RECOMMENDED) as fake:
        fake.forbid("ciliumnodeconfigs", "cilium.io")
        use_kube(fake)
        out = run(ctx, ctx.on.update_status(), testing.State(), collect_calls)
        assert_status(
            out.unit_status, testing.BlockedStatus, f"cannot read ciliumnodeconfigs.cilium.io; {TRUST}"
        )
        ctx.run(ctx.on.action("check-compatibility"), testing.State())  # cilium-config was read
        assert (ctx.action_results or {})["verdict"] == "unknown"


def test_nothing_readable_fails_the_actions(
    ctx: testing.Context[IstioCiliumCompatCharm],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
) -> None:
    with FakeKube.from_paths(EXAMPLES / RECOMMENDED) as fake:
        for plural, group in RESOURCES:
            fake.forbid(plural, group)
        use_kube(fake)
        out = run(ctx, ctx.on.update_status(), testing.State(), collect_calls)
        status = out.unit_status
        assert isinstance(status, testing.BlockedStatus)
        assert status.message.startswith("cannot read configmaps, ")
        assert status.message.endswith(f"; {TRUST}")
        assert len(status.message) <= 120
        for action in ("check-compatibility", "render-cilium-config"):
            with pytest.raises(testing.ActionFailed) as failed:
                ctx.run(ctx.on.action(action), testing.State())
            assert failed.value.message == status.message


def test_unreachable_api_waits(
    ctx: testing.Context[IstioCiliumCompatCharm],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeKube.from_paths(EXAMPLES / BROKEN).start()
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    fake.stop()  # nothing listens on that port any more
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    out = run(ctx, ctx.on.update_status(), testing.State(), collect_calls)
    status = out.unit_status
    assert isinstance(status, testing.WaitingStatus)
    assert status.message.startswith("Kubernetes API unreachable: ConnectError")
    assert status.message.endswith("; retrying at next event")
    assert len(status.message) <= 120
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("check-compatibility"), testing.State())
    assert failed.value.message.startswith("cannot reach the Kubernetes API: ConnectError")
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("render-cilium-config", params={"target": "helm"}), testing.State())
    assert failed.value.message.startswith("cannot reach the Kubernetes API: ")


def test_closed_port_from_a_fresh_socket(
    ctx: testing.Context[IstioCiliumCompatCharm],
    collect_calls: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{closed_port()}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    out = run(ctx, ctx.on.start(), testing.State(), collect_calls)
    assert isinstance(out.unit_status, testing.WaitingStatus)


def test_api_timeout_waits(
    ctx: testing.Context[IstioCiliumCompatCharm],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(charm, "API_TIMEOUT", 0.3)
    with FakeKube.from_paths(EXAMPLES / BROKEN) as fake:
        fake.fault("/", delay=2)
        use_kube(fake)
        out = run(ctx, ctx.on.update_status(), testing.State(), collect_calls)
    status = out.unit_status
    assert isinstance(status, testing.WaitingStatus)
    assert status.message.startswith("Kubernetes API unreachable: ")
    assert status.message.endswith("; retrying at next event")


def test_connection_reset(
    ctx: testing.Context[IstioCiliumCompatCharm],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
) -> None:
    """Connections reset without an answer: the API is unreachable, as for a closed port."""
    with FakeKube.from_paths(EXAMPLES / RECOMMENDED) as fake:
        fake.fault("/", reset=True)
        use_kube(fake)
        out = run(ctx, ctx.on.update_status(), testing.State(), collect_calls)
        status = out.unit_status
        assert isinstance(status, testing.WaitingStatus), status
        assert status.message.startswith("Kubernetes API unreachable: ")
        assert status.message.endswith("; retrying at next event")
        for action in ("check-compatibility", "render-cilium-config"):
            with pytest.raises(testing.ActionFailed) as failed:
                ctx.run(ctx.on.action(action), testing.State())
            assert failed.value.message.startswith("cannot reach the Kubernetes API: ")


def test_render_without_cilium_config_fails(
    ctx: testing.Context[IstioCiliumCompatCharm],
    use_kube: Callable[[FakeKube], FakeKube],
) -> None:
    """No cilium-config (not installed, or unreadable): rendering "nothing to change" would be wrong."""
    with FakeKube() as fake:
        use_kube(fake)
        out = ctx.run(ctx.on.action("check-compatibility"), testing.State())
        assert (ctx.action_results or {})["verdict"] == "unknown"
        assert isinstance(out.unit_status, testing.BlockedStatus)
        assert out.unit_status.message.startswith("CIC007: ")
        with pytest.raises(testing.ActionFailed) as failed:
            ctx.run(ctx.on.action("render-cilium-config"), testing.State())
        assert failed.value.message.startswith("no cilium-config was read, nothing to render: CIC007: ")


def test_no_credentials_waits(
    ctx: testing.Context[IstioCiliumCompatCharm],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    out = ctx.run(ctx.on.install(), testing.State())
    status = out.unit_status
    assert isinstance(status, testing.WaitingStatus)
    assert status.message.startswith("Kubernetes API unreachable: no Kubernetes credentials")
    assert status.message.endswith("; retrying at next event")
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("check-compatibility"), testing.State())
    assert failed.value.message.startswith("cannot reach the Kubernetes API: no Kubernetes credentials")


def test_unexpected_exception_blocks_without_raising(
    ctx: testing.Context[IstioCiliumCompatCharm],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("kaput\nsecond line")

    monkeypatch.setattr(kube, "in_cluster_client", boom)
    out = ctx.run(ctx.on.update_status(), testing.State())
    assert_status(
        out.unit_status,
        testing.BlockedStatus,
        "internal error: RuntimeError: kaput second line; see juju debug-log",
    )
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("check-compatibility"), testing.State())
    assert failed.value.message == out.unit_status.message


# ----------------------------------------------------------------------------- actions


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_check_compatibility_action(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
    example: str,
) -> None:
    use_kube(servers[example])
    out = run(ctx, ctx.on.action("check-compatibility"), testing.State(), collect_calls)
    want = EXPECTED[example]
    results = ctx.action_results or {}
    assert results["verdict"] == want.verdict
    assert results["summary"] == want.message
    findings: dict[str, dict[str, str]] = results.get("findings", {})
    assert set(findings) == set(want.findings)
    for key, finding in findings.items():
        assert set(finding) == {"severity", "summary", "evidence", "fix"}
        assert finding["severity"] in {"error", "warning", "info"}
        assert all(isinstance(v, str) and v for v in finding.values())
        assert key.upper() in results["report"]
    assert f"Verdict: {want.verdict} " in results["report"]
    # The action's check is the status's check.
    assert_status(out.unit_status, want.status, want.message)


def test_check_compatibility_evidence_of_broken_cluster(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
) -> None:
    use_kube(servers[BROKEN])
    ctx.run(ctx.on.action("check-compatibility"), testing.State())
    findings = (ctx.action_results or {})["findings"]
    assert findings["cic001"]["severity"] == "error"
    assert "bpf-lb-sock-hostns-only" in findings["cic001"]["evidence"]
    assert "socketLB.hostNamespaceOnly=true" in findings["cic001"]["fix"]
    assert findings["cic004"]["severity"] == "error"
    assert "/var/snap/microk8s" in findings["cic004"]["evidence"]


@pytest.mark.parametrize("example", sorted(EXPECTED))
@pytest.mark.parametrize("target", ["auto", "helm", "cilium-cli", "configmap-patch", "canonical-k8s"])
def test_render_action(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    collect_calls: list[dict[str, Any]],
    example: str,
    target: str,
) -> None:
    use_kube(servers[example])
    run(ctx, ctx.on.action("render-cilium-config", params={"target": target}), testing.State(), collect_calls)
    results = ctx.action_results or {}
    # The same content as `istio-cilium-compat render -o json` on the saved cluster, keys spelled for Juju.
    snapshot = load_snapshot([EXAMPLES / example])
    expected = render(snapshot, evaluate(snapshot), target=target)
    assert results == action_results(expected)
    assert set(results) == {key.replace("_", "-") for key in RESULT_KEYS}
    assert results["scope"] == "changes"
    assert results["nothing-to-change"] in {"true", "false"}
    if target not in ("auto", "helm"):
        assert results["target"] == target
    if example == BROKEN:
        assert results["target"] in ("canonical-k8s", "cilium-cli", "configmap-patch")  # helm: k8sd's own
        assert results["nothing-to-change"] == "false"
        if results["target"] == "canonical-k8s":
            assert 'juju config -m istio-system istio-k8s platform=""' in results["istio"]
            assert results["addressed"] == "CIC001, CIC004, CIC022"
    if example == RECOMMENDED:
        assert results["nothing-to-change"] == "true"
        assert (results["config"], results["apply"]) == (NO_CONFIG, NO_APPLY)
    assert all(results.values()), results  # no empty values (unverified whether Juju keeps them)


def test_render_helm_values_for_broken_cluster(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
) -> None:
    use_kube(servers[BROKEN])
    ctx.run(
        ctx.on.action("render-cilium-config", params={"target": "helm", "scope": "full"}), testing.State()
    )
    results = ctx.action_results or {}
    assert results["scope"] == "full"
    assert results["target"] == "canonical-k8s"  # k8sd's release: never a plain helm upgrade
    values = yaml.safe_load(results["config"])
    assert isinstance(values, dict)
    assert values.get("socketLB", {}).get("hostNamespaceOnly") is True


def test_render_auto_on_canonical_k8s(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
) -> None:
    use_kube(servers[BROKEN])
    ctx.run(ctx.on.action("render-cilium-config"), testing.State())
    assert (ctx.action_results or {})["target"].startswith("canonical-k8s")


@pytest.mark.parametrize(("params"), [{"target": "kustomize"}, {"scope": "some"}])
def test_render_bad_param_fails(
    ctx: testing.Context[IstioCiliumCompatCharm],
    servers: dict[str, FakeKube],
    use_kube: Callable[[FakeKube], FakeKube],
    params: dict[str, str],
) -> None:
    use_kube(servers[BROKEN])
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("render-cilium-config", params=params), testing.State())
    assert failed.value.message.startswith("invalid parameter: ")
    assert next(iter(params.values())) in failed.value.message


def test_render_does_not_import_jinja2_elsewhere() -> None:
    """jinja2 costs ~0.1 s per hook: importing the charm module must not pull it in."""
    import subprocess
    import sys

    code = "import sys; import charm; print('jinja2' in sys.modules, 'pydantic' in sys.modules)"
    env = {"PYTHONPATH": f"{REPO / 'src'}:{REPO}:{REPO / 'lib'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------- helpers


HINTS = charm.Hints(app="istio-cilium-compat-k8s", unit="istio-cilium-compat-k8s/0")


@pytest.mark.parametrize("n", [1, 2, 5, 40])
def test_forbidden_message_fits(n: int) -> None:
    names = [f"resource{i:02d}.some.group.example.io" for i in range(n)]
    message = charm.forbidden_message(names, HINTS)
    assert len(message) <= 120
    assert message.startswith("cannot read ")
    assert message.endswith(f"; {TRUST}")
    if n > 2:
        assert "more)" in message or "resource types" in message


def test_hints_name_this_application_and_unit(
    use_kube: Callable[[FakeKube], FakeKube], collect_calls: list[dict[str, Any]]
) -> None:
    """Deployed as `cic` (juju deploy ... cic), the status says `juju run cic/3 ...`, `juju trust cic`."""
    ctx = testing.Context(IstioCiliumCompatCharm, app_name="cic", unit_id=3)
    with FakeKube.from_paths(EXAMPLES / RECOMMENDED) as fake:
        fake.fault("ciliumnetworkpolicies", status=500)
        use_kube(fake)
        out = run(ctx, ctx.on.update_status(), testing.State(), collect_calls)
        assert_status(
            out.unit_status,
            testing.BlockedStatus,
            "CIC015: Could not read ciliumnetworkpolicies.cilium.io; juju run cic/3 check-compatibility",
        )
        fake.clear_faults()
        fake.forbid("ciliumnodeconfigs", "cilium.io")
        out = run(ctx, ctx.on.update_status(), testing.State(), collect_calls)
    assert_status(
        out.unit_status,
        testing.BlockedStatus,
        "cannot read ciliumnodeconfigs.cilium.io; run: juju trust cic --scope=cluster",
    )


def _report(*findings: tuple[str, Severity, str]) -> Report:
    return Report(
        findings=tuple(Finding(i, sev, summary, "", (), "fix") for i, sev, summary in findings),
        checks=("CIC001",) * 21,
        cilium={"version": "1.17.9"},
    )


def test_status_message_prefers_the_full_command_when_it_fits() -> None:
    short = _report(("CIC005", Severity.WARNING, "probes fail"))
    assert charm.status_message(short, HINTS) == (
        "CIC005: probes fail; juju run istio-cilium-compat-k8s/0 check-compatibility"
    )
    long = _report(("CIC001", Severity.ERROR, "x" * 70), ("CIC005", Severity.WARNING, "probes fail"))
    message = charm.status_message(long, HINTS)
    assert message == "CIC001: " + "x" * 70 + " (+1 more); run check-compatibility"
    longer = _report(("CIC001", Severity.ERROR, "y" * 200))
    message = charm.status_message(longer, HINTS)
    assert len(message) == 120 and message.endswith("y…; run check-compatibility")
    assert charm.status_message(_report(("CIC013", Severity.INFO, "info only")), HINTS) == (
        "Cilium 1.17.9: compatible with Istio ambient (21 checks)"
    )


def test_status_message_with_refused_reads_keeps_the_error_and_the_trust_hint() -> None:
    report = _report(("CIC004", Severity.ERROR, "z" * 100), ("CIC014", Severity.WARNING, "not permitted"))
    names = [f"resource{i:02d}.some.group.example.io" for i in range(6)]
    message = charm.status_message(report, HINTS, names)
    assert len(message) <= 120
    assert message.startswith("CIC004: zzz") and "… (+1 more); cannot read " in message
    assert message.endswith(": juju trust istio-cilium-compat-k8s --scope=cluster")


def test_unreachable_message_fits() -> None:
    message = charm.unreachable_message("x" * 500 + "\nsecond line")
    assert len(message) <= 120
    assert message.endswith("…; retrying at next event")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("istio-system", True),
        ("a", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("Istio", False),
        ("-a", False),
    ],
)
def test_is_namespace_name(value: str, ok: bool) -> None:
    assert charm.is_namespace_name(value) is ok


# ----------------------------------------------------------------------------- as Juju runs it


def test_real_hook_process(servers: dict[str, FakeKube], tmp_path: Path) -> None:
    """`python src/charm.py` as a Juju hook (fake hook tools): status set, few hook-tool calls.

    ops forwards every log record to `juju-log` (a subprocess each): the HTTP client's own
    per-request logging must stay quiet or a hook takes seconds.
    """
    import sys

    from tests.harness import run_action, run_hook

    fake = servers[BROKEN]
    env = {"KUBECONFIG": str(fake.write_kubeconfig(tmp_path / "kubeconfig"))}
    result = run_hook(REPO, "update-status", env=env, python=sys.executable)
    assert result.returncode == 0, result.stderr
    assert result.status_sets() == [("blocked", EXPECTED[BROKEN].message)]
    assert len(result.calls_to("juju-log")) < 15, [c.args for c in result.calls_to("juju-log")]
    action = run_action(REPO, "check-compatibility", env=env, python=sys.executable)
    assert action.returncode == 0, action.stderr
    assert action.action_results()["verdict"] == "incompatible"
