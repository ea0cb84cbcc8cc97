"""The hostile-cluster corpus (tests/corpus.py): exact findings over the fake API and from manifests.

(a) Each cluster is served by the fake API server over real HTTP and read by the real
collector: the finding ids, the verdict and the charm's unit status must be exactly the
expected ones, and the collector must only have sent GETs and never asked for a Secret.
(b) Where the cluster makes sense as saved manifests, `istio-cilium-compat check
--manifests` must give the same ids, the exit code DESIGN.md promises, and no traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import ops
import pytest
import yaml_rs

from charm import Hints, judge
from istio_cilium_compat.cli import main
from istio_cilium_compat.collect import client_from_kubeconfig, read_snapshot
from istio_cilium_compat.report import Report
from istio_cilium_compat.rules import evaluate
from istio_cilium_compat.snapshot import ReadProblem, Snapshot
from tests.corpus import BY_NAME, CASES, LONG, Case, Message, StatusKind, api_down
from tests.fakekube import FakeKube, RecordedRequest
from tests.properties import tried

CLIENT_TIMEOUT = 2.0
"""Per-request timeout of the test's client; the slow-server case delays far longer."""


def params(cases: tuple[Case, ...] | list[Case]) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.name,
            marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else [],
        )
        for case in cases
    ]


API_CASES = params([c for c in CASES if c.api])
MANIFEST_CASES = params([c for c in CASES if c.manifests])


def read_cluster(case: Case, tmp_path: Path) -> tuple[Snapshot, list[RecordedRequest]]:
    """Serve the case's objects, apply its fault, and collect over HTTP."""
    with FakeKube(case.objects) as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
        if case.setup is not None:
            case.setup(fake)
        client = client_from_kubeconfig(str(kubeconfig), None, timeout=CLIENT_TIMEOUT)
        snapshot = read_snapshot(client, istio_namespace=case.istio_namespace)
        requests = fake.requests
        assert fake.server_errors == []
    return snapshot, requests


def assert_status(status: ops.StatusBase, expected: tuple[StatusKind, Message]) -> None:
    kind, message = expected
    assert (status.name, status.message) == (kind, message) or (
        isinstance(message, re.Pattern) and status.name == kind and message.fullmatch(status.message)
    ), f"{status.name}: {status.message!r}"
    assert len(status.message) <= 120 and "\n" not in status.message


def unit_status(snapshot: Snapshot, report: Report) -> ops.StatusBase:
    """What the charm shows for this cluster (warnings-block at its default, false)."""
    hints = Hints(app="istio-cilium-compat-k8s", unit="istio-cilium-compat-k8s/0")
    return judge(snapshot, report, warnings_block=False, hints=hints).status


def test_corpus_size_and_names() -> None:
    assert len(CASES) >= 30
    assert all(re.fullmatch(r"[a-z0-9][a-zA-Z0-9.-]*", c.name) for c in CASES)
    for case in CASES:
        assert case.manifests or case.api, case.name
        if not case.manifests:
            assert case.setup is not None, f"{case.name}: API-only cases are API faults"


# ----------------------------------------------------------------------------- (a) the fake API


@pytest.mark.parametrize("case", API_CASES)
def test_via_fake_api(case: Case, tmp_path: Path) -> None:
    tried("corpus clusters via the fake API")
    snapshot, requests = read_cluster(case, tmp_path)
    report = evaluate(snapshot)

    assert report.ids == case.expected_ids
    assert report.verdict.value == case.expected_verdict
    assert_status(unit_status(snapshot, report), case.expected_status)
    assert {r.method for r in requests} <= {"GET"}
    assert requests or case.setup is api_down
    assert not [r.path for r in requests if "secret" in r.path.lower()]


@pytest.mark.parametrize("case", params([c for c in CASES if not c.api]))
def test_api_server_refuses_what_only_manifests_can_hold(case: Case) -> None:
    """kube-apiserver rejects these objects, so a live cluster cannot hold them (the fake neither)."""
    with pytest.raises(ValueError, match="must all be strings"):
        FakeKube(case.objects)


# ----------------------------------------------------------------------------- (b) saved manifests


