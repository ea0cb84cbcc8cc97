"""A corpus of hostile and broken clusters, each with the exact findings the rules must give.

Every entry is a small cluster built from `tests.clusters` (or, where a real API server
would refuse it, saved manifests only), optionally a misbehaviour of the API server
(`setup` on the `FakeKube`: forbid, uninstall, fault, stop), and what must come out:
the finding ids in `Report.ids` order (errors, warnings, infos; then by id), the
verdict, and the unit status the charm derives from the report (`charm.judge`).

Expectations were worked out from the rules as written (src/istio_cilium_compat/rules)
and the domain facts in DESIGN.md, not copied from a run. Where the rules give an
answer that is wrong, the entry keeps the correct expectation and carries `xfail` with
the reason (an issue to file), and the tests mark it strict.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from tests.clusters import (
    CILIUM_NS,
    GATEWAY_API,
    ISTIO_NS,
    N_CHECKS,
    T1,
    Obj,
    app_pod,
    authorization_policy,
    ccnp,
    cilium_agent,
    cilium_data,
    cilium_pod,
    cnp,
    configmap,
    healthy,
    http_route,
    istio_cni,
    istio_pod,
    namespace,
    network_policy,
    node_config,
    peer_auth,
    service,
    service_ref,
    waypoint,
    without,
    ztunnel,
)
from tests.fakekube import FakeKube

StatusKind = Literal["active", "blocked", "waiting"]
Verdict = Literal["compatible", "incompatible", "unknown"]

CHECKS = N_CHECKS
"""Checks in the catalogue: the active status says how many were run."""
RUN = "; run check-compatibility"
"""The status hint when the finding's summary needs the room (else JUJU_RUN)."""
JUJU_RUN = "; juju run istio-cilium-compat-k8s/0 check-compatibility"
TRUST = "; run: juju trust istio-cilium-compat-k8s --scope=cluster"
RETRY = "; retrying at next event"
COMPATIBLE_1_17 = f"Cilium 1.17.4: compatible with Istio ambient ({CHECKS} checks)"

# Finding summaries as the status line shows them (rules/*.py).
CIC001 = "CIC001: Socket LB hides Services from ztunnel: set bpf-lb-sock-hostns-only=true"
CIC003 = "CIC003: Cilium is the exclusive CNI and removes Istio CNI's config: set cni-exclusive=false"
CIC005 = "CIC005: Ambient pods under ingress default-deny without a 169.254.7.127 allowance: probes fail"
CIC006 = "CIC006: Cilium L7 policy selects ambient pods: Cilium cannot read Istio mTLS, traffic breaks"
CIC007 = "CIC007: Cilium configuration not found: cannot check Cilium settings"
CIC017 = "CIC017: Namespace label istio.io/dataplane-mode has an unknown value: not enrolled in ambient"

# API resources as the collector names them in ReadProblems (and the charm in its status).
RESOURCES: tuple[tuple[str, str], ...] = (
    ("configmaps", ""),
    ("daemonsets", "apps"),
    ("pods", ""),
    ("namespaces", ""),
    ("networkpolicies", "networking.k8s.io"),
    ("ciliumnodeconfigs", "cilium.io"),
    ("ciliumnetworkpolicies", "cilium.io"),
    ("ciliumclusterwidenetworkpolicies", "cilium.io"),
    ("peerauthentications", "security.istio.io"),
    ("services", ""),
    ("authorizationpolicies", "security.istio.io"),
    ("httproutes", "gateway.networking.k8s.io"),
    ("grpcroutes", "gateway.networking.k8s.io"),
    ("gateways", "gateway.networking.k8s.io"),
)
CILIUM_IO = tuple(r for r in RESOURCES if r[1] == "cilium.io")

Setup = Callable[[FakeKube], object]
Message = str | re.Pattern[str]


@dataclass(frozen=True)
class Case:
    """One broken cluster and what the checker must make of it."""

    name: str
    objects: list[Obj]
    expected_ids: list[str]
    expected_verdict: Verdict
    expected_status: tuple[StatusKind, Message]
    """The charm's unit status: kind and exact message (or a pattern it must fully match)."""
    manifests: bool = True
    """The case also makes sense as saved manifests (API-only faults do not)."""
    setup: Setup | None = None
    """Applied to the started FakeKube after the kubeconfig was written."""
    istio_namespace: str | None = None
    """`--istio-namespace` / the charm's `istio-root-namespace` option."""
    api: bool = True
    """False when kube-apiserver would refuse the objects: only manifests can hold them."""
    manifest_text: str | None = None
    """YAML written for the manifests run instead of dumping `objects` (e.g. unquoted scalars)."""
    xfail: str | None = None
    """Why the rules give a wrong answer here (the expectation above is the correct one)."""
    note: str = ""

    def manifest_yaml(self) -> str:
        """The saved-manifests form of this cluster (multi-document YAML)."""
        if self.manifest_text is not None:
            return self.manifest_text
        return dump_yaml(self.objects)


