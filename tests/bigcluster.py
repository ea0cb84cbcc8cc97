"""Generate large, complete clusters for scale tests and benchmarks."""

from __future__ import annotations

from typing import Any

from tests.clusters import T1, Obj, ccnp, cilium_pod, healthy, meta, network_policy


def pod(name: str, namespace: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, namespace, labels={"app": name.rsplit("-", 1)[0]}),
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "registry.example/app:1"}]},
        "status": {"phase": "Running", "startTime": T1},
    }


def big_cluster(
    namespaces: int, *, pods_per_namespace: int = 10, cilium_policies: int = 200, nodes: int = 3
) -> list[Obj]:
    """A compatible cluster: half the namespaces ambient, one NetworkPolicy each, many pods."""
    objects: list[Obj] = [o for o in healthy() if o["kind"] not in ("Pod",)]
    objects += [cilium_pod(f"cilium-{i}", T1) for i in range(nodes)]
    objects.append(
        ccnp(
            "allow-ambient-hostprobes",
            {
                "endpointSelector": {},
                "ingress": [{"fromCIDR": ["169.254.7.127/32"]}],
                "enableDefaultDeny": {"ingress": False},
            },
        )
    )
    for i in range(namespaces):
        name = f"ns-{i:05d}"
        labels: dict[str, Any] = {"kubernetes.io/metadata.name": name}
        if i % 2 == 0:
            labels["istio.io/dataplane-mode"] = "ambient"
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(name, labels=labels)})
        objects.append(
            network_policy(
                name,
                "allow-app",
                {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {"ports": [{"port": 8080, "protocol": "TCP"}, {"port": 15008, "protocol": "TCP"}]}
                    ],
                },
            )
        )
        objects += [pod(f"web-{j}", name) for j in range(pods_per_namespace)]
    for i in range(cilium_policies):
        ns = f"ns-{(i * 7) % max(namespaces, 1):05d}"
        objects.append(
            {
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumNetworkPolicy",
                "metadata": meta(f"cnp-{i}", ns),
                "spec": {
                    "endpointSelector": {"matchLabels": {"app": "web"}},
                    "ingress": [
                        {
                            "fromEndpoints": [{"matchLabels": {"app": "gw"}}],
                            "toPorts": [{"ports": [{"port": "15008"}]}],
                        }
                    ],
                },
            }
        )
    return objects
