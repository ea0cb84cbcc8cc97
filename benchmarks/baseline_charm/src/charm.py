#!/usr/bin/env python3
"""Baseline charm: istio-cilium-compat-k8s's hook-tool calls per dispatch, and nothing else.

The charm's collect-status reads its options (`config-get`) and the istio-metadata
relation's application data (`relation-ids`, `relation-list`, `relation-get`), then sets
the unit status (`status-set`; ops asks `is-leader` for the application status). This
does the same through the same ops calls, so the benchmark's ratio of the two is the
cost of the charm's own work: the engine, lightkube and the cluster reads.
"""

import json

import ops

RELATION = "istio-metadata"


class BaselineCharm(ops.CharmBase):
    """Reads what the charm reads from Juju, reports ActiveStatus."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        options = dict(self.config)
        relations = self.model.relations.get(RELATION) or []
        data = json.dumps([dict(r.data.get(r.app) or {}) if r.app else {} for r in relations], sort_keys=True)
        event.add_status(ops.ActiveStatus(f"{len(options)} options, {len(data)} bytes of relation data"))


if __name__ == "__main__":
    ops.main(BaselineCharm)
