#!/usr/bin/env python3
"""Bare charm: the cold-start baseline (``import ops`` + ``ops.main`` + one ``status-set``)."""

import ops


class BareCharm(ops.CharmBase):
    """Reports ActiveStatus after every event; answers the ``ping`` action."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        # collect-unit-status runs at the end of every hook and action, so this is one
        # status-set per dispatch whatever the event.
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        framework.observe(self.on.ping_action, self._on_ping)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(ops.ActiveStatus())

    def _on_ping(self, event: ops.ActionEvent) -> None:
        event.set_results({"pong": "yes", "nested.key": "v"})


if __name__ == "__main__":
    ops.main(BareCharm)