def dump_yaml(objects: list[Obj]) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(objects, Dumper=dumper, sort_keys=False, allow_unicode=True) if objects else ""


# ----------------------------------------------------------------------------- fault set-ups


def forbid(*resources: tuple[str, str]) -> Setup:
    def apply(fake: FakeKube) -> None:
        for plural, group in resources:
            fake.forbid(plural, group=group)

    return apply


def uninstall(*triples: tuple[str, str, str]) -> Setup:
    def apply(fake: FakeKube) -> None:
        for group, version, plural in triples:
            fake.uninstall(group, version, plural)

    return apply


def fault(match: str, **how: Any) -> Setup:
    def apply(fake: FakeKube) -> None:
        fake.fault(match, **how)

    return apply


def api_down(fake: FakeKube) -> None:
    """Nothing listens on the port the kubeconfig names any more."""
    fake.stop()


# ----------------------------------------------------------------------------- cluster pieces


def replace(objects: list[Obj], kind: str, name: str, new: Obj) -> list[Obj]:
    """`objects` with the (first) object of that kind and name swapped for `new`."""
    out = list(objects)
    for index, obj in enumerate(out):
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            out[index] = new
            return out
    raise KeyError(f"{kind} {name}")


def no_hostns_only(*, pa: bool = True) -> list[Obj]:
    """Socket LB on (kube-proxy replacement) without bpf-lb-sock-hostns-only: CIC001."""
    objects = healthy(bpf_lb_sock_hostns_only=None)
    return objects if pa else without(objects, "PeerAuthentication")


def with_agent_image(objects: list[Obj], image: str) -> list[Obj]:
    return replace(objects, "DaemonSet", "cilium", cilium_agent(image=image))


PROBE_ALLOWANCE = ccnp(
    "allow-ambient-hostprobes",
    {
        "endpointSelector": {},
        "ingress": [{"fromCIDR": ["169.254.7.127/32"]}],
        "enableDefaultDeny": {"ingress": False, "egress": False},
    },
)
DENY_ALL_INGRESS = {"podSelector": {}, "policyTypes": ["Ingress"]}


def paged_network_policies(count: int = 2000) -> list[Obj]:
    """`count` harmless policies in a non-ambient namespace that sorts first, then the bad one.

    The API lists keys in etcd order (`<namespace>/<name>`), so the policy isolating the
    ambient namespace `bookinfo` comes after all of `a-batch`'s: on the last page of
    `count // 500 + 1`.
    """
    harmless = [
        network_policy(
            "a-batch",
            f"allow-from-frontend-{i:04d}",
            {
                "podSelector": {"matchLabels": {"app": f"job-{i}"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}],
            },
        )
        for i in range(count)
    ]
    return [
        *healthy(),
        namespace("a-batch", mode=None),
        *harmless,
        network_policy("bookinfo", "default-deny", DENY_ALL_INGRESS),
    ]


NUMBERS_CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cilium-config
  namespace: kube-system
data:
  kube-proxy-replacement: true
  bpf-lb-sock: 1
  bpf-lb-sock-hostns-only: 1
  cni-exclusive: false
  enable-host-legacy-routing: True
  enable-bpf-masquerade: 0
  enable-policy: default
  mtu: 1450
  cluster-id: 0
"""


def numbers_manifest() -> str:
    """The healthy cluster as YAML with cilium-config's values unquoted (bools and ints)."""
    rest = [o for o in healthy() if o["kind"] != "ConfigMap"]
    return dump_yaml(rest) + "---\n" + NUMBERS_CONFIGMAP


def numbers_objects() -> list[Obj]:
    """What kube-apiserver would hold for that YAML had it been quoted: strings."""
    data = cilium_data(
        kube_proxy_replacement="true",
        bpf_lb_sock="1",
        bpf_lb_sock_hostns_only="1",
        cni_exclusive="false",
        enable_host_legacy_routing="True",
        enable_bpf_masquerade="0",
    )
    data.update({"mtu": "1450", "cluster-id": "0"})
    return replace(healthy(), "ConfigMap", "cilium-config", configmap(data))


LONG = 200_000


