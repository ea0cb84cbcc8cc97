"""Cilium Helm values -> cilium-config, per chart version, against what `helm template` renders.

EXPECTED was recorded, not derived: `helm template cilium <chart> -n kube-system
--kube-version 1.33.0 -f <values> --show-only templates/cilium-configmap.yaml` (Helm v4.1.4)
on the released charts (cilium/charts, `cilium-<v>.tgz`) 1.14.19, 1.15.19, 1.16.19, 1.17.1,
1.17.12, 1.18.4, 1.18.12, 1.19.4 and 1.19.6, keeping the keys in `helm_values.KEYS`. Every
release of a minor version rendered the same keys. "fails" means `helm template` refused the
values (values.schema.json, templates/validate.yaml or a `fail` in the ConfigMap template).

With helm on PATH and CILIUM_CHARTS=<a directory of unpacked charts, one `<version>/cilium`
per release>, `test_against_helm_template` renders every case again and compares.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from istio_cilium_compat import helm_values
from istio_cilium_compat.helm_values import (
    KEYS,
    SUPPORTED,
    ValuesError,
    choose_chart,
    looks_like_values,
    render,
)

OLD, NEW = ("1.14", "1.15", "1.16"), ("1.17", "1.18", "1.19")
BASE = {
    "bpf-lb-sock": "false",
    "cni-exclusive": "true",
    "enable-ipv4": "true",
    "enable-ipv4-masquerade": "true",
    "enable-ipv6": "false",
    "enable-ipv6-masquerade": "true",
    "enable-l7-proxy": "true",
    "enable-policy": "default",
    "install-no-conntrack-iptables-rules": "false",
    "kube-proxy-replacement": "false",
    "routing-mode": "tunnel",
}
DEFAULTS = {v: BASE if v in OLD else {**BASE, "enable-non-default-deny-policies": "true"} for v in SUPPORTED}
"""What each chart renders for an empty values file."""

KPR_ON = {"kubeProxyReplacement": True, "k8sServiceHost": "10.0.0.1", "k8sServicePort": 6443}
FAILS = "fails"

# name: (values, {versions: changes from DEFAULTS (None: key absent) or FAILS})
CASES: dict[str, tuple[dict[str, Any], dict[tuple[str, ...], Any]]] = {
    "canonical-k8s-like": (
        {**KPR_ON, "socketLB": {"enabled": True}},
        {SUPPORTED: {"bpf-lb-sock": "true", "kube-proxy-replacement": "true"}},
    ),
    "canonical-k8s-fixed": (
        {
            **KPR_ON,
            "kubeProxyReplacement": "true",
            "socketLB": {"enabled": True, "hostNamespaceOnly": True},
            "cni": {"exclusive": False},
        },
        {
            SUPPORTED: {
                "bpf-lb-sock": "true",
                "bpf-lb-sock-hostns-only": "true",
                "cni-exclusive": "false",
                "kube-proxy-replacement": "true",
            }
        },
    ),
    "socket-lb-host-namespace-only": (
        {"socketLB": {"hostNamespaceOnly": True}},
        {SUPPORTED: {"bpf-lb-sock-hostns-only": "true"}},
    ),
    "host-services-when-socket-lb-removed": (
        {"socketLB": None, "hostServices": {"enabled": True, "hostNamespaceOnly": True}},
        {SUPPORTED: {"bpf-lb-sock": "true", "bpf-lb-sock-hostns-only": "true"}},
    ),
    "bpf-masquerade-and-host-routing": (
        {**KPR_ON, "bpf": {"masquerade": True, "hostLegacyRouting": False}},
        {
            SUPPORTED: {
                "enable-bpf-masquerade": "true",
                "enable-host-legacy-routing": "false",
                "kube-proxy-replacement": "true",
            }
        },
    ),
    "native-routing-dual-stack-no-masquerade": (
        {
            "routingMode": "native",
            "ipv4NativeRoutingCIDR": "10.0.0.0/8",
            "autoDirectNodeRoutes": True,
            "enableIPv4Masquerade": False,
            "enableIPv6Masquerade": False,
            "ipv6": {"enabled": True},
            "ipv6NativeRoutingCIDR": "fd00::/8",
        },
        {
            SUPPORTED: {
                "enable-ipv4-masquerade": "false",
                "enable-ipv6": "true",
                "enable-ipv6-masquerade": "false",
                "routing-mode": "native",
            }
        },
    ),
    "masquerade-off": (
        {"enableIPv4Masquerade": False, "bpf": {"masquerade": False}},
        {SUPPORTED: {"enable-bpf-masquerade": "false", "enable-ipv4-masquerade": "false"}},
    ),
    "cni-chaining": (
        {"cni": {"chainingMode": "generic-veth", "exclusive": False}},
        {
            SUPPORTED: {
                "cni-chaining-mode": "generic-veth",
                "cni-exclusive": "false",
                "enable-host-legacy-routing": "true",
            }
        },
    ),
    "cni-chaining-target": (
        {"cni": {"chainingTarget": "flannel"}},
        {SUPPORTED: {"cni-chaining-mode": "generic-veth", "enable-host-legacy-routing": "true"}},
    ),
    "cni-not-installed": ({"cni": {"install": False}}, {SUPPORTED: {"cni-exclusive": None}}),
    "cni-custom-conf": ({"cni": {"customConf": True}}, {SUPPORTED: {"cni-exclusive": None}}),
    "policy-always-strict-default-deny": (
        {"policyEnforcementMode": "Always", "enableNonDefaultDenyPolicies": False},
        {
            OLD: {"enable-policy": "always"},
            NEW: {"enable-policy": "always", "enable-non-default-deny-policies": "false"},
        },
    ),
    "null-removes-a-default": (
        {"policyEnforcementMode": None, "l7Proxy": None},
        {SUPPORTED: {"enable-policy": None, "enable-l7-proxy": None}},
    ),
    "wireguard": (
        {"encryption": {"enabled": True, "type": "wireguard"}},
        {SUPPORTED: {"enable-wireguard": "true"}},
    ),
    "ztunnel-encryption": (
        {"encryption": {"enabled": True, "type": "ztunnel"}},
        {(*OLD, "1.17", "1.18"): {}, ("1.19",): {"enable-ztunnel": "true"}},
    ),
    "ip-masq-agent": (
        {
            **KPR_ON,
            "ipMasqAgent": {"enabled": True},
            "installNoConntrackIptablesRules": True,
            "routingMode": "native",
            "ipv4NativeRoutingCIDR": "10.0.0.0/8",
        },
        {
            SUPPORTED: {
                "enable-ip-masq-agent": "true",
                "install-no-conntrack-iptables-rules": "true",
                "kube-proxy-replacement": "true",
                "routing-mode": "native",
            }
        },
    ),
    "endpoint-routes": (
        {"endpointRoutes": {"enabled": True}, "l7Proxy": False},
        {SUPPORTED: {"enable-endpoint-routes": "true", "enable-l7-proxy": "false"}},
    ),
    "gke": (
        {"gke": {"enabled": True}, "ipv4NativeRoutingCIDR": "10.0.0.0/8", "ipam": {"mode": "kubernetes"}},
        {SUPPORTED: {"enable-endpoint-routes": "true", "routing-mode": "native"}},
    ),
    "eni": (
        {"eni": {"enabled": True}, "ipam": {"mode": "eni"}, "egressMasqueradeInterfaces": "eth0"},
        {
            (*OLD, "1.17"): {"enable-endpoint-routes": "true"},
            ("1.18",): {"enable-endpoint-routes": "true", "enable-ipv4-masquerade": "false"},
            ("1.19",): {
                "enable-endpoint-routes": "true",
                "enable-ipv4-masquerade": "false",
                "routing-mode": "native",
            },
        },
    ),
    "eni-with-endpoint-routes": (
        {
            "eni": {"enabled": True},
            "ipam": {"mode": "eni"},
            "endpointRoutes": {"enabled": True},
            "enableIPv4Masquerade": True,
        },
        {
            (*OLD, "1.17", "1.18"): {"enable-endpoint-routes": "true"},
            ("1.19",): {"enable-endpoint-routes": "true", "routing-mode": "native"},
        },
    ),
    "azure": (
        {"azure": {"enabled": True}, "ipam": {"mode": "azure"}},
        {SUPPORTED: {"enable-endpoint-routes": "true"}},
    ),
    "aks-byocni": ({"aksbyocni": {"enabled": True}}, {SUPPORTED: {}}),
    "first-deployed-1.9": (
        {"upgradeCompatibility": "1.9", "kubeProxyReplacement": "false"},
        {SUPPORTED: {"enable-bpf-masquerade": "true"}},
    ),
    "first-deployed-1.12": (
        {"upgradeCompatibility": "1.12"},
        {
            ("1.14", "1.15"): {"kube-proxy-replacement": "disabled"},
            ("1.16", "1.17"): FAILS,
            ("1.18", "1.19"): {},
        },
    ),
    "kpr-strict": (
        {**KPR_ON, "kubeProxyReplacement": "strict"},
        {("1.14", "1.15"): {"kube-proxy-replacement": "strict"}, ("1.16", *NEW): FAILS},
    ),
    "kpr-false-as-boolean": ({"kubeProxyReplacement": False}, {SUPPORTED: {}}),
    "legacy-tunnel-disabled": (
        {"tunnel": "disabled", "ipv4NativeRoutingCIDR": "10.0.0.0/8"},
        {("1.14",): {"routing-mode": "native"}, ("1.15", "1.16", *NEW): FAILS},
    ),
    "string-where-the-schema-wants-a-boolean": (
        {"socketLB": {"enabled": "true"}},
        {("1.14", "1.15"): {"bpf-lb-sock": "true"}, ("1.16", *NEW): FAILS},
    ),
    "string-false-is-true-to-a-template": (
        {"ipMasqAgent": {"enabled": "false"}},
        {("1.14", "1.15"): {"enable-ip-masq-agent": "true"}, ("1.16", *NEW): FAILS},
    ),
    "socket-lb-not-a-mapping": ({"socketLB": True}, {SUPPORTED: FAILS}),
}


def expected(name: str, version: str) -> Any:
    for versions, outcome in CASES[name][1].items():
        if version in versions:
            if outcome == FAILS:
                return FAILS
            data = {**DEFAULTS[version], **outcome}
            return {k: v for k, v in data.items() if v is not None}
    raise AssertionError(f"{name}: no expectation for {version}")


PARAMS = [pytest.param(name, version, id=f"{name}-{version}") for name in CASES for version in SUPPORTED]


def test_every_case_covers_every_supported_version() -> None:
    for name, (_, outcomes) in CASES.items():
        covered = [v for versions in outcomes for v in versions]
        assert sorted(covered) == sorted(SUPPORTED), name


@pytest.mark.parametrize("version", SUPPORTED)
def test_defaults_of_each_chart(version: str) -> None:
    rendered = render([{}], version=version)
    assert rendered.config == DEFAULTS[version]
    assert rendered.notes == ()


@pytest.mark.parametrize(("name", "version"), PARAMS)
def test_translation_matches_helm_template(name: str, version: str) -> None:
    values, _ = CASES[name]
    want = expected(name, version)
    if want == FAILS:
        with pytest.raises(ValuesError):
            render([values], version=version)
        return
    assert render([values], version=version).config == want


def test_chart_renders_no_cilium_config_for_preflight() -> None:
    rendered = render([{"preflight": {"enabled": True}}], version="1.17")
    assert rendered.config is None
    assert [o["kind"] for o in rendered.objects] == []
    assert rendered.notes == (
        "with these values the chart renders no cilium-config (agent/operator off or preflight on)",
    )


def test_later_files_win_and_maps_merge() -> None:
    first = {"socketLB": {"enabled": True}, "cni": {"exclusive": False}}
    second = {"socketLB": {"hostNamespaceOnly": True}, "cni": {"exclusive": True}}
    config = render([first, second], version="1.17").config
    assert config is not None
    assert (config["bpf-lb-sock"], config["bpf-lb-sock-hostns-only"], config["cni-exclusive"]) == (
        "true",
        "true",
        "true",
    )


@pytest.mark.parametrize(
    ("values", "notes"),
    [
        (
            {"socketLb": {"hostNamespaceOnly": True}},
            ["values key socketLb is not the chart's socketLB: Helm ignores it (chart 1.19); rename it"],
        ),
        (
            {"socketLB": {"host_namespace_only": True}, "cni": {"Exclusive": False}},
            [
                "values key socketLB.host_namespace_only is not the chart's socketLB.hostNamespaceOnly: "
                "Helm ignores it (chart 1.19); rename it",
                "values key cni.Exclusive is not the chart's cni.exclusive: Helm ignores it (chart 1.19); rename it",
            ],
        ),
        (
            {"kube-proxy-replacement": True},
            [
                "values key kube-proxy-replacement is not the chart's kubeProxyReplacement: "
                "Helm ignores it (chart 1.19); rename it"
            ],
        ),
        ({"socketLB": {"hostNamespaceOnly": True}, "cni": {"exclusive": False}}, []),
        ({"hubble": {"relay": {"enabled": True}}, "socketlb2": {}, 5: "x"}, []),
    ],
)
def test_a_key_one_case_or_separator_off_is_named(values: dict[Any, Any], notes: list[str]) -> None:
    """Helm ignores unknown keys (no additionalProperties: false in any values.schema.json read):
    a misspelt fix renders nothing, and the finding it meant to clear stays. Say which key."""
    rendered = render([values], version="1.19")
    assert list(rendered.notes) == notes
    if values.get("socketLb"):
        assert rendered.config is not None and "bpf-lb-sock-hostns-only" not in rendered.config


def test_configmap_and_agent_objects() -> None:
    values = {"cni": {"binPath": "/var/lib/cni/bin", "confPath": "/etc/kubernetes/cni/net.d"}}
    configmap, agent = render([values], version="1.18.4", namespace="cilium", release="cni").objects
    assert configmap["metadata"] == {
        "name": "cilium-config",
        "namespace": "cilium",
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"meta.helm.sh/release-name": "cni", "meta.helm.sh/release-namespace": "cilium"},
    }
    assert agent["metadata"]["labels"]["k8s-app"] == "cilium"
    pod = agent["spec"]["template"]["spec"]
    # What `helm template` renders in templates/cilium-agent/daemonset.yaml (digest aside).
    assert pod["containers"][0]["image"] == "quay.io/cilium/cilium:v1.18.4"
    assert {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]} == {
        "cni-path": "/var/lib/cni/bin",
        "etc-cni-netd": "/etc/kubernetes/cni/net.d",
    }


@pytest.mark.parametrize(
    ("image", "want"),
    [
        ({"tag": "v1.16.3"}, "quay.io/cilium/cilium:v1.16.3"),
        ({"override": "registry.example/cilium:v1.16.3"}, "registry.example/cilium:v1.16.3"),
        ({"repository": "mirror.example/cilium"}, "mirror.example/cilium:v1.17"),
    ],
)
def test_agent_image_follows_image_values(image: dict[str, str], want: str) -> None:
    _, agent = render([{"image": image}], version="1.17").objects
    assert agent["spec"]["template"]["spec"]["containers"][0]["image"] == want


@pytest.mark.parametrize(
    ("requested", "values", "chart", "origin", "note"),
    [
        ("1.17", {}, "1.17", "option", ""),
        ("v1.18.4", {}, "1.18", "option", ""),
        (None, {"image": {"tag": "v1.15.2"}}, "1.15", "image.tag", ""),
        (
            None,
            {},
            "1.19",
            "default",
            "no --cilium-version given: chart 1.19 defaults used (pass --cilium-version X.Y for your chart)",
        ),
        (
            "1.21",
            {},
            "1.19",
            "option",
            "Cilium chart 1.21 is not known here (supported: 1.14-1.19): chart 1.19 defaults used",
        ),
        (
            "1.12.3",
            {},
            "1.14",
            "option",
            "Cilium chart 1.12 is not known here (supported: 1.14-1.19): chart 1.14 defaults used",
        ),
    ],
)
def test_which_chart_defaults_are_used_is_said(
    requested: str | None, values: dict[str, Any], chart: str, origin: str, note: str
) -> None:
    choice = choose_chart(requested, values)
    assert (choice.chart.version, choice.origin, choice.note) == (chart, origin, note)


@pytest.mark.parametrize("text", ["latest", "1", "1.x", "v1.17.4.1"])
def test_version_must_be_a_version(text: str) -> None:
    with pytest.raises(ValueError, match="not a Cilium version"):
        helm_values.parse_version(text)


def test_values_files_are_told_from_manifests() -> None:
    assert looks_like_values({"kubeProxyReplacement": True})
    assert looks_like_values({"socketLB": {"enabled": True}, "k8sServiceHost": "x"})
    assert looks_like_values({"operator": {"replicas": 1}, "prometheus": {"enabled": True}})
    assert not looks_like_values({"apiVersion": "v1", "kind": "ConfigMap", "data": {"cni": "x"}})
    assert not looks_like_values({"operator": {"replicas": 1}})
    assert not looks_like_values({"name": "app", "image": "nginx"})
    assert not looks_like_values(["kubeProxyReplacement"])


def test_translated_keys_are_the_documented_ones() -> None:
    assert set(KEYS) >= {
        "kube-proxy-replacement",
        "bpf-lb-sock",
        "bpf-lb-sock-hostns-only",
        "cni-exclusive",
        "enable-bpf-masquerade",
        "enable-host-legacy-routing",
        "enable-ipv4-masquerade",
        "enable-ipv6-masquerade",
        "enable-ipv6",
        "routing-mode",
        "enable-policy",
        "enable-non-default-deny-policies",
        "enable-endpoint-routes",
        "enable-wireguard",
        "install-no-conntrack-iptables-rules",
        "enable-ip-masq-agent",
        "enable-ztunnel",
    }


CHARTS = os.environ.get("CILIUM_CHARTS")


@pytest.mark.skipif(
    not (CHARTS and shutil.which("helm")), reason="needs helm and CILIUM_CHARTS=<unpacked charts>"
)
def test_against_helm_template(tmp_path: Path) -> None:
    """Maintainers: re-record against real charts (see the module docstring)."""
    assert CHARTS
    releases = sorted(p.name for p in Path(CHARTS).iterdir() if (p / "cilium" / "Chart.yaml").is_file())
    compared = 0
    for release in releases:
        minor = ".".join(release.split(".")[:2])
        if minor not in SUPPORTED:
            continue
        for name, (values, _) in CASES.items():
            values_file = tmp_path / f"{name}.yaml"
            values_file.write_text(yaml.safe_dump(values))
            chart = str(Path(CHARTS) / release / "cilium")
            command = ["helm", "template", "cilium", chart, "-n", "kube-system", "--kube-version", "1.33.0"]
            result = subprocess.run(
                [*command, "-f", str(values_file), "--show-only", "templates/cilium-configmap.yaml"],
                capture_output=True,
                text=True,
                check=False,
            )
            want = expected(name, minor)
            if result.returncode != 0:
                assert want == FAILS, f"{release} {name}: {result.stderr.strip()[-300:]}"
                continue
            data = yaml.safe_load(result.stdout)["data"]
            assert {k: str(data[k]) for k in KEYS if k in data} == want, f"{release} {name}"
            compared += 1
    assert compared
