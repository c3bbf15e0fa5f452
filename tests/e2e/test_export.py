"""``pacsflow export`` end to end: an archive loaded by ``pacsflow import``, exported through its
index (SQLite or Elasticsearch), read back with DuckDB and pandas."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import httpx
import orjson
import pandas as pd
import pydicom
import pytest

from tests.support.corpus import CORPUS
from tests.support.importing import archive_hashes, copies_with_new_uids, run_import
from tests.support.servers import Server

DATES = ["20230115", "20240301", ""]  # StudyDate of the three generated studies


def _export(server: Server, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pacsflow", "export", str(out)]
    return subprocess.run(
        [*command, "--data-dir", str(server.data_dir), *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **server.env},
    )


def _table(out: Path, name: str) -> str:
    return f"read_parquet('{out / name}/**/*.parquet', hive_partitioning=true)"


def _total(url: str, resource: str) -> int:
    response = httpx.get(f"{url}/{resource}", params={"limit": "1"}, timeout=30)
    return int(response.headers["x-total-count"])


@pytest.fixture
def loaded(server: Server, tmp_path: Path) -> Server:
    """The archive with corpus files and three studies of known StudyDate."""
    folder = tmp_path / "in"
    files = copies_with_new_uids(CORPUS / "modality" / "CT_small.dcm", folder, 3, 2)
    for number, path in enumerate(files):
        ds = pydicom.dcmread(path)
        ds.StudyDate = DATES[number // 2]
        ds.save_as(path)
    corpus = [CORPUS / name for name in ("modality", "charset", "objects")]
    done = run_import(server.url, folder, *corpus, report=tmp_path / "import.jsonl")
    assert len(done.by_outcome("stored")) > 30, done.stdout + done.stderr
    return server


def test_every_level_to_parquet_read_by_duckdb_and_pandas(loaded: Server, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    done = _export(loaded, out)
    assert done.returncode == 0, done.stdout + done.stderr

    studies, series, instances = (_table(out, n) for n in ("studies", "series", "instances"))
    assert duckdb.sql(f"select count(*) from {studies}").fetchall() == [
        (_total(loaded.url, "studies"),)
    ]
    assert duckdb.sql(f"select count(*) from {series}").fetchall() == [
        (_total(loaded.url, "series"),)
    ]
    stored = dict(duckdb.sql(f"select SOPInstanceUID, sha256 from {instances}").fetchall())
    assert stored == archive_hashes(loaded.url)
    orphans = duckdb.sql(
        f"select count(*) from {instances} i left join {series} s using (SeriesInstanceUID)"
        f" left join {studies} t on t.StudyInstanceUID = i.StudyInstanceUID"
        " where s.SeriesInstanceUID is null or t.StudyInstanceUID is null"
    ).fetchall()
    assert orphans == [(0,)]
    dated = duckdb.sql(
        f"select StudyDate, year, month, NumberOfStudyRelatedInstances, ModalitiesInStudy"
        f" from {studies} where StudyDate in ('2023-01-15', '2024-03-01') order by StudyDate"
    ).fetchall()
    assert dated == [
        (date(2023, 1, 15), 2023, 1, 2, ["CT"]),
        (date(2024, 3, 1), 2024, 3, 2, ["CT"]),
    ]
    undated = duckdb.sql(f"select distinct year, month from {studies} where StudyDate is null")
    assert undated.fetchall() == [(0, 0)]
    assert (out / "studies" / "year=2023" / "month=1").is_dir()
    japanese = duckdb.sql(
        f"select PatientName from {studies} where PatientName like 'Yamada^Tarou=%'"
    ).fetchall()
    assert ("Yamada^Tarou=山田^太郎=やまだ^たろう",) in japanese

    frame = pd.read_parquet(out / "instances")
    assert len(frame) == len(stored)
    assert str(frame["size_bytes"].dtype) == "int64"
    assert set(frame["TransferSyntaxUID"]) >= {"1.2.840.10008.1.2.1"}
    assert "PatientName" not in frame.columns, "patient attributes are in the studies table"
    series_frame = pd.read_parquet(out / "series")
    assert {"Modality", "SeriesInstanceUID", "StudyInstanceUID", "year", "month"} <= set(
        series_frame.columns
    )
    manifest = orjson.loads((out / "_export.json").read_bytes())
    assert manifest["tables"]["instances"]["rows"] == len(stored)


def test_chosen_attributes_daily_partitions_and_a_new_export_replaces_the_last(
    loaded: Server, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    assert _export(loaded, out).returncode == 0
    before = duckdb.sql(f"select count(*) from {_table(out, 'instances')}").fetchall()

    done = _export(
        loaded,
        out,
        "--attributes", "PatientID,Modality,InstanceNumber,StudyDate",
        "--partition-by", "day",
        "--levels", "study,instance",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    studies = duckdb.sql(f"select * from {_table(out, 'studies')} limit 0").columns
    assert studies == ["StudyInstanceUID", "StudyDate", "PatientID", "day", "month", "year"]
    instances = duckdb.sql(f"select * from {_table(out, 'instances')} limit 0").columns
    assert "InstanceNumber" in instances and "Modality" not in instances
    assert duckdb.sql(f"select count(*) from {_table(out, 'instances')}").fetchall() == before
    assert (out / "studies" / "year=2024" / "month=3" / "day=1").is_dir()
    assert not any(p.name.startswith(".") for p in out.iterdir()), "no staging left behind"


def test_export_refuses_unknown_attributes_and_a_missing_archive(tmp_path: Path) -> None:
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "pacsflow",
            "export",
            str(tmp_path / "o"),
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "no archive index" in missing.stderr
    (tmp_path / "index.sqlite").touch()
    unknown = subprocess.run(
        [sys.executable, "-m", "pacsflow", "export", str(tmp_path / "o"), "--data-dir",
         str(tmp_path), "--attributes", "PatientID,PixelData"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert unknown.returncode == 2 and "'PixelData'" in unknown.stderr
