"""A fake, read-only kube-apiserver over real HTTP for testing code that uses lightkube."""

from .resources import DEFAULT_RESOURCES, ResourceType
from .server import FakeKube, Fault, PodPort, RecordedRequest, load_objects

__all__ = [
    "DEFAULT_RESOURCES",
    "FakeKube",
    "Fault",
    "PodPort",
    "RecordedRequest",
    "ResourceType",
    "load_objects",
]
