"""Staged objects that no record will take: the claim checks of STOW-RS requests cut short by a
crash (issue 23, chaos trials).

A claim-checked part is written under ``{site}/staging/`` while its request streams in, and
its record is published to ``ingest`` once the request (or a batch of it) ends; the processor
then moves the staged object into place. A process killed between the two leaves the staged
object behind, unreferenced, forever. When no STOW request can be in flight (``pacsflow serve``
starting, before its HTTP workers run), every staged object that no unprocessed ``ingest``
record names is such an orphan: ``sweep_staging`` deletes those.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pacsflow.nonpatient.resources import npi_site
from pacsflow.pipeline.records import INGEST_GROUP, INGEST_TOPIC, IngestRecord, decode_ingest
from pacsflow.ports import Bus, ObjectStore

__all__ = ["pending_staged_keys", "staging_prefixes", "sweep_staging"]

log = logging.getLogger(__name__)

_FETCH = 500


def staging_prefixes(sites: Iterable[str]) -> list[str]:
    """The staging prefixes of ``sites`` and of their non-patient partitions."""
    return [f"{p}/staging/" for site in sorted(sites) for p in (site, npi_site(site))]


async def pending_staged_keys(bus: Bus) -> set[str]:
    """The staged keys named by ``ingest`` records the processors have not committed yet
    (read with their group, nothing committed: they are delivered again as before)."""
    subscription = await bus.subscribe(INGEST_TOPIC, INGEST_GROUP)
    keys: set[str] = set()
    try:
        while messages := await subscription.fetch(_FETCH, 0.2):
            for message in messages:
                try:
                    record = decode_ingest(message.value)
                except ValueError:
                    continue  # not a record: the processor dead-letters it
                if isinstance(record, IngestRecord) and record.staged_key is not None:
                    keys.add(record.staged_key)
    finally:
        await subscription.close()
    return keys


async def sweep_staging(bus: Bus, objects: ObjectStore, sites: Iterable[str]) -> int:
    """Delete the staged objects of ``sites`` that no unprocessed record names; how many.

    Only while no STOW request is in flight and no other process publishes (``pacsflow serve``
    at start, on its embedded bus): a request still streaming has staged parts no record names
    yet.
    """
    pending = await pending_staged_keys(bus)
    swept = 0
    for prefix in staging_prefixes(sites):
        orphans = [key async for key in objects.list(prefix) if key not in pending]
        for key in orphans:
            await objects.delete(key)
        swept += len(orphans)
    if swept:
        log.warning("deleted %d staged objects of STOW requests cut short by a crash", swept)
    return swept