def unicode_objects() -> list[Obj]:
    """Unicode, control characters and a 200 kB value where ConfigMaps and annotations allow them."""
    data = cilium_data(
        kube_proxy_replacement="trüe",  # does not parse: assumed to turn socket LB on
        bpf_lb_sock="true",
        bpf_lb_sock_hostns_only="true\u200b",  # zero-width space: not "true" to the agent
    )
    data["custom-note"] = "🐝 " + "x" * LONG
    data["enable-policy"] = "default"
    cm = configmap(
        data,
        annotations={
            "meta.helm.sh/release-name": "ciliüm\u202e\nINJECTED\x1b[31m",
            "note": "é" * 10_000,
        },
    )
    return replace(healthy(), "ConfigMap", "cilium-config", cm)


def labels_as_list() -> list[Obj]:
    """Hand-edited manifests: `labels` written as a list (kube-apiserver refuses this)."""
    objects = no_hostns_only()
    ns = namespace("bookinfo")
    ns["metadata"]["labels"] = ["istio.io/dataplane-mode=ambient", "kubernetes.io/metadata.name=bookinfo"]
    agent = cilium_agent()
    agent["metadata"]["labels"] = ["k8s-app=cilium"]
    objects = replace(objects, "Namespace", "bookinfo", ns)
    return replace(objects, "DaemonSet", "cilium", agent)


def without_template() -> list[Obj]:
    agent = cilium_agent()
    del agent["spec"]["template"]
    return replace(healthy(), "DaemonSet", "cilium", agent)


def template_a_string() -> Obj:
    agent = cilium_agent()
    agent["spec"]["template"] = "cilium"
    return agent


def spec_a_number(obj: Obj) -> Obj:
    obj["spec"] = 5
    return obj


def env_a_string(daemonset: Obj) -> Obj:
    daemonset["spec"]["template"]["spec"]["containers"][0]["env"] = "ISTIO_META_DNS_CAPTURE=true"
    return daemonset


def namespace_labelled(name: str, labels: dict[str, str]) -> Obj:
    ns = namespace(name, mode=None)
    ns["metadata"]["labels"].update(labels)
    return ns


def waypoint_cluster(*, hostns_only: bool) -> list[Obj]:
    """bookinfo bound to a waypoint, with a Service of its own binding, an L7 policy and a route on it."""
    objects = healthy() if hostns_only else no_hostns_only()
    ns = namespace("bookinfo")
    ns["metadata"]["labels"]["istio.io/use-waypoint"] = "waypoint"
    return [
        *replace(objects, "Namespace", "bookinfo", ns),
        waypoint(),
        service("reviews", "bookinfo", {"istio.io/use-waypoint": "waypoint"}),
        service("ratings", "bookinfo"),
        istio_pod("ratings-v1", "bookinfo", {"istio.io/dataplane-mode": "ambient"}),
        authorization_policy("reviews-deny-post", "bookinfo", service_ref("reviews")),
        http_route("reviews-split", "bookinfo", service_ref("reviews")),
    ]


def gateway_api_absent() -> Setup:
    return uninstall(
        *[(GATEWAY_API, v, "gateways") for v in ("v1", "v1beta1")],
        *[(GATEWAY_API, v, "httproutes") for v in ("v1", "v1beta1")],
        *[(GATEWAY_API, v, "grpcroutes") for v in ("v1", "v1alpha2")],
    )


def cilium_in(ns: str, **overrides: str | None) -> list[Obj]:
    """Cilium installed in namespace `ns` (not kube-system)."""
    return [
        configmap(cilium_data(**overrides), namespace=ns),
        cilium_agent(namespace=ns),
        cilium_pod("cilium-a", T1, namespace=ns),
        namespace(ns, mode=None),
    ]


def istio_in(ns: str, *, strict: bool = True) -> list[Obj]:
    objects = [ztunnel(ns), istio_cni(ns), namespace(ns, mode=None), namespace("bookinfo")]
    if strict:
        objects.append(peer_auth(ns, mode="STRICT"))
    return objects


def data_null() -> list[Obj]:
    cm = configmap({})
    cm["data"] = None
    return replace(healthy(), "ConfigMap", "cilium-config", cm)


def data_absent() -> list[Obj]:
    cm = configmap({})
    del cm["data"]
    return replace(healthy(), "ConfigMap", "cilium-config", cm)


def null_spec(obj: Obj) -> Obj:
    obj["spec"] = None
    return obj


def l7_specs_policy() -> Obj:
    """A CiliumNetworkPolicy with a `specs` list (no `spec`); the second spec has HTTP rules."""
    policy = cnp("bookinfo", "reviews-l7", {})
    del policy["spec"]
    policy["specs"] = [
        {
            "endpointSelector": {"matchLabels": {"app": "ratings"}},
            "egress": [{"toEndpoints": [{"matchLabels": {"app": "reviews"}}]}],
        },
        {
            "endpointSelector": {"matchLabels": {"app": "reviews"}},
            "ingress": [
                {
                    "fromEndpoints": [{"matchLabels": {"app": "productpage"}}],
                    "toPorts": [
                        {
                            "ports": [{"port": "9080", "protocol": "TCP"}],
                            "rules": {"http": [{"method": "GET", "path": "/reviews/.*"}]},
                        }
                    ],
                }
            ],
        },
    ]
    return policy


