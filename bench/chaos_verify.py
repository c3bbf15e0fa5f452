"""What a chaos trial must leave true (issue 23 item 2), checked through the archive's own
DICOMweb interfaces and its backends opened with pacsflow's adapters.

* every instance acknowledged with 200 is retrieved byte-identical (WADO-RS, PS3.18 10.4) and
  found exactly once (QIDO-RS, PS3.18 10.6), and counted once by its study;
* every instance accepted with 202 is stored so, or is on the ``dead-letter`` topic with a
  reason;
* no instance the archive refused (an error answer or a Failed SOP Sequence item) is found;
* no staged object (``{site}/staging/``, the claim checks) is left once ingest is done.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import httpx

from bench.chaos_load import AS_STORED, Instance, part_digests
from pacsflow.config import Settings
from pacsflow.container import build_container
from pacsflow.pipeline.records import DEAD_LETTER_TOPIC, DeadLetter

__all__ = ["Verdict", "verify"]

SOP_INSTANCE_UID: Final = "00080018"
STUDY_INSTANCES: Final = "00201208"  # NumberOfStudyRelatedInstances
SETTLE_SECONDS: Final = 300.0
UIDS_PER_QUERY: Final = 100


@dataclass
class Verdict:
    """What one trial's checks found."""

    acknowledged: int = 0
    accepted: int = 0
    refused: int = 0  # refused or failed: must not be found
    unknown: int = 0  # no answer: stored or not, either may be
    unknown_stored: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    phantom: list[str] = field(default_factory=list)  # refused, yet found
    corrupt: list[str] = field(default_factory=list)  # found with other bytes
    dead_lettered: int = 0
    staging_left: list[str] = field(default_factory=list)
    spread: list[str] = field(default_factory=list)  # other components that exited

    @property
    def clean(self) -> bool:
        problems = (self.lost, self.duplicated, self.phantom, self.corrupt, self.staging_left)
        return not any(problems)

    def problems(self) -> str:
        named = {
            "lost": self.lost,
            "duplicated": self.duplicated,
            "refused yet stored": self.phantom,
            "other bytes": self.corrupt,
            "staging left": self.staging_left,
        }
        return "; ".join(f"{k}: {len(v)} ({', '.join(v[:3])})" for k, v in named.items() if v)


def _counts(client: httpx.Client, qido: str, uids: list[str]) -> Counter[str]:
    """How many times QIDO-RS finds each SOP Instance UID (UID list matching, PS3.18 8.3.4.1)."""
    found: Counter[str] = Counter()
    for start in range(0, len(uids), UIDS_PER_QUERY):
        chunk = uids[start : start + UIDS_PER_QUERY]
        params = {"SOPInstanceUID": ",".join(chunk), "limit": str(4 * len(chunk))}
        answer = client.get(f"{qido}/instances", params=params)
        if answer.status_code == 204:
            continue
        answer.raise_for_status()
        found.update(str(d[SOP_INSTANCE_UID]["Value"][0]) for d in answer.json())
    return found


def _study_counts(client: httpx.Client, qido: str, studies: Iterable[str]) -> dict[str, int]:
    """NumberOfStudyRelatedInstances of each study (0 when not found)."""
    out = {}
    for study in studies:
        answer = client.get(f"{qido}/studies", params={"StudyInstanceUID": study})
        answer.raise_for_status()
        documents = answer.json() if answer.status_code == 200 else []
        out[study] = sum(int(d.get(STUDY_INSTANCES, {}).get("Value", [0])[0]) for d in documents)
    return out


def _digests(client: httpx.Client, wado: str, one: Instance) -> list[str]:
    path = f"studies/{one.study_uid}/series/{one.series_uid}/instances/{one.sop_uid}"
    answer = client.get(f"{wado}/{path}", headers={"Accept": AS_STORED})
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    return part_digests(answer)


