"""The manifest loader: what `kubectl get -o yaml|json` writes, and hostile files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from istio_cilium_compat import manifests
from istio_cilium_compat.manifests import ManifestError, load_objects, load_snapshot
from istio_cilium_compat.rules import evaluate
from tests.clusters import healthy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CONFIG = "ConfigMap kube-system/cilium-config"
CNI = "DaemonSet istio-system/istio-cni-node"
CNI_DIRS = [(CNI, "volume cni-net-dir hostPath"), (CNI, "volume cni-bin-dir hostPath")]
EXPECTED_EXAMPLES = {
    # Canonical Kubernetes 1.36: Cilium 1.19.4, kube-proxy replacement true (k8sd), Charmed Istio 1.29
    "canonical-k8s-1.36-charmed-istio": (
        "incompatible",
        [
            ("CIC001", "error", [(CONFIG, "kube-proxy-replacement"), (CONFIG, "bpf-lb-sock-hostns-only")]),
            ("CIC004", "error", CNI_DIRS),
            (
                "CIC022",
                "error",
                [
                    ("Namespace bookinfo", "label istio.io/use-waypoint"),
                    (
                        "AuthorizationPolicy bookinfo/istio-beacon-k8s-bookinfo-policy-productpage-bookinfo-reviews-5b9e0c3a",
                        None,
                    ),
                ],
            ),
            ("CIC019", "warning", [(CNI, "status.numberReady")]),
        ],
    ),
    "canonical-k8s-1.36-recommended": ("compatible", []),
    # Canonical Kubernetes 1.34: chart 1.17.1, agent 1.17.9-ck9, kube-proxy replacement false, bpf-lb-sock true
    "canonical-k8s-1.34-charmed-istio": (
        "incompatible",
        [
            ("CIC001", "error", [(CONFIG, "bpf-lb-sock"), (CONFIG, "bpf-lb-sock-hostns-only")]),
            ("CIC004", "error", CNI_DIRS),
            ("CIC019", "warning", [(CNI, "status.numberReady")]),
        ],
    ),
    "kube-proxy-socketlb-off": (
        "compatible",
        [("CIC001", "info", [(CONFIG, "kube-proxy-replacement"), (CONFIG, "bpf-lb-sock")])],
    ),
    "default-deny-without-probe-allowance": (
        "compatible",
        [
            (
                "CIC005",
                "warning",
                [
                    ("NetworkPolicy shop/allow-frontend", None),
                    ("NetworkPolicy shop/default-deny-ingress", None),
                ],
            )
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_EXAMPLES))
def test_examples(name: str) -> None:
    """Ids, severities and the objects (and keys) each finding points at, in report order."""
    report = evaluate(load_snapshot([EXAMPLES / name]))
    verdict, findings = EXPECTED_EXAMPLES[name]
    assert report.verdict.value == verdict
    assert [
        (f.id, f.severity.value, [(e.object, e.key) for e in f.evidence]) for f in report.ordered
    ] == findings


def test_every_example_folder_is_expected() -> None:
    folders = {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    assert folders == set(EXPECTED_EXAMPLES)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def as_list(objects: list[dict]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": objects}
    )


FORMS = {
    "kind List": lambda objs: {"all.yaml": as_list(objs)},
    "multi-document": lambda objs: {"all.yaml": yaml.safe_dump_all(objs)},
    "one per file, nested dirs": lambda objs: {
        f"d{i % 2}/sub/o{i}.yml": yaml.safe_dump(o) for i, o in enumerate(objs)
    },
    "json list": lambda objs: {"all.json": json.dumps({"kind": "List", "apiVersion": "v1", "items": objs})},
    "typed list (ConfigMapList style)": lambda objs: {
        "all.yaml": yaml.safe_dump({"kind": "List", "items": [as_typed(objs)]})
    },
}


def as_typed(objs: list[dict]) -> dict:
    """A nested `XList` whose items lack `kind`, as some tools write them."""
    cms = [{k: v for k, v in o.items() if k != "kind"} for o in objs if o["kind"] == "ConfigMap"]
    return {"kind": "ConfigMapList", "apiVersion": "v1", "items": cms}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_forms_give_the_same_report(tmp_path: Path, form: str) -> None:
    objects = healthy(bpf_lb_sock_hostns_only=None)
    for name, text in FORMS[form](objects).items():
        write(tmp_path, name, text)
    report = evaluate(load_snapshot([tmp_path]))
    if form.startswith("typed"):
        assert report.ids == ["CIC001", "CIC008"]  # only the ConfigMap is in that file
    else:
        assert report.ids == ["CIC001"]


def test_several_paths_and_ignored_files(tmp_path: Path) -> None:
    objects = healthy(cni_exclusive="true")
    a = write(tmp_path, "a/cilium.yaml", as_list(objects[:3]))
    b = write(tmp_path, "b/istio.yaml", as_list(objects[3:]))
    write(tmp_path, "b/README.md", "# not yaml: [")
    write(tmp_path, "b/notes.txt", "\x00\x01")
    write(
        tmp_path,
        "b/unknown.yaml",
        yaml.safe_dump({"apiVersion": "x/v1", "kind": "Widget", "metadata": {"name": "w"}}),
    )
    assert evaluate(load_snapshot([a, b.parent])).ids == ["CIC003"]


@pytest.mark.parametrize(
    ("name", "content", "message", "line"),
    [
        ("bad.yaml", "a: 1\nb: [1, 2\nc: 3\n", "invalid YAML", 3),
        ("bad.json", '{"a": 1,\n "b": }', "invalid JSON", 2),
        ("binary.yaml", b"\x7fELF\x00\x00\x01", "binary data", None),
        ("latin1.yaml", "a: caf\xe9\n".encode("latin-1"), "not UTF-8", None),
    ],
)
def test_bad_files_name_the_file(
    tmp_path: Path, name: str, content: str | bytes, message: str, line: int | None
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(ManifestError) as err:
        load_objects([path])
    assert err.value.path == str(path)
    assert message in err.value.message
    if line is not None:
        assert err.value.line == line
    assert str(err.value).startswith(str(path))


def test_python_tags_construct_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\ndata: !!python/object/apply:os.system ['touch {marker}']\n"
    try:
        objects = load_objects([write(tmp_path, "tag.yaml", doc)])
    except ManifestError as err:
        assert "invalid YAML" in err.message
    else:
        assert all(isinstance(o, dict) for o in objects)
    assert not marker.exists()


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    path = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    with pytest.raises(ManifestError) as err:
        load_objects([path])
    assert "alias" in err.value.message


def test_small_aliases_still_work(tmp_path: Path) -> None:
    doc = "apiVersion: v1\nkind: Namespace\nmetadata: &m\n  name: shop\n  labels: {istio.io/dataplane-mode: ambient}\n"
    assert load_objects([write(tmp_path, "ns.yaml", doc)])[0]["metadata"]["name"] == "shop"


def test_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifests, "MAX_FILE_BYTES", 100)
    path = write(tmp_path, "big.yaml", "a: " + "x" * 200 + "\n")
    with pytest.raises(ManifestError, match="over the 100-byte limit"):
        load_objects([path])


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file or directory"):
        load_objects([tmp_path / "nope"])


def test_empty_and_null_documents(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.yaml", "---\n---\n# only a comment\n")
    assert load_objects([path]) == []
    report = evaluate(load_snapshot([path]))
    assert report.verdict.value == "unknown"
    assert report.ids == ["CIC007", "CIC008"]


def test_unquoted_booleans_are_read_as_kubernetes_would_store_them(tmp_path: Path) -> None:
    objects = healthy()
    text = as_list(objects).replace("bpf-lb-sock-hostns-only: 'true'", "bpf-lb-sock-hostns-only: true")
    assert "bpf-lb-sock-hostns-only: true" in text
    assert evaluate(load_snapshot([write(tmp_path, "c.yaml", text)])).ids == []


def test_load_counts_what_the_checks_can_use(tmp_path: Path) -> None:
    from istio_cilium_compat.manifests import load

    loaded = load([EXAMPLES / "canonical-k8s-1.36-charmed-istio"])
    assert (loaded.files, loaded.documents, loaded.objects, loaded.relevant) == (6, 6, 14, 11)
    unrelated = write(tmp_path, "app.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n")
    values = write(tmp_path, "values.yaml", "kubeProxyReplacement: true\n")
    loaded = load([unrelated, values])
    assert (loaded.files, loaded.documents, loaded.objects, loaded.relevant) == (2, 2, 1, 0)
    assert loaded.values_files == (str(values),)
