"""`python -m istio_cilium_compat`: the same command as the `istio-cilium-compat` script."""

from .cli import run

if __name__ == "__main__":
    run()
