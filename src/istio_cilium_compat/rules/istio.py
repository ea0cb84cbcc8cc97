"""Checks on the Istio side: CNI directories, ztunnel presence, enrollment labels."""

from __future__ import annotations

from .. import remedy as r
from ..report import Evidence, Severity
from . import effective
from .facts import (
    AMBIENT,
    DATAPLANE_MODE_LABEL,
    DEFAULT_CNI_BIN_DIR,
    DEFAULT_CNI_CONF_DIR,
    Facts,
    capped,
    object_name,
)
from .registry import Hit, rule

# Volume names in the cilium agent and istio-cni-node DaemonSets (upstream charts and istio-k8s).
CILIUM_DIRS = {"conf": "etc-cni-netd", "bin": "cni-path"}
ISTIO_DIRS = {"conf": "cni-net-dir", "bin": "cni-bin-dir"}


def _norm(path: str) -> str:
    return path.rstrip("/") or "/"


@rule(
    "CIC004",
    Severity.ERROR,
    "istio-cni-node CNI directories differ from Cilium's (platform mismatch)",
    sources=(
        'canonical/istio-k8s-operator charmcraft.yaml (config option platform, default "microk8s")',
        "canonical/istio-k8s-operator src/charm.py (platform → values.global.platform)",
        "istio/istio manifests/charts/istio-cni/files/profile-platform-microk8s.yaml (MicroK8s CNI directories, 1.24+)",
        "https://istio.io/latest/docs/ambient/install/platform-prerequisites/",
    ),
    reads=("istio_cni", "cilium_agents"),
    remedy=r.Remedy(istio=("platform",)),
)
def cni_dirs_mismatch(facts: Facts) -> Hit | None:
    """CIC004: Istio CNI must write where the kubelet (and Cilium) read CNI config."""
    istio = facts.istio_cni
    if istio is None:
        return None
    agent = facts.cilium_agent
    defaults = {"conf": DEFAULT_CNI_CONF_DIR, "bin": DEFAULT_CNI_BIN_DIR}
    evidence = []
    for which in ("conf", "bin"):
        istio_path = istio.host_paths.get(ISTIO_DIRS[which])
        if not istio_path:
            continue
        cilium_path = (agent.host_paths.get(CILIUM_DIRS[which]) if agent else None) or defaults[which]
        if _norm(istio_path) != _norm(cilium_path):
            source = (
                f"DaemonSet {agent.namespace}/{agent.name} volume {CILIUM_DIRS[which]}"
                if agent and agent.host_paths.get(CILIUM_DIRS[which])
                else "the default"
            )
            evidence.append(
                Evidence(
                    object=object_name("DaemonSet", istio.namespace, istio.name),
                    key=f"volume {ISTIO_DIRS[which]} hostPath",
                    value=istio_path,
                    note=f"Cilium uses {cilium_path} ({source})",
                )
            )
    if not evidence:
        return None
    microk8s = any("/var/snap/microk8s/" in (e.value or "") for e in evidence)
    return Hit(
        summary="Istio CNI writes to other CNI directories than Cilium's: ambient pods are not captured",
        detail=(
            "istio-cni-node installs its plugin where the kubelet never looks, so pods are not redirected to "
            'ztunnel (recent istio-k8s revisions report "Istio CNI not ready. Possible platform mismatch").'
            + (" The paths are MicroK8s', from istio-k8s' default platform=microk8s." if microk8s else "")
        ),
        evidence=tuple(evidence),
    )


