"""Fix texts, phrased for the way the cluster's Cilium is managed.

A finding is only useful if its fix can be run as written, so the commands name
the real namespace and Helm release seen in the cluster.
"""

from __future__ import annotations

import json
import shlex

from .facts import Facts

CANONICAL_CHART = "/snap/k8s/current/k8s/manifests/charts/cilium-*.tgz"
"""The chart k8sd installs ck-network from (one per k8s snap revision)."""


def sh(word: str) -> str:
    """Quote a cluster-supplied word for bash, on one line.

    shlex.quote keeps a newline inside its quotes, which would let cluster data start a
    new line of the printed fix; bash's $'...' spells it as an escape instead.
    """
    if word.isprintable():
        return shlex.quote(word)
    escaped = "".join(
        {"\\": "\\\\", "'": "\\'"}.get(ch, ch) if ch.isprintable() else _escape(ch) for ch in word
    )
    return f"$'{escaped}'"


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def restart_agents(facts: Facts) -> str:
    """The agents read cilium-config only at start."""
    ns = sh(facts.cilium_namespace)
    name = sh(facts.cilium_agent.name if facts.cilium_agent else "cilium")
    return f"kubectl -n {ns} rollout restart daemonset/{name}"


def cilium_setting(facts: Facts, helm_path: str, key: str, value: str) -> str:
    """Change one Cilium setting the way this cluster is managed, then restart the agents."""
    release, release_ns = facts.helm_release
    if facts.managed_by == "canonical-k8s":
        lines = [
            "Canonical Kubernetes, on a control-plane node (k8sd keeps Helm values it does not own): "
            f"sudo k8s helm upgrade {sh(release)} {CANONICAL_CHART} -n {sh(release_ns)} "
            f"--reuse-values --set {helm_path}={value}",
        ]
    elif facts.managed_by == "helm":
        lines = [
            f"Helm: helm upgrade {sh(release)} cilium/cilium -n {sh(release_ns)} "
            f"--reuse-values --set {helm_path}={value}"
        ]
    else:
        lines = [
            f"Helm: {helm_path}: {value}",
            f"cilium CLI: cilium config set {key} {value}",
        ]
    lines.append(f"then restart the agents: {restart_agents(facts)}")
    return "\n".join(lines)


def node_config_fix(facts: Facts, key: str, value: str) -> str:
    """A CiliumNodeConfig that undoes a setting must be corrected too."""
    lines = []
    for nc in facts.snapshot.node_configs:
        if key in nc.defaults:
            patch = json.dumps({"spec": {"defaults": {key: value}}}, separators=(",", ":"))
            lines.append(
                f"kubectl -n {sh(nc.namespace)} patch ciliumnodeconfig {sh(nc.name)} "
                f"--type merge -p {sh(patch)}"
            )
    return "\n".join(lines)
