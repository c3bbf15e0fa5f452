"""The QIDO-RS queries of the benchmark, their values drawn from the corpus, and the answers
expected from its ground truth (so that a server that ignores a filter is caught, not timed).

Each query has a few variants (different patients, months, prefixes, studies), the same for
every server; the timing loop cycles through them.
"""

from __future__ import annotations

import bisect
import random
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from bench.synth import MODALITIES, Corpus, Instance, Study

__all__ = ["Query", "Variant", "build_queries"]

STUDY_UID: Final = "0020000D"
SERIES_UID: Final = "0020000E"
SOP_UID: Final = "00080018"
NAME_MATCHES: Final = (1, 25)  # a name prefix is chosen to match this many studies
# Characters a query value keeps as is: RFC 3986 allows them in a query, and Orthanc 1.10's
# DICOMweb plugin (1.7) does not percent-decode QIDO values (``%2A`` would not be a wildcard).
QUERY_SAFE: Final = "*?-.,_~:/"


@dataclass(frozen=True, slots=True)
class Variant:
    """One request: path below the DICOMweb root, parameters, and the UIDs that match."""

    path: str
    params: tuple[tuple[str, str], ...]
    uid_tag: str
    expected: frozenset[str]
    limit: int | None

    @property
    def target(self) -> str:
        """Path and query string; values percent-encoded only where RFC 3986 requires it."""
        if not self.params:
            return self.path
        pairs = (f"{k}={urllib.parse.quote(v, safe=QUERY_SAFE)}" for k, v in self.params)
        return f"{self.path}?{'&'.join(pairs)}"

    @property
    def label(self) -> str:
        """The request as a reader would type it."""
        query = "&".join(f"{k}={v}" for k, v in self.params if k != "limit")
        return f"{self.path}?{query}" if query else self.path

    def check(self, payload: Any) -> str | None:
        """``None`` when ``payload`` is the right answer, else what is wrong with it."""
        if not isinstance(payload, list):
            return f"{self.label}: the answer is not a JSON array"
        uids: list[str] = []
        for item in payload:
            try:
                uids.append(str(item[self.uid_tag]["Value"][0]))
            except (KeyError, IndexError, TypeError):
                return f"{self.label}: a result has no {self.uid_tag}"
        found = set(uids)
        if len(found) != len(uids):
            return f"{self.label}: {len(uids) - len(found)} duplicate results"
        wrong = found - self.expected
        if wrong:
            return f"{self.label}: {len(wrong)} of {len(uids)} results do not match the filter"
        want = len(self.expected) if self.limit is None else min(len(self.expected), self.limit)
        if len(found) != want:
            return f"{self.label}: {len(found)} results, {want} expected"
        return None


@dataclass(frozen=True, slots=True)
class Query:
    """A named search with its variants."""

    name: str
    variants: tuple[Variant, ...]

    @property
    def example(self) -> str:
        """The first variant's request."""
        return self.variants[0].label


def _study_search(
    corpus: Corpus,
    key: str,
    value: str,
    match: Callable[[Study], bool],
    limit: int,
) -> Variant:
    expected = frozenset(s.uid for s in corpus.studies if match(s))
    params = ((key, value), ("limit", str(limit))) if key else (("limit", str(limit)),)
    return Variant("/studies", params, STUDY_UID, expected, limit)


def _month_around(rng: random.Random, study: Study) -> tuple[str, str]:
    """A 31-day StudyDate range (first and last day) that holds ``study``'s date."""
    day = date(int(study.date[:4]), int(study.date[4:6]), int(study.date[6:]))
    start = day - timedelta(days=rng.randrange(31))
    return start.strftime("%Y%m%d"), (start + timedelta(days=30)).strftime("%Y%m%d")


class _Names:
    """Patient names of the corpus' studies (one per study), sorted to count prefixes fast."""

    def __init__(self, corpus: Corpus) -> None:
        self.per_study = [s.patient.name for s in corpus.studies]
        self.ordered = sorted(self.per_study)

    def count(self, prefix: str) -> int:
        """Studies whose patient name starts with ``prefix``."""
        first = bisect.bisect_left(self.ordered, prefix)
        return bisect.bisect_left(self.ordered, prefix + chr(0x10FFFF)) - first


def _name_prefix(names: _Names, candidates: list[str], rng: random.Random) -> str | None:
    """The shortest prefix (3 characters or more) of a drawn patient's family name that
    matches between NAME_MATCHES studies; None if that patient has no such prefix."""
    family = rng.choice(candidates).split("^")[0]
    low, high = NAME_MATCHES
    for length in range(min(3, len(family)), len(family) + 1):
        prefix = family[:length]
        count = names.count(prefix)
        if count <= high:
            return prefix if count >= low else None
    return None