@rule(
    "CIC008",
    Severity.INFO,
    "No ztunnel found: Cilium checked as a pre-flight",
    sources=(
        "https://istio.io/latest/docs/ambient/architecture/data-plane/",
        "istio/istio manifests/charts/ztunnel/templates/daemonset.yaml (DaemonSet, pods labelled app: ztunnel)",
    ),
    reads=("ztunnels", "istio_root_namespace"),
    also=frozenset({Severity.WARNING}),
)
def ambient_missing(facts: Facts) -> Hit | None:
    """CIC008: no ztunnel in the root namespace (info) — or only elsewhere (a wrong root: warning)."""
    if facts.ztunnel is not None:
        return None
    root = facts.root_namespace
    looked = f"namespace {root}" if root else "all namespaces"
    evidence = [
        Evidence(object=f"DaemonSet ztunnel (selecting app=ztunnel pods) in {looked}", note="not found")
    ]
    elsewhere = [object_name("DaemonSet", d.namespace, d.name) for d in facts.snapshot.ztunnels]
    evidence.extend(Evidence(object=name, note="found outside the root namespace") for name in elsewhere)
    if elsewhere:
        source = facts.snapshot.istio_root_namespace_source or "option"
        return Hit(
            severity=Severity.WARNING,
            summary=f"No ztunnel in Istio root namespace {root} (from {source}); it runs elsewhere",
            detail="ztunnel and istio-cni are looked up in the root namespace: a wrong one misjudges readiness.",
            evidence=tuple(evidence),
            fix="Set istio-root-namespace / --istio-namespace to where Istio runs, or leave it empty to discover it.",
        )
    return Hit(
        summary="Istio ambient (ztunnel) not found: Cilium checked as a pre-flight",
        detail="The Cilium settings are checked so that ambient works once it is installed.",
        evidence=tuple(evidence),
        fix="Nothing to do, unless Istio runs elsewhere: set istio-root-namespace / --istio-namespace.",
    )


@rule(
    "CIC017",
    Severity.WARNING,
    "Namespace istio.io/dataplane-mode label with an unknown value",
    sources=("https://istio.io/latest/docs/ambient/usage/add-workloads/",),
    reads=("namespaces",),
)
def odd_enrollment(facts: Facts) -> Hit | None:
    """CIC017: a dataplane-mode value Istio does not know enrolls nothing."""
    evidence = [
        Evidence(
            object=f"Namespace {ns.name}",
            key=f"label {DATAPLANE_MODE_LABEL}",
            value=ns.labels.get(DATAPLANE_MODE_LABEL, ""),
            note="not ambient: Istio knows only 'ambient' and 'none'",
        )
        for ns in facts.snapshot.namespaces
        if DATAPLANE_MODE_LABEL in ns.labels and ns.labels[DATAPLANE_MODE_LABEL] not in (AMBIENT, "none")
    ]
    if not evidence:
        return None
    return Hit(
        summary="Namespace label istio.io/dataplane-mode has an unknown value: not enrolled in ambient",
        detail=(
            "With Istio's default enrollment selectors only 'ambient' enrolls a namespace, so a typo leaves its "
            "traffic outside the mesh. From Istio 1.27 the istio-cni chart can change the selectors "
            "(ambient.enablementSelectors), which this check does not read."
        ),
        evidence=capped(evidence, "more namespaces"),
        fix="Set the label to ambient on the namespaces above (or remove it to leave them out of the mesh).",
    )


@rule(
    "CIC019",
    Severity.WARNING,
    "ztunnel or istio-cni-node not ready on every node",
    sources=(
        "https://istio.io/latest/docs/ambient/architecture/data-plane/",
        "https://istio.io/latest/docs/ambient/architecture/traffic-redirection/",
    ),
    reads=("ztunnels", "istio_cni"),
)
def not_ready(facts: Facts) -> Hit | None:
    """CIC019: a node without a ready ztunnel or istio-cni does not capture (or breaks) ambient pods."""
    lagging = [ds for ds in (facts.ztunnel, facts.istio_cni) if ds is not None and ds.ready < ds.desired]
    if not lagging:
        return None
    evidence = [
        Evidence(
            object=object_name("DaemonSet", ds.namespace, ds.name),
            key="status.numberReady",
            value=str(ds.ready),
            note=f"of {ds.desired} scheduled",
        )
        for ds in lagging
    ]
    return Hit(
        summary="ztunnel or istio-cni-node is not ready on every node: ambient pods there are not served",
        detail=(
            "Without istio-cni on a node, pods starting there are not captured; without ztunnel, ambient "
            "pods there lose mesh connectivity. CIC004 (CNI directories) is the usual cause on Cilium."
        ),
        evidence=tuple(evidence),
        fix=(
            "Fix CIC004 first if it holds; then see why the pods are not ready: the events of the "
            "DaemonSets above and of their pods that are not ready (kubectl describe)."
        ),
    )


