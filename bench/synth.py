"""Deterministic synthetic DICOM data for the benchmarks: same seed and scale, same data.

The corpus is a light model (patients, studies, series with an instance count); instances are
derived from it on demand, as tiny Part 10 files without pixel data (Explicit VR Little Endian)
for loading over HTTP, or as pacsflow index documents for loading the index directly. Patients
whose names are not ASCII carry SpecificCharacterSet ISO_IR 192 (UTF-8).
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian

from pacsflow.pipeline.keys import instance_keys
from pacsflow.ports.index import InstanceDocument

__all__ = [
    "MODALITIES",
    "SITE",
    "Corpus",
    "Instance",
    "Patient",
    "Series",
    "Study",
    "documents",
    "generate",
    "part10_files",
]

SITE: Final = "default"
UID_ROOT: Final = "1.2.826.0.1.3680043.8.498."  # pydicom's root for generated UIDs
INSTANCES_PER_STUDY: Final = 20  # the average; pairs of studies deviate by +d and -d
FIRST_DAY: Final = date(2015, 1, 1)
DAYS: Final = 3652  # ten years of study dates
SOP_CLASSES: Final = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "US": "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image Storage
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "PT": "1.2.840.10008.5.1.4.1.1.128",  # Positron Emission Tomography Image Storage
}
MODALITIES: Final = tuple(SOP_CLASSES)
_MODALITY_WEIGHTS: Final = (25, 20, 20, 15, 15, 5)
_BODY_PARTS: Final = {
    "CT": ("CHEST", "ABDOMEN", "HEAD", "PELVIS"),
    "MR": ("BRAIN", "KNEE", "SPINE", "SHOULDER"),
    "CR": ("CHEST", "HAND", "FOOT"),
    "US": ("ABDOMEN", "BREAST", "THYROID"),
    "DX": ("CHEST", "SPINE", "KNEE"),
    "PT": ("WHOLEBODY",),
}
# fmt: off
_COMMON_FAMILIES: Final = (
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "MILLER", "DAVIS", "WILSON",
    "TAYLOR", "ANDERSON", "THOMAS", "MOORE", "MARTIN", "JACKSON", "THOMPSON", "WHITE",
    "HARRIS", "CLARK", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING",
    "WRIGHT", "SCOTT", "HILL", "GREEN", "ADAMS", "BAKER", "NELSON", "CARTER",
    "MITCHELL", "ROBERTS", "TURNER", "PHILLIPS", "CAMPBELL", "PARKER", "EVANS", "EDWARDS",
    "COLLINS", "STEWART", "MORRIS", "ROGERS", "REED", "COOK", "MORGAN", "BELL",
    "MURPHY", "SMYTHE",
)
_SYLLABLES: Final = (
    "AN", "BER", "CO", "DA", "EL", "FIN", "GAR", "HOL", "IN", "JO", "KA", "LUN",
    "MA", "NOR", "OS", "PE", "QUI", "RI", "SAN", "TOR", "UL", "VAN", "WEI", "YO",
    "ZE", "BRO", "CHA", "DEL", "FRA", "GIL",
)
_GIVEN: Final = (
    "JOHN", "MARY", "JAMES", "ANNA", "ROBERT", "LINDA", "MICHAEL", "SARAH", "DAVID", "EMMA",
    "PETER", "LAURA", "PAUL", "JULIA", "MARK", "NINA", "TOM", "ELLEN", "ERIC", "CLARA",
)
# fmt: on
_UTF8_NAMES: Final = (
    ("MÜLLER", "JÖRG"),
    ("SCHRÖDER", "BÄRBEL"),
    ("GARCÍA", "JOSÉ"),
    ("MUÑOZ", "INÉS"),
    ("NØRGAARD", "SØREN"),
    ("ÅSTRÖM", "ÅSA"),
    ("ÇELIK", "ÖZLEM"),
    ("ŁUKASZEWSKI", "ŁUCJA"),
    ("DVOŘÁK", "JIŘÍ"),
    ("LEFÈVRE", "FRANÇOIS"),
    ("ΠΑΠΑΔΟΠΟΥΛΟΣ", "ΓΙΩΡΓΟΣ"),
    ("ИВАНОВ", "ПЁТР"),
    ("山田", "太郎"),
)
_UTF8_SHARE: Final = 0.1
_REFERRING: Final = ("WELBY^MARCUS", "HOUSE^GREGORY", "KILDARE^JAMES", "QUINN^MICHAELA", "")


@dataclass(frozen=True, slots=True)
class Patient:
    """A patient; names are FAMILY^GIVEN, upper case where the script has case."""

    patient_id: str
    name: str
    birth_date: str
    sex: str

    @property
    def charset(self) -> str | None:
        """SpecificCharacterSet of the patient's instances (None: the default repertoire)."""
        return None if self.name.isascii() else "ISO_IR 192"