def check_manifests(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    folder = tmp_path / "dump"
    folder.mkdir(parents=True)
    (folder / "cluster.yaml").write_text(case.manifest_yaml(), encoding="utf-8")
    argv = ["check", "--manifests", str(folder), *extra]
    if case.istio_namespace:
        argv += ["--istio-namespace", case.istio_namespace]
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_via_manifests(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tried("corpus clusters via manifests")
    code, out, err = check_manifests(case, tmp_path, capsys, "-o", "json")
    from istio_cilium_compat.manifests import load

    loaded = load([tmp_path / "dump"], istio_namespace=case.istio_namespace)
    if loaded.relevant == 0 and not loaded.snapshot.problems:
        # DESIGN.md CLI contract: nothing the checks read is exit 2, never a verdict.
        assert (code, out) == (2, "")
        assert err.startswith("error: ") and err.count("\n") == 1
        return
    data = json.loads(out)
    assert [f["id"] for f in data["findings"]] == case.expected_ids
    assert data["verdict"] == case.expected_verdict
    # DESIGN.md: 0 compatible, 1 an error finding, 3 verdict unknown (with one line on stderr).
    has_error = any(f["severity"] == "error" for f in data["findings"])
    assert code == {"incompatible": 1, "unknown": 3, "compatible": 0}[data["verdict"]]
    assert has_error == (case.expected_verdict == "incompatible")
    if data["verdict"] == "unknown":
        assert err.startswith("verdict unknown: ") and err.count("\n") == 1
    else:
        assert err == ""
    if not case.api:  # no live cluster can hold it: the status comes from the manifests
        from istio_cilium_compat.manifests import load_snapshot

        snapshot = load_snapshot([tmp_path / "dump"], istio_namespace=case.istio_namespace)
        assert_status(unit_status(snapshot, evaluate(snapshot)), case.expected_status)


# ----------------------------------------------------------------------------- (c) both paths agree

# Hand-written manifest text is not the objects served (YAML `True` is no longer "True").
# Parity holds where a rule is wrong too: xfail marks do not apply here.
BOTH_CASES = [pytest.param(c, id=c.name) for c in CASES if c.api and c.manifests and c.manifest_text is None]


def comparable(report: Report) -> dict[str, Any]:
    data = report.to_dict()
    data.pop("source")
    return data


@pytest.mark.parametrize("case", BOTH_CASES)
def test_live_and_saved_give_the_same_report(case: Case, tmp_path: Path) -> None:
    """The same objects over the fake API and as saved YAML: one path to the snapshot, one report."""
    tried("corpus clusters via both paths")
    from istio_cilium_compat.manifests import load_snapshot

    live, _ = read_cluster(case, tmp_path / "live")
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "cluster.yaml").write_text(case.manifest_yaml(), encoding="utf-8")
    saved = load_snapshot([folder], istio_namespace=case.istio_namespace)
    assert comparable(evaluate(live)) == comparable(evaluate(saved))
    assert [p for p in live.problems if p.kind == "invalid"] == [
        p for p in saved.problems if p.kind == "invalid"
    ]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        (
            "daemonset-template-a-string",
            ReadProblem(
                "DaemonSet kube-system/cilium", "invalid", "spec.template: expected an object, got a string"
            ),
        ),
        (
            "networkpolicy-spec-a-number",
            ReadProblem("NetworkPolicy bookinfo/broken", "invalid", "spec: expected an object, got a number"),
        ),
        (
            "ztunnel-env-a-string",
            ReadProblem(
                "DaemonSet istio-system/ztunnel",
                "invalid",
                "spec.template.spec.containers.env: expected a list, got a string",
            ),
        ),
    ],
)
def test_a_malformed_object_is_named_and_the_rest_is_read(
    name: str, problem: ReadProblem, tmp_path: Path
) -> None:
    case = BY_NAME[name]
    live, _ = read_cluster(case, tmp_path)
    assert live.problems == (problem,)
    [finding] = [f for f in evaluate(live).findings if f.id == "CIC015"]
    assert finding.fix == (
        "Correct the field the evidence names in each malformed object "
        "(kubectl edit it, or fix the saved file it came from). Then check again."
    )
    kind, ref = problem.resource.split(" ")
    if kind == "DaemonSet":
        others = [d for d in (*live.cilium_agents, *live.ztunnels, *live.istio_cni)]
        assert f"{ref}" not in [f"{d.namespace}/{d.name}" for d in others]
        assert len(others) == 2
    else:
        assert [f"{p.namespace}/{p.name}" for p in live.policies] == ["bookinfo/default-deny"]


# ----------------------------------------------------------------------------- what some cases mean


