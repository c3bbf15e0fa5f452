"""The index adapters the contract suites run against, and instance documents to fill them.

One factory per adapter of the index port (``pacsflow.ports.index``); each returns a fresh, not
yet started index: SQLite in a temporary file, or Elasticsearch on the session's osmem server
(``es_url``) with indices unique to the caller. A factory asks for the fixtures it needs through
``request``, so a run that leaves an adapter out starts none of its servers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from pacsflow.adapters.sqlite_index import SqliteIndex
from pacsflow.ports.index import Index, InstanceDocument

__all__ = ["INDEX_FACTORIES", "INDEX_TWINS", "IndexFactory", "instance_document"]

IndexFactory = Callable[[pytest.FixtureRequest, Path], Index]

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def _sqlite(_request: pytest.FixtureRequest, tmp_path: Path) -> Index:
    return SqliteIndex(tmp_path / "index.sqlite3")


def _elasticsearch(request: pytest.FixtureRequest, _tmp_path: Path) -> Index:
    from pacsflow.adapters.es_index import ElasticsearchIndex  # only when that side runs

    return ElasticsearchIndex(
        request.getfixturevalue("es_url"), prefix=f"pacsflow-test-{uuid.uuid4().hex}"
    )


INDEX_FACTORIES: dict[str, IndexFactory] = {"sqlite": _sqlite, "elasticsearch": _elasticsearch}


def _sqlite_twins(_request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Index, Index]:
    path = tmp_path / "index.sqlite3"
    return SqliteIndex(path), SqliteIndex(path)


def _elasticsearch_twins(request: pytest.FixtureRequest, _tmp_path: Path) -> tuple[Index, Index]:
    from pacsflow.adapters.es_index import ElasticsearchIndex

    url, prefix = request.getfixturevalue("es_url"), f"pacsflow-test-{uuid.uuid4().hex}"
    return ElasticsearchIndex(url, prefix=prefix), ElasticsearchIndex(url, prefix=prefix)


# Two adapters over the same storage, as two processes (or a restarted one) would open it.
INDEX_TWINS: dict[str, Callable[[pytest.FixtureRequest, Path], tuple[Index, Index]]] = {
    "sqlite": _sqlite_twins,
    "elasticsearch": _elasticsearch_twins,
}


def instance_document(
    site: str,
    study: str,
    series: str,
    sop: str,
    *,
    modality: str = "CT",
    sop_class: str = CT,
    patient: str = "DOE^JOHN",
    study_date: str = "20240102",
) -> InstanceDocument:
    """An instance document with the DICOM JSON attributes ingest would index."""
    attributes = {
        "00080016": {"vr": "UI", "Value": [sop_class]},
        "00080018": {"vr": "UI", "Value": [sop]},
        "00080020": {"vr": "DA", "Value": [study_date]},
        "00080060": {"vr": "CS", "Value": [modality]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": patient}]},
        "00100020": {"vr": "LO", "Value": ["PID-1"]},
        "0020000D": {"vr": "UI", "Value": [study]},
        "0020000E": {"vr": "UI", "Value": [series]},
        "00200013": {"vr": "IS", "Value": [1]},
        "00280010": {"vr": "US", "Value": [512]},
    }
    return InstanceDocument(
        site=site,
        study_uid=study,
        series_uid=series,
        sop_uid=sop,
        sop_class_uid=sop_class,
        transfer_syntax=EXPLICIT_LE,
        object_key=f"{site}/studies/{study}/series/{series}/instances/{sop}.dcm",
        size=1000 + len(sop),
        sha256=uuid.uuid5(uuid.NAMESPACE_OID, sop).hex * 2,
        attributes=attributes,
    )