async def dead_letters(settings: Settings) -> dict[str, str]:
    """SOP Instance UID → reason of every record on the dead-letter topic."""
    container = build_container(settings)
    await container.bus.start()
    letters: dict[str, str] = {}
    try:
        subscription = await container.bus.subscribe(DEAD_LETTER_TOPIC, f"chaos-{uuid.uuid4().hex}")
        quiet_until = time.monotonic() + 5
        while time.monotonic() < quiet_until:
            for message in await subscription.fetch(100, 1.0):
                letter = DeadLetter.from_bytes(message.value)
                letters[str((letter.record or {}).get("sop_uid"))] = letter.message
                quiet_until = time.monotonic() + 5
        await subscription.close()
    finally:
        await container.bus.close()
    return letters


async def staged_keys(settings: Settings) -> list[str]:
    """The keys under ``{site}/staging/`` of the object store (claim checks not yet taken)."""
    container = build_container(settings)
    await container.objects.start()
    try:
        return [key async for key in container.objects.list(f"{settings.site}/staging/")]
    finally:
        await container.objects.close()


def _settle(client: httpx.Client, qido: str, waiting: list[Instance]) -> Counter[str]:
    """Search until every instance of ``waiting`` is found (bounded); the last counts."""
    deadline = time.monotonic() + SETTLE_SECONDS
    uids = [i.sop_uid for i in waiting]
    while True:
        counts = _counts(client, qido, uids)
        if all(counts[u] for u in uids) or time.monotonic() > deadline:
            return counts
        time.sleep(1.0)


def verify(
    instances: list[Instance], qido: str, wado: str, settings: Settings, log: Callable[[str], None]
) -> Verdict:
    """Check a trial's instances once its load has stopped (see the module docstring)."""
    verdict = Verdict()
    must = [i for i in instances if i.outcome in ("acknowledged", "accepted")]
    refused = [i for i in instances if i.outcome in ("refused", "failed")]
    unknown = [i for i in instances if i.outcome == "unknown"]
    verdict.acknowledged = sum(i.outcome == "acknowledged" for i in instances)
    verdict.accepted = len(must) - verdict.acknowledged
    verdict.refused, verdict.unknown = len(refused), len(unknown)
    with httpx.Client(timeout=60) as client:
        counts = _settle(client, qido, must)
        counts.update(_counts(client, qido, [i.sop_uid for i in refused + unknown]))
        letters: dict[str, str] = {}
        if any(counts[i.sop_uid] == 0 for i in must if i.outcome == "accepted"):
            letters = asyncio.run(dead_letters(settings))
        for one in must + refused + unknown:
            found = counts[one.sop_uid]
            digests = _digests(client, wado, one) if found or one in must else []
            if found > 1 or len(digests) > 1:
                verdict.duplicated.append(one.sop_uid)
            if digests and one.sha256 not in digests:
                verdict.corrupt.append(one.sop_uid)
            stored = found >= 1 and one.sha256 in digests
            if one.outcome == "acknowledged" and not stored:
                verdict.lost.append(one.sop_uid)
            elif one.outcome == "accepted" and not stored:
                if one.sop_uid in letters:
                    verdict.dead_lettered += 1
                else:
                    verdict.lost.append(one.sop_uid)
            elif one.outcome in ("refused", "failed") and (found or digests):
                verdict.phantom.append(one.sop_uid)
            elif one.outcome == "unknown" and stored:
                verdict.unknown_stored += 1
        _check_studies(client, qido, instances, counts, verdict)
    verdict.staging_left = asyncio.run(staged_keys(settings))
    if not verdict.clean:
        log(f"trial problems: {verdict.problems()}")
    return verdict


def _check_studies(
    client: httpx.Client,
    qido: str,
    instances: list[Instance],
    counts: Counter[str],
    verdict: Verdict,
) -> None:
    """A study counts each of its instances found once (a redelivered record counted twice
    would be a duplicate in the study's NumberOfStudyRelatedInstances)."""
    expected: Counter[str] = Counter()
    for one in instances:
        expected[one.study_uid] += 1 if counts[one.sop_uid] else 0
    studies = [s for s, n in expected.items() if n]
    for study, number in _study_counts(client, qido, studies).items():
        if number != expected[study]:
            verdict.duplicated.append(f"study {study}: {number} instances, {expected[study]} found")