def test_waypoint_reads_reach_the_rules(tmp_path: Path) -> None:
    """Namespaces, Services, pods, Gateways, AuthorizationPolicies and routes all come from the API."""
    for name in ("waypoint-bound-service-under-socket-lb", "waypoint-reads-older-versions"):
        snapshot, requests = read_cluster(BY_NAME[name], tmp_path / name)
        assert [(w.kind, w.namespace, w.name, w.node) for w in snapshot.workloads] == [
            ("Pod", "bookinfo", "ratings-v1", "node-1"),
            ("Service", "bookinfo", "reviews", ""),
        ]
        assert [(g.api_version, g.name) for g in snapshot.gateways] == [
            (f"gateway.networking.k8s.io/{'v1beta1' if 'older' in name else 'v1'}", "waypoint")
        ]
        assert [r.name for r in snapshot.routes] == ["reviews-split"]
        assert [a.name for a in snapshot.authorization_policies] == ["reviews-deny-post"]
        (cic022,) = [f for f in evaluate(snapshot).findings if f.id == "CIC022"]
        assert [e.object for e in cic022.evidence] == [
            "Namespace bookinfo",
            "Service bookinfo/reviews",
            "AuthorizationPolicy bookinfo/reviews-deny-post",
            "HTTPRoute bookinfo/reviews-split",
        ]
        assert not [r for r in requests if r.path.endswith("/services") and "labelSelector" not in r.query]


def test_isolation_is_found_on_a_late_page(tmp_path: Path) -> None:
    case = BY_NAME["networkpolicies-paged-isolation-on-last-page"]
    snapshot, requests = read_cluster(case, tmp_path)
    pages = [r for r in requests if r.path == "/apis/networking.k8s.io/v1/networkpolicies"]
    assert len(pages) == 5 and all(r.query["limit"] == ["500"] for r in pages)
    assert sum("continue" in r.query for r in pages) == 4
    report = evaluate(snapshot)
    (cic005,) = report.findings
    assert [e.object for e in cic005.evidence] == ["NetworkPolicy bookinfo/default-deny"]


def test_truncated_late_page_is_not_judged_half_read(tmp_path: Path) -> None:
    case = BY_NAME["truncated-late-page-loses-the-whole-list"]
    snapshot, requests = read_cluster(case, tmp_path)
    assert snapshot.policies == ()
    assert any("continue" in r.query for r in requests)
    assert [(p.resource, p.kind) for p in snapshot.problems] == [
        ("networkpolicies.networking.k8s.io", "error")
    ]


def test_numbers_manifest_really_holds_numbers() -> None:
    """The manifests of this case hold YAML booleans and integers, not the strings the API would."""
    case = BY_NAME["numbers-where-strings-belong"]
    docs: list[dict[str, Any]] = cast(Any, yaml_rs.loads(case.manifest_yaml(), parse_datetime=False))
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    data: dict[str, Any] = config["data"]
    assert data["kube-proxy-replacement"] is True and data["cni-exclusive"] is False
    assert data["enable-host-legacy-routing"] is True
    assert [data[k] for k in ("bpf-lb-sock", "bpf-lb-sock-hostns-only", "enable-bpf-masquerade")] == [1, 1, 0]
    assert data["mtu"] == 1450 and type(data["mtu"]) is int


def test_unicode_and_long_values_stay_on_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # a wide terminal: evidence lines are not wrapped
    case = BY_NAME["unicode-and-long-values"]
    code, out, _ = check_manifests(case, tmp_path / "text", capsys)
    assert code == 1
    assert "\x1b" not in out and "\u202e" not in out
    # The value that does not parse is quoted in the evidence, its invisible character shown.
    assert 'bpf-lb-sock-hostns-only = "true\\u200b" in ConfigMap kube-system/cilium-config' in out
    data = json.loads(check_manifests(case, tmp_path / "json", capsys, "-o", "json")[1])
    evidence = [e for f in data["findings"] for e in f["evidence"]]
    hostns = next(e for e in evidence if e["key"] == "bpf-lb-sock-hostns-only")
    assert hostns["value"] == "true\u200b"
    assert all(len(e["value"] or "") < LONG for e in evidence)


def test_cluster_strings_cannot_forge_lines_in_text_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = check_manifests(BY_NAME["unicode-and-long-values"], tmp_path, capsys)
    assert not [line for line in out.splitlines() if line.strip().startswith("INJECTED")]