def _prefixes(corpus: Corpus, rng: random.Random, count: int) -> list[str]:
    """Up to ``count`` distinct ASCII family-name prefixes matching a few studies each."""
    names = _Names(corpus)
    candidates = [n for n in names.per_study if n.isascii()]
    found: list[str] = []
    for _ in range(count * 50 if candidates else 0):
        prefix = _name_prefix(names, candidates, rng)
        if prefix and prefix not in found:
            found.append(prefix)
        if len(found) == count:
            break
    return found


def _utf8_prefixes(corpus: Corpus, count: int) -> list[str]:
    """Non-ASCII family names cut after their first non-ASCII character (e.g. ``MÜ``)."""
    found: list[str] = []
    for study in corpus.studies:
        family = study.patient.name.split("^")[0]
        if family.isascii():
            continue
        cut = next(i for i, ch in enumerate(family) if not ch.isascii()) + 1
        prefix = family[: max(cut, 2)]
        if prefix not in found:
            found.append(prefix)
        if len(found) == count:
            break
    return found


def _patient_is(patient_id: str) -> Callable[[Study], bool]:
    return lambda study: study.patient.patient_id == patient_id


def _date_within(first: str, last: str) -> Callable[[Study], bool]:
    return lambda study: first <= study.date <= last  # YYYYMMDD strings order as dates


def _name_starts(prefix: str) -> Callable[[Study], bool]:
    return lambda study: study.patient.name.startswith(prefix)


def _has_modality(modality: str) -> Callable[[Study], bool]:
    return lambda study: modality in study.modalities


def _series_variant(study: Study) -> Variant:
    expected = frozenset(s.uid for s in study.series)
    return Variant(f"/studies/{study.uid}/series", (), SERIES_UID, expected, None)


def _instances_variant(study: Study) -> Variant:
    expected = frozenset(
        Instance(study, series, n).uid
        for series in study.series
        for n in range(1, series.instances + 1)
    )
    return Variant(f"/studies/{study.uid}/instances", (), SOP_UID, expected, None)


def _series_by_modality(corpus: Corpus, modality: str, limit: int) -> Variant:
    expected = frozenset(
        series.uid
        for study in corpus.studies
        for series in study.series
        if series.modality == modality
    )
    params = (("Modality", modality), ("limit", str(limit)))
    return Variant("/series", params, SERIES_UID, expected, limit)


def _instance_by_uid(instance: Instance) -> Variant:
    params = (("SOPInstanceUID", instance.uid),)
    return Variant("/instances", params, SOP_UID, frozenset({instance.uid}), None)


def build_queries(
    corpus: Corpus, variants: int = 10, limit: int = 100, seed: int = 0
) -> list[Query]:
    """The benchmark's queries over ``corpus``; the same arguments give the same queries."""
    rng = random.Random(seed)
    studies = corpus.studies
    per_patient = Counter(s.patient.patient_id for s in studies)
    returning = sorted(
        {s.patient.patient_id for s in studies if per_patient[s.patient.patient_id] > 1}
    )
    patient_ids = rng.sample(
        returning or sorted(per_patient), min(variants, len(returning or per_patient))
    )
    months = [_month_around(rng, rng.choice(studies)) for _ in range(variants)]
    prefixes = _prefixes(corpus, rng, variants)
    utf8 = _utf8_prefixes(corpus, variants)
    picked = rng.sample(list(studies), min(variants, len(studies)))

    def search(key: str, value: str, match: Callable[[Study], bool]) -> Variant:
        return _study_search(corpus, key, value, match, limit)

    queries = [
        Query("all studies (no filter)", (search("", "", lambda _study: True),)),
        Query(
            "studies by PatientID",
            tuple(search("PatientID", p, _patient_is(p)) for p in patient_ids),
        ),
        Query(
            "studies by StudyDate range (31 days)",
            tuple(search("StudyDate", f"{a}-{b}", _date_within(a, b)) for a, b in months),
        ),
        Query(
            "studies by PatientName prefix",
            tuple(search("PatientName", f"{p}*", _name_starts(p)) for p in prefixes),
        ),
        Query(
            "studies by PatientName prefix (UTF-8)",
            tuple(search("PatientName", f"{p}*", _name_starts(p)) for p in utf8),
        ),
        Query(
            "studies by ModalitiesInStudy",
            tuple(search("ModalitiesInStudy", m, _has_modality(m)) for m in MODALITIES),
        ),
        Query("series of a study", tuple(_series_variant(s) for s in picked)),
        Query(
            "series by Modality (all studies)",
            tuple(_series_by_modality(corpus, m, limit) for m in MODALITIES),
        ),
        Query(
            "instance by SOPInstanceUID (all studies)",
            tuple(
                _instance_by_uid(Instance(s, s.series[-1], s.series[-1].instances)) for s in picked
            ),
        ),
        Query("instances of a study", tuple(_instances_variant(s) for s in picked)),
    ]
    return [q for q in queries if q.variants]