@dataclass(frozen=True, slots=True)
class Series:
    """A series and how many instances it has."""

    uid: str
    number: int
    modality: str
    description: str
    body_part: str
    instances: int


@dataclass(frozen=True, slots=True)
class Study:
    """A study with its series (index counts from 1 within the corpus)."""

    seed: int
    index: int
    uid: str
    patient: Patient
    date: str
    time: str
    accession: str
    study_id: str
    description: str
    referring: str
    series: tuple[Series, ...]

    @property
    def modalities(self) -> frozenset[str]:
        """ModalitiesInStudy."""
        return frozenset(s.modality for s in self.series)

    @property
    def instance_count(self) -> int:
        """NumberOfStudyRelatedInstances."""
        return sum(s.instances for s in self.series)


@dataclass(frozen=True, slots=True)
class Instance:
    """One instance (number counts from 1 within its series)."""

    study: Study
    series: Series
    number: int

    @property
    def uid(self) -> str:
        """SOP Instance UID: root.seed.3.study.series.instance."""
        study = self.study
        return f"{UID_ROOT}{study.seed}.3.{study.index}.{self.series.number}.{self.number}"

    def dataset(self) -> Dataset:
        """The instance as a pydicom data set with File Meta (no pixel data)."""
        study, series, patient = self.study, self.series, self.study.patient
        ds = Dataset()
        if patient.charset:
            ds.SpecificCharacterSet = patient.charset
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = SOP_CLASSES[series.modality]
        ds.SOPInstanceUID = self.uid
        ds.StudyDate = study.date
        ds.SeriesDate = study.date
        ds.ContentDate = study.date
        ds.StudyTime = study.time
        ds.SeriesTime = study.time
        ds.ContentTime = study.time
        ds.AccessionNumber = study.accession
        ds.Modality = series.modality
        ds.Manufacturer = "PACSFLOW BENCH"
        ds.ReferringPhysicianName = study.referring
        ds.StudyDescription = study.description
        ds.SeriesDescription = series.description
        ds.PatientName = patient.name
        ds.PatientID = patient.patient_id
        ds.PatientBirthDate = patient.birth_date
        ds.PatientSex = patient.sex
        ds.BodyPartExamined = series.body_part
        ds.StudyInstanceUID = study.uid
        ds.SeriesInstanceUID = series.uid
        ds.StudyID = study.study_id
        ds.SeriesNumber = series.number
        ds.InstanceNumber = self.number
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        return ds


@dataclass(frozen=True, slots=True)
class Corpus:
    """The studies generated for one (seed, scale)."""

    seed: int
    studies: tuple[Study, ...]

    @property
    def instance_count(self) -> int:
        """Instances in all studies."""
        return sum(study.instance_count for study in self.studies)

    def instances(self) -> Iterator[Instance]:
        """Every instance, study by study, series by series."""
        for study in self.studies:
            for series in study.series:
                for number in range(1, series.instances + 1):
                    yield Instance(study, series, number)

    def patients(self) -> list[Patient]:
        """Distinct patients in order of their first study."""
        return list({study.patient.patient_id: study.patient for study in self.studies}.values())


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _instances_of(study: Study) -> Iterator[tuple[Instance, Dataset]]:
    """Each instance of ``study`` with its data set; one data set per series, updated in place
    (building a data set costs as much as encoding it), so use each before the next."""
    for series in study.series:
        ds = Instance(study, series, 1).dataset()
        for number in range(1, series.instances + 1):
            instance = Instance(study, series, number)
            ds.SOPInstanceUID = instance.uid
            ds.file_meta.MediaStorageSOPInstanceUID = UID(instance.uid)
            ds.InstanceNumber = number
            yield instance, ds