def host_policy() -> Obj:
    """A host policy: nodeSelector, no endpointSelector; it selects nodes, not ambient pods."""
    return ccnp(
        "lock-down-nodes",
        {
            "nodeSelector": {"matchLabels": {"node-role.kubernetes.io/worker": ""}},
            "ingress": [
                {
                    "fromEntities": ["cluster"],
                    "toPorts": [{"ports": [{"port": "22", "protocol": "TCP"}], "rules": {"http": [{}]}}],
                }
            ],
        },
    )


def two_ztunnels() -> list[Obj]:
    return [*no_hostns_only(), ztunnel("istio-canary"), namespace("istio-canary", mode=None)]


def forbidden_everything() -> Setup:
    return forbid(*RESOURCES)


def unreachable(error: str) -> re.Pattern[str]:
    return re.compile(rf"Kubernetes API unreachable: {error}.*{re.escape(RETRY)}")


# ----------------------------------------------------------------------------- the corpus

CASES: tuple[Case, ...] = (
    # --- where Cilium is, and how many of it -------------------------------------------------
    Case(
        "two-cilium-configs-stale-copy-in-cilium-ns",
        [*healthy(), configmap(cilium_data(bpf_lb_sock_hostns_only=None), namespace="cilium")],
        ["CIC016"],
        "compatible",
        ("active", f"CIC016: Several cilium-config ConfigMaps found; checked the one in kube-system{RUN}"),
        note="the agent runs in kube-system, so its config is checked; the stale copy is named",
    ),
    Case(
        "two-cilium-configs-agent-in-cilium-ns",
        [
            *without(without(healthy(), "DaemonSet", "cilium"), "Pod"),
            *cilium_in("cilium", bpf_lb_sock_hostns_only=None),
        ],
        ["CIC001", "CIC016"],
        "incompatible",
        ("blocked", f"{CIC001} (+1 more){RUN}"),
        note="the agent's namespace wins over kube-system: the bad copy there is the one in effect",
    ),
    Case(
        "agent-without-cilium-config",
        without(healthy(), "ConfigMap"),
        ["CIC007"],
        "unknown",
        ("blocked", f"{CIC007}{RUN}"),
    ),
    Case(
        "only-cilium-config-old",
        replace(
            healthy(),
            "ConfigMap",
            "cilium-config",
            configmap(cilium_data(bpf_lb_sock_hostns_only=None), name="cilium-config-old"),
        ),
        ["CIC007"],
        "unknown",
        ("blocked", f"{CIC007}{RUN}"),
        note="only the exact name counts: the agent reads cilium-config, not a look-alike",
    ),
    Case(
        "cilium-in-cilium-namespace",
        [
            *cilium_in("cilium"),
            *istio_in(ISTIO_NS),
            # A leftover override in kube-system: the agent only reads CiliumNodeConfigs of its own
            # namespace, so it does not apply.
            node_config("stale", {"bpf-lb-sock-hostns-only": "false"}, namespace=CILIUM_NS),
        ],
        [],
        "compatible",
        ("active", COMPATIBLE_1_17),
    ),
    Case(
        "empty-cluster",
        [],
        ["CIC007", "CIC008"],
        "unknown",
        ("blocked", f"{CIC007}{RUN}"),
    ),
    # --- ConfigMap shapes ----------------------------------------------------------------------
    Case(
        "cilium-config-data-null",
        data_null(),
        ["CIC001"],  # info: every key at its agent default, socket LB off
        "compatible",
        ("active", COMPATIBLE_1_17),
    ),
    Case(
        "cilium-config-data-absent",
        data_absent(),
        ["CIC001"],
        "compatible",
        ("active", COMPATIBLE_1_17),
    ),
    Case(
        "numbers-where-strings-belong",
        numbers_objects(),
        [],
        "compatible",
        ("active", COMPATIBLE_1_17),
        manifest_text=numbers_manifest(),
        note="manifests hold unquoted true/1/0/True; they mean what the quoted strings mean",
    ),
    Case(
        "unicode-and-long-values",
        unicode_objects(),
        ["CIC001", "CIC023"],
        "incompatible",
        ("blocked", f"{CIC001} (+1 more){RUN}"),
        note='"true\\u200b" is not a Go boolean: hostns-only is not in effect',
    ),
    Case(
        "cni-exclusive-not-a-boolean",
        healthy(cni_exclusive="yes"),
        ["CIC003"],
        "compatible",
        ("active", f"CIC003: cilium-config cni-exclusive does not parse as a boolean{JUJU_RUN}"),
    ),
    Case(
        "enable-policy-ALWAYS-upper-case",
        healthy(enable_policy="ALWAYS"),
        ["CIC005"],
        "compatible",
        ("active", f"{CIC005}{RUN}"),
        note="the agent lower-cases enable-policy (strings.ToLower), so ALWAYS is always",
    ),
    Case(
        "kpr-strict-cilium-1.14",
        with_agent_image(
            without(
                healthy(kube_proxy_replacement="strict", bpf_lb_sock="false", bpf_lb_sock_hostns_only=None),
                "PeerAuthentication",
            ),
            "quay.io/cilium/cilium:v1.14.19",
        ),
        ["CIC001"],
        "incompatible",
        ("blocked", f"{CIC001}{RUN}"),
        note="strict on <= 1.14 turns socket LB on whatever bpf-lb-sock says; no PeerAuthentication",
    ),
    Case(
        "kpr-strict-cilium-1.17",
        healthy(kube_proxy_replacement="strict", bpf_lb_sock="false", bpf_lb_sock_hostns_only=None),
        ["CIC001", "CIC023"],
        "incompatible",
        ("blocked", f"{CIC001} (+1 more){RUN}"),
        note="strict was removed in Cilium 1.16 (true/false only): the agent refuses it (CIC023); assumed on",
    ),
    Case(
        "kpr-strict-cilium-1.17-hostns-only",
        healthy(kube_proxy_replacement="strict", bpf_lb_sock="false"),
        ["CIC023"],
        "compatible",
        (
            "active",
            f"CIC023: Cilium 1.17.4 refuses settings in cilium-config: the next agent restart fails{RUN}",
        ),
    ),
    Case(
        "kpr-true-overrides-bpf-lb-sock-false-1.19",
        with_agent_image(
            without(healthy(bpf_lb_sock="false", bpf_lb_sock_hostns_only=None), "PeerAuthentication"),
            "quay.io/cilium/cilium:v1.19.0",
        ),
        ["CIC001"],
        "incompatible",
        ("blocked", f"{CIC001}{RUN}"),
        note='the 1.19 chart writes bpf-lb-sock "false"; kube-proxy replacement forces socket LB anyway',
    ),
    # --- CiliumNodeConfig --------------------------------------------------------------------------
    Case(
        "nodeconfig-only-v2alpha1-undoes-hostns-only",
        [*healthy(), node_config("pool-a", {"bpf-lb-sock-hostns-only": "false"}, version="v2alpha1")],
        ["CIC001"],
        "incompatible",
        (
            "blocked",
            # The action comes first in the summary, so the 120-character cut keeps it.
            f"{CIC001} (CiliumNodeCon…{RUN}",
        ),
        setup=uninstall(("cilium.io", "v2", "ciliumnodeconfigs")),
    ),
    Case(
        "nodeconfig-undoes-cni-exclusive",
        [*healthy(), node_config("gpu", {"cni-exclusive": "true"})],
        ["CIC003"],
        "incompatible",
        ("blocked", f"{CIC003}{RUN}"),
    ),
    Case(
        "nodeconfig-enable-policy-always",
        [*healthy(), node_config("pci", {"enable-policy": "always"})],
        ["CIC005"],
        "compatible",
        ("active", f"{CIC005}{RUN}"),
    ),
    # --- Istio: root namespace, ztunnel, PeerAuthentication, enrollment --------------------------
    Case(
        "peerauthentication-only-v1beta1",
        [*no_hostns_only(pa=False), peer_auth(ISTIO_NS, mode="STRICT", version="v1beta1")],
        ["CIC001"],
        "incompatible",
        ("blocked", f"{CIC001}{RUN}"),
        setup=uninstall(("security.istio.io", "v1", "peerauthentications")),
        note="the STRICT mesh-wide policy is read from v1beta1: no CIC002",
    ),
    Case(
        "istio-root-namespace-given-does-not-exist",
        healthy(),
        ["CIC008"],
        "compatible",
        (
            "active",
            f"CIC008: No ztunnel in Istio root namespace istio-gone (from option); it runs elsewhere{RUN}",
        ),
        istio_namespace="istio-gone",
        note="ztunnel is listed cluster-wide, so the wrong root namespace is a warning naming where it runs",
    ),
    Case(
        "istio-root-discovered-from-ztunnel",
        [
            *without(
                without(
                    without(no_hostns_only(pa=False), "DaemonSet", "ztunnel"), "DaemonSet", "istio-cni-node"
                ),
                "Namespace",
            ),
            *istio_in("istio-mesh"),
        ],
        ["CIC001"],
        "incompatible",
        ("blocked", f"{CIC001}{RUN}"),
        note="the mesh-wide STRICT policy lives in istio-mesh, found through ztunnel: no CIC002",
    ),
    Case(
        "ztunnel-in-two-namespaces",
        two_ztunnels(),
        ["CIC001"],
        "incompatible",
        ("blocked", f"{CIC001}{RUN}"),
        note=(
            "the root namespace is ambiguous; discovery prefers istio-system, where the mesh-wide STRICT "
            "PeerAuthentication is: no CIC002"
        ),
    ),
    Case(
        "ambient-label-unexpected-value",
        [*healthy(), namespace("shop", mode="Ambient"), namespace("legacy", mode="sidecar")],
        ["CIC017"],
        "compatible",
        ("active", f"{CIC017}{RUN}"),
    ),
    Case(
        "peerauthentication-bogus-mode",
        [*no_hostns_only(pa=False), peer_auth(ISTIO_NS, mode="STRICTT")],
        ["CIC001"],
        "incompatible",
        ("blocked", f"{CIC001}{RUN}"),
    ),
    Case(
        "labels-as-a-list",
        labels_as_list(),
        ["CIC001", "CIC015"],
        "incompatible",
        ("blocked", f"{CIC001} (+1 more){RUN}"),
        api=False,
        note="list labels make bookinfo and the agent unreadable: both named (CIC015), the rest judged",
    ),
    # --- waypoints, workloads and L7 policy (what CIC022 reads) -----------------------------------
    Case(
        "waypoint-bound-service-under-socket-lb",
        waypoint_cluster(hostns_only=False),
        ["CIC001", "CIC022"],
        "incompatible",
        ("blocked", f"{CIC001} (+1 more){RUN}"),
        note="the namespace and reviews are bound to a waypoint; its AuthorizationPolicy and HTTPRoute are bypassed",
    ),
    Case(
        "waypoint-bound-service-hostns-only",
        waypoint_cluster(hostns_only=True),
        [],
        "compatible",
        ("active", COMPATIBLE_1_17),
    ),
    Case(
        "waypoint-reads-older-versions",
        waypoint_cluster(hostns_only=False),
        ["CIC001", "CIC022"],
        "incompatible",
        ("blocked", f"{CIC001} (+1 more){RUN}"),
        manifests=False,
        setup=uninstall(
            (GATEWAY_API, "v1", "gateways"),
            (GATEWAY_API, "v1", "httproutes"),
            ("security.istio.io", "v1", "authorizationpolicies"),
        ),
        note="stored as v1, served only as v1beta1 (an older Gateway API / Istio): read through the older version",
    ),
    Case(
        "gateway-api-not-installed",
        healthy(),
        [],
        "compatible",
        ("active", COMPATIBLE_1_17),
        setup=gateway_api_absent(),
        note="404 page not found on every Gateway API version: no waypoints, no routes; not a problem",
    ),
    Case(
        "forbidden-authorizationpolicies",
        waypoint_cluster(hostns_only=False),
        ["CIC001", "CIC022", "CIC014"],
        "incompatible",
        (
            "blocked",
            "CIC001: Socket LB hides Serv… (+2 more); cannot read 1 resource type: "
            "juju trust istio-cilium-compat-k8s --scope=cluster",
        ),
        manifests=False,
        setup=forbid(("authorizationpolicies", "security.istio.io")),
        note=(
            "403 on one read: named (CIC014), and the routes and bindings are still judged; the error "
            "finding wins the status, which has no room left for the resource's name"
        ),
    ),
    Case(
        "waypoint-only-namespace",
        [*healthy(), namespace_labelled("legacy", {"istio.io/use-waypoint": "waypoint"})],
        [],
        "compatible",
        ("active", COMPATIBLE_1_17),
        note="read for its waypoint label only: no dataplane-mode label, so nothing for CIC017 to judge",
    ),
    # --- policies ----------------------------------------------------------------------------------
    Case(
        "networkpolicies-paged-isolation-on-last-page",
        paged_network_policies(),
        ["CIC005"],
        "compatible",
        ("active", f"{CIC005}{RUN}"),
    ),
    Case(
        "cilium-policies-spec-null",
        [
            *healthy(),
            null_spec(cnp("bookinfo", "broken", {})),
            null_spec(ccnp("broken-clusterwide", {})),
        ],
        [],
        "compatible",
        ("active", COMPATIBLE_1_17),
        note="a Cilium policy without spec or specs is rejected by the agent: it enforces nothing",
    ),
    Case(
        "networkpolicy-spec-null",
        [*healthy(), null_spec(network_policy("bookinfo", "lockdown", {}))],
        ["CIC005"],
        "compatible",
        ("active", f"{CIC005}{RUN}"),
    ),
    Case(
        "policy-with-specs-list",
        [*healthy(), l7_specs_policy()],
        ["CIC006", "CIC005", "CIC013"],
        "incompatible",
        ("blocked", f"{CIC006[:84]}… (+2 more){RUN}"),
        note="the second spec has HTTP rules (CIC006), isolates ingress (CIC005) on port 9080 only (CIC013)",
    ),
    Case(
        "ccnp-host-policy-node-selector",
        [*healthy(), host_policy()],
        [],
        "compatible",
        ("active", COMPATIBLE_1_17),
    ),
    Case(
        "enable-policy-always-with-probe-allowance",
        [*healthy(enable_policy="always"), PROBE_ALLOWANCE],
        [],
        "compatible",
        ("active", COMPATIBLE_1_17),
    ),
    Case(
        "nodeconfig-host-routing-off",
        [
            *healthy(),
            node_config("fast", {"enable-host-legacy-routing": "false", "enable-ipv4-masquerade": "false"}),
        ],
        ["CIC011"],
        "incompatible",
        (
            "blocked",
            f"CIC011: Cilium uses BPF host routing: probes of ambient pods time out; set legacy host routing{RUN}",
        ),
        note="no masquerading on those nodes, so no iptables: the agent keeps BPF host routing there",
    ),
    # --- effective state and enrollment (issue #11): the same answer live and saved ----------------
    Case(
        "pod-enrolled-by-label-in-unlabelled-namespace",
        [
            *healthy(),
            namespace("shop", mode=None),
            app_pod("shop", "cart-0", {"istio.io/dataplane-mode": "ambient"}),
            network_policy("shop", "deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        ],
        ["CIC005"],
        "compatible",
        ("active", f"{CIC005}{RUN}"),
        note="Istio >= 1.22 enrolls a pod by its own label: its namespace's deny-all blocks its probes",
    ),
    Case(
        "networkpolicy-ipblock-probe-allowance",
        [
            *healthy(),
            network_policy("bookinfo", "deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]}),
            network_policy(
                "bookinfo",
                "allow-probes",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"ipBlock": {"cidr": "169.254.7.127/32"}}]}],
                },
            ),
        ],
        [],
        "compatible",
        ("active", COMPATIBLE_1_17),
        note="Istio's documented fix: a NetworkPolicy ipBlock admits the SNAT-ed probes",
    ),
    Case(
        "non-default-deny-off-probe-ccnp",
        [
            *healthy(enable_non_default_deny_policies="false"),
            ccnp(
                "allow-ambient-hostprobes",
                {
                    "endpointSelector": {},
                    "ingress": [{"fromCIDR": ["169.254.7.127/32"]}],
                    "enableDefaultDeny": {"ingress": False, "egress": False},
                },
            ),
        ],
        ["CIC018"],
        "incompatible",
        (
            "blocked",
            f"CIC018: A Cilium allow policy puts the pods it selects into default-deny: connections fail{RUN}",
        ),
        note="Cilium >= 1.17 ignores enableDefaultDeny: false when enable-non-default-deny-policies is false",
    ),
    Case(
        "native-routing-no-masquerade-bpf-host-routing",
        healthy(enable_host_legacy_routing=None, enable_ipv4_masquerade="false"),
        ["CIC011"],
        "incompatible",
        (
            "blocked",
            f"CIC011: Cilium uses BPF host routing: probes of ambient pods time out; set legacy host routing{RUN}",
        ),
        note="istio/istio#52208's case: no masquerading needs no iptables, so the agent keeps BPF host routing",
    ),
    # --- malformed objects: each one named, the rest of its list used ---------------------------
    Case(
        "daemonset-without-template",
        without_template(),
        [],
        "compatible",
        ("active", f"Cilium: compatible with Istio ambient ({CHECKS} checks)"),
        note="a missing field is read leniently (no image: version unknown), as Kubernetes would store it",
    ),
    Case(
        "daemonset-template-a-string",
        replace(healthy(), "DaemonSet", "cilium", template_a_string()),
        ["CIC015"],
        "unknown",
        ("blocked", f"CIC015: Could not read DaemonSet kube-system/cilium{JUJU_RUN}"),
        note="spec.template is a string: the agent's DaemonSet is unusable and named; the other DaemonSets are read",
    ),
    Case(
        "networkpolicy-spec-a-number",
        [
            *healthy(),
            spec_a_number(network_policy("bookinfo", "broken", {})),
            network_policy("bookinfo", "default-deny", DENY_ALL_INGRESS),
        ],
        ["CIC005", "CIC015"],
        "unknown",
        ("blocked", f"{CIC005[:84]}… (+1 more){RUN}"),
        note="`spec: 5` makes one NetworkPolicy unusable; the deny-all next to it is still judged (CIC005)",
    ),
    Case(
        "ztunnel-env-a-string",
        replace(healthy(), "DaemonSet", "ztunnel", env_a_string(ztunnel())),
        ["CIC015", "CIC008"],
        "unknown",
        ("blocked", f"CIC015: Could not read DaemonSet istio-system/ztunnel{JUJU_RUN}"),
        note=(
            "a container's env is a string, not a list: ztunnel's DaemonSet is named (CIC015), not guessed "
            "at, so no ztunnel is seen (CIC008)"
        ),
    ),
    # --- the API misbehaves ---------------------------------------------------------------------
    Case(
        "server-500-on-ciliumnetworkpolicies",
        healthy(),
        ["CIC015"],
        "unknown",
        ("blocked", f"CIC015: Could not read ciliumnetworkpolicies.cilium.io{JUJU_RUN}"),
        manifests=False,
        setup=fault("/ciliumnetworkpolicies", status=500),
    ),
    Case(
        "truncated-networkpolicies",
        healthy(),
        ["CIC015"],
        "unknown",
        ("blocked", f"CIC015: Could not read networkpolicies.networking.k8s.io{JUJU_RUN}"),
        manifests=False,
        setup=fault("/networkpolicies", truncate=True),
    ),
    Case(
        "truncated-late-page-loses-the-whole-list",
        paged_network_policies(),
        ["CIC015"],
        "unknown",
        ("blocked", f"CIC015: Could not read networkpolicies.networking.k8s.io{JUJU_RUN}"),
        manifests=False,
        setup=fault("continue=", truncate=True),
        note="the policy isolating bookinfo was on a later page: no half-read list is judged",
    ),
    Case(
        "reset-on-networkpolicies",
        healthy(),
        ["CIC015"],
        "unknown",
        ("blocked", f"CIC015: Could not read networkpolicies.networking.k8s.io{JUJU_RUN}"),
        manifests=False,
        setup=fault("/networkpolicies", reset=True),
    ),
    Case(
        "reset-everything",
        healthy(),
        ["CIC007", "CIC015", "CIC008"],
        "unknown",
        ("waiting", unreachable(r"(ReadError|RemoteProtocolError|ConnectError)")),
        manifests=False,
        setup=fault("/", reset=True),
    ),
    Case(
        "slow-server-beyond-timeout",
        healthy(),
        ["CIC007", "CIC015", "CIC008"],
        "unknown",
        ("waiting", f"Kubernetes API unreachable: ReadTimeout: timed out{RETRY}"),
        manifests=False,
        setup=fault("/", delay=30),
    ),
    Case(
        "api-down",
        healthy(),
        ["CIC007", "CIC015", "CIC008"],
        "unknown",
        ("waiting", unreachable("ConnectError")),
        manifests=False,
        setup=api_down,
    ),
    Case(
        "forbidden-configmaps",
        healthy(),
        ["CIC007", "CIC014"],
        "unknown",
        ("blocked", f"cannot read configmaps{TRUST}"),
        manifests=False,
        setup=forbid(("configmaps", "")),
    ),
    Case(
        "forbidden-cilium-io",
        healthy(),
        ["CIC014"],
        "unknown",
        ("blocked", f"cannot read ciliumnodeconfigs.cilium.io (+2 more){TRUST}"),
        manifests=False,
        setup=forbid(*CILIUM_IO),
    ),
    Case(
        "forbidden-everything",
        healthy(),
        ["CIC007", "CIC014", "CIC008"],
        "unknown",
        ("blocked", f"cannot read configmaps, daemonsets.apps, pods (+11 more){TRUST}"),
        manifests=False,
        setup=forbidden_everything(),
    ),
    Case(
        "istio-crds-not-installed",
        no_hostns_only(pa=False),
        ["CIC001"],
        "incompatible",
        ("blocked", f"{CIC001}{RUN}"),
        setup=uninstall(
            ("security.istio.io", "v1", "peerauthentications"),
            ("security.istio.io", "v1beta1", "peerauthentications"),
        ),
        note="404 page not found on both versions means not installed: PERMISSIVE, not an error",
    ),
)

BY_NAME = {case.name: case for case in CASES}
assert len(BY_NAME) == len(CASES), "corpus case names must be unique"
