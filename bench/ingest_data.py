"""The ingest workloads of ``bench/scenario_ingest.py``: many small CT slices, or large
radiographs, under new UIDs for every run (the same bytes otherwise).

``small_ct``: 1,501 CT Image instances of 512x512 16-bit native pixels (~0.53 MB each), ten
per STOW-RS request, one series of 100 slices per study (the case of issue 17).
``large``: Computed Radiography and Digital X-Ray instances of 2048x2048 16-bit native pixels
(~8.4 MB each), a few per request: the disk-bound case, compared with the disk's own speed.
Pixels and headers come from ``bench/images.py`` and ``bench/synth.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from bench import images, synth
from bench.stow import Upload

__all__ = ["WORKLOADS", "Workload", "uploads"]

SLICES_PER_STUDY: Final = 100


@dataclass(frozen=True)
class Workload:
    """A fixed ingest workload: how many instances of which modalities, how many a request."""

    name: str
    instances: int
    per_request: int
    modalities: tuple[str, ...]
    per_study: int
    what: str


WORKLOADS: Final = {
    "small-ct": Workload(
        "small-ct", 1501, 10, ("CT",), SLICES_PER_STUDY, "CT 512x512 16-bit, 0.53 MB"
    ),
    "large": Workload("large", 120, 4, ("CR", "DX"), 20, "CR/DX 2048x2048 16-bit, 8.4 MB"),
}


def _corpus(workload: Workload, tag: int) -> synth.Corpus:
    """Studies of ``workload.per_study`` instances (one series each, modalities in turn)."""
    template = synth.generate(1, tag).studies[0]
    studies = []
    count = (workload.instances + workload.per_study - 1) // workload.per_study
    for index in range(1, count + 1):
        size = min(workload.per_study, workload.instances - (index - 1) * workload.per_study)
        modality = workload.modalities[(index - 1) % len(workload.modalities)]
        series = synth.Series(
            uid=f"{synth.UID_ROOT}{tag}.2.{index}.1",
            number=1,
            modality=modality,
            description=f"{modality} bench {index}",
            body_part="CHEST",
            instances=size,
        )
        studies.append(
            dataclasses.replace(
                template,
                seed=tag,
                index=index,
                uid=f"{synth.UID_ROOT}{tag}.1.{index}",
                accession=f"ING{tag}{index:06d}",
                series=(series,),
            )
        )
    return synth.Corpus(tag, tuple(studies))


def uploads(workload: Workload, tag: int) -> list[Upload]:
    """The workload's STOW-RS requests under UIDs carrying ``tag``, built in memory now.

    Every instance is native (Explicit VR Little Endian): ``images.is_compressed`` is true
    when study index + series number is a multiple of 4, so those studies are renumbered
    around it by the series number."""
    out: list[Upload] = []
    for study in _corpus(workload, tag).studies:
        if images.is_compressed(synth.Instance(study, study.series[0], 1)):
            study = dataclasses.replace(
                study, series=(dataclasses.replace(study.series[0], number=2),)
            )
        files = images.study_files(study)
        for start in range(0, len(files), workload.per_request):
            out.append(Upload(study.uid, tuple(files[start : start + workload.per_request])))
    return out
