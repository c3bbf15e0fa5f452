"""The three ports of the design: bus, object store and index (see docs/architecture.md)."""

from pacsflow.ports.bus import Bus, Message, Positions, Subscription
from pacsflow.ports.index import Index, IndexedEntity, InstanceDocument, InstanceRef
from pacsflow.ports.objects import ObjectInfo, ObjectStore, ObjectWriter

__all__ = [
    "Bus",
    "Index",
    "IndexedEntity",
    "InstanceDocument",
    "InstanceRef",
    "Message",
    "ObjectInfo",
    "ObjectStore",
    "ObjectWriter",
    "Positions",
    "Subscription",
]