@rule(
    "CIC020",
    Severity.WARNING,
    "istio-cni-node on the host network without ClusterFirstWithHostNet (KPR)",
    sources=(
        "istio/istio#53861",
        "istio/istio manifests/charts/istio-cni/templates/daemonset.yaml (dnsPolicy: ClusterFirstWithHostNet, 1.24.1+)",
    ),
    reads=("istio_cni", "cilium_configs"),
)
def cni_dns_policy(facts: Facts) -> Hit | None:
    """CIC020: istio-cni on the host network resolves names through the node, not the cluster."""
    istio = facts.istio_cni
    if istio is None or not istio.host_network or istio.dns_policy == "ClusterFirstWithHostNet":
        return None
    if not facts.views:
        return None
    kpr = effective.kube_proxy_replacement(facts.views[0], facts.version)
    if not kpr.full:  # `true`, or `strict` up to Cilium 1.15, as the agent reads it
        return None
    return Hit(
        summary="istio-cni-node uses the host network without dnsPolicy ClusterFirstWithHostNet",
        detail=(
            "With Cilium's kube-proxy replacement, istio-cni on the host network may fail to resolve the "
            "Kubernetes API server through the node's DNS (istio/istio#53861, in Istio's chart from 1.24.1)."
        ),
        evidence=(
            Evidence(
                object=object_name("DaemonSet", istio.namespace, istio.name),
                key="spec.template.spec.dnsPolicy",
                value=istio.dns_policy or None,
                note="hostNetwork: true" + ("" if istio.dns_policy else "; absent means ClusterFirst"),
            ),
            kpr.evidence("kube-proxy replacement on"),
        ),
        fix=(
            "Upgrade Istio to 1.24.1 or newer (its chart sets dnsPolicy: ClusterFirstWithHostNet), or set it on "
            "istio-cni-node."
            if facts.istio_before(1, 24, 1)
            else "Set dnsPolicy: ClusterFirstWithHostNet on istio-cni-node: Istio's chart sets it from 1.24.1, so "
            "this DaemonSet was rendered by a customised chart or another installer."
        ),
    )


@rule(
    "CIC021",
    Severity.ERROR,
    "Istio older than 1.21: ambient does not support Cilium",
    sources=(
        "https://istio.io/latest/news/releases/1.21.x/announcing-1.21/",
        "https://istio.io/latest/blog/2024/inpod-traffic-redirection-ambient/",
    ),
    reads=("ztunnels", "istio_cni", "cilium_configs"),
)
def istio_too_old(facts: Facts) -> Hit | None:
    """CIC021: before 1.21, Istio ambient did not work on Cilium at all."""
    found = facts.istio_version
    if found is None or found[0][:2] >= (1, 21) or facts.config is None:
        return None
    version, image = found
    return Hit(
        summary=f"Istio {'.'.join(map(str, version))} ambient does not work with Cilium: use Istio 1.21 or newer",
        detail="Istio ambient supports every CNI, Cilium included, from 1.21: earlier redirection breaks on Cilium.",
        evidence=(Evidence(object=image, note="Istio version from the image tag"),),
        fix="Upgrade Istio to 1.21 or newer (Charmed Istio: juju refresh istio-k8s to a current channel).",
    )