def part10_files(study: Study) -> Iterator[bytes]:
    """The instances of ``study`` as DICOM Part 10 files (Explicit VR Little Endian)."""
    for _, ds in _instances_of(study):
        yield _encode(ds)


def documents(study: Study, site: str = SITE) -> Iterator[InstanceDocument]:
    """The pacsflow index documents of the instances of ``study``, as ingest writes them:
    attributes are ``Dataset.to_json_dict()``, size and sha256 those of the Part 10 file."""
    for instance, ds in _instances_of(study):
        data = _encode(ds)
        attributes: dict[str, Any] = ds.to_json_dict()
        series = instance.series
        yield InstanceDocument(
            site=site,
            study_uid=study.uid,
            series_uid=series.uid,
            sop_uid=instance.uid,
            sop_class_uid=SOP_CLASSES[series.modality],
            transfer_syntax=str(ExplicitVRLittleEndian),
            object_key=instance_keys(site, study.uid, series.uid, instance.uid)["dicom"],
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            attributes=attributes,
        )


def generate(n_studies: int, seed: int = 1) -> Corpus:
    """``n_studies`` studies of patients with 1-4 studies each, ~20 instances a study."""
    if n_studies < 1:
        raise ValueError("n_studies must be >= 1")
    rng = random.Random(seed)
    counts = _instance_counts(rng, n_studies)
    studies: list[Study] = []
    patient_number = 0
    while len(studies) < n_studies:
        patient_number += 1
        patient = _patient(rng, patient_number)
        for _ in range(min(rng.randint(1, 4), n_studies - len(studies))):
            index = len(studies) + 1
            studies.append(_study(rng, seed, index, patient, counts[index - 1]))
    return Corpus(seed, tuple(studies))


def _instance_counts(rng: random.Random, n_studies: int) -> list[int]:
    """Per-study instance counts averaging exactly 20 (for an even count of studies)."""
    counts: list[int] = []
    while len(counts) < n_studies:
        deviation = rng.randint(-15, 15)
        counts += [INSTANCES_PER_STUDY + deviation, INSTANCES_PER_STUDY - deviation]
    if n_studies % 2:
        counts[n_studies - 1] = INSTANCES_PER_STUDY
    return counts[:n_studies]


def _patient(rng: random.Random, number: int) -> Patient:
    if rng.random() < _UTF8_SHARE:
        family, given = rng.choice(_UTF8_NAMES)
    else:
        if rng.random() < 0.4:
            family = rng.choice(_COMMON_FAMILIES)
        else:
            family = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
        given = rng.choice(_GIVEN)
    birth = date(1930, 1, 1) + timedelta(days=rng.randrange(80 * 365))
    return Patient(
        patient_id=f"PAT{number:07d}",
        name=f"{family}^{given}",
        birth_date=birth.strftime("%Y%m%d"),
        sex=rng.choice("MFFMO"),
    )


def _study(rng: random.Random, seed: int, index: int, patient: Patient, count: int) -> Study:
    uid = f"{UID_ROOT}{seed}.1.{index}"
    primary = rng.choices(MODALITIES, _MODALITY_WEIGHTS)[0]
    n_series = rng.choice((1, 2, 2, 3))
    cuts = sorted(rng.sample(range(1, count), n_series - 1))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, count], strict=True)]
    series = []
    for number, size in enumerate(sizes, start=1):
        modality = primary
        if number > 1 and rng.random() < 0.3:
            modality = "CT" if primary == "PT" else rng.choice(MODALITIES)
        body_part = rng.choice(_BODY_PARTS[modality])
        series.append(
            Series(
                uid=f"{UID_ROOT}{seed}.2.{index}.{number}",
                number=number,
                modality=modality,
                description=f"{modality} {body_part} {number}",
                body_part=body_part,
                instances=size,
            )
        )
    day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
    seconds = rng.randrange(7 * 3600, 20 * 3600)
    return Study(
        seed=seed,
        index=index,
        uid=uid,
        patient=patient,
        date=day.strftime("%Y%m%d"),
        time=f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}",
        accession=f"ACC{seed}{index:08d}",
        study_id=str(index % 100000),
        description=f"{primary} {series[0].body_part}",
        referring=rng.choice(_REFERRING),
        series=tuple(series),
    )
