"""Checks that Cilium lets Istio ambient protect traffic.

Kept import-free so that a Juju hook pays only for the modules it uses.
"""

__version__ = "0.1.0"
