"""``pacsflow export`` end to end: an archive loaded by ``pacsflow import``, exported through its
index (SQLite or Elasticsearch), read back with DuckDB and pandas."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import httpx
import orjson
import pandas as pd
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

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


def _rows(out: Path, name: str, columns: list[str]) -> set[tuple[object, ...]]:
    chosen = ", ".join(f'"{c}"' for c in columns)
    rows = duckdb.sql(f"select {chosen} from {_table(out, name)}").fetchall()
    return {tuple(str(v) for v in row) for row in rows}


def test_since_applies_the_change_feed_to_the_partitions_it_touches(
    loaded: Server, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    assert _export(loaded, out).returncode == 0
    first = orjson.loads((out / "_export.json").read_bytes())
    assert first["sequence"] > 30  # the feed's latest when the export began
    studies = _table(out, "studies")
    [(gone,)] = duckdb.sql(
        f"select StudyInstanceUID from {studies} where StudyDate = '2023-01-15'"
    ).fetchall()
    untouched = sorted((out / "instances" / "year=0" / "month=0").glob("*.parquet"))
    assert untouched, "the undated study's instances are in partition 0"
    untouched_before = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in untouched]

    # changes: two new studies (in an existing and in a new partition), a study deleted
    folder = tmp_path / "more"
    files = copies_with_new_uids(CORPUS / "modality" / "CT_small.dcm", folder, 2, 3)
    for number, path in enumerate(files):
        ds = pydicom.dcmread(path)
        ds.StudyDate = ("20240315", "20250601")[number // 3]
        ds.save_as(path)
    imported = run_import(loaded.url, folder, report=tmp_path / "more.jsonl")
    assert len(imported.by_outcome("stored")) == 6, imported.stdout + imported.stderr
    DICOMwebClient(url=loaded.url).delete_study(gone)
    deadline = time.monotonic() + 60
    while httpx.get(f"{loaded.url}/studies", params={"StudyInstanceUID": gone}).json():
        assert time.monotonic() < deadline, "the DELETE was not applied"
        time.sleep(0.2)

    done = _export(loaded, out, "--since", "last")

    assert done.returncode == 0, done.stderr
    assert "3 studies" in done.stdout and "partitions rewritten" in done.stdout
    manifest = orjson.loads((out / "_export.json").read_bytes())
    assert manifest["sequence"] >= first["sequence"] + 7  # 6 stored, at least one deleted
    assert manifest["incremental"]["since"] == first["sequence"]
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in untouched] == untouched_before
    for name in ("studies", "series", "instances"):
        held = f"select 1 from {_table(out, name)} where StudyInstanceUID = '{gone}'"
        assert not duckdb.sql(held).fetchall(), f"the deleted study is still in {name}"
    assert (out / "instances" / "year=2025" / "month=6").is_dir()
    # the same rows as a full export of the archive as it is now
    full = tmp_path / "full"
    assert _export(loaded, full).returncode == 0
    for name in ("studies", "series", "instances"):
        columns = duckdb.sql(f"select * from {_table(out, name)} limit 0").columns
        assert _rows(out, name, columns) == _rows(full, name, columns), name
        assert manifest["tables"][name]["rows"] == len(_rows(full, name, columns))

    again = _export(loaded, out, "--since", "last")
    assert again.returncode == 0 and "no changes after sequence" in again.stdout


def test_since_refuses_a_folder_without_an_export_and_a_bad_sequence(
    server: Server, tmp_path: Path
) -> None:
    empty = _export(server, tmp_path / "nothing", "--since", "last")
    assert empty.returncode == 2 and "no export to update" in empty.stderr
    bad = _export(server, tmp_path / "nothing", "--since", "-4")
    assert bad.returncode == 2 and "--since" in bad.stderr
    levels = _export(server, tmp_path / "nothing", "--since", "3", "--levels", "study")
    assert levels.returncode == 2 and "--levels" in levels.stderr
    out = tmp_path / "lake"
    assert _export(server, out).returncode == 0  # an empty archive: sequence 0
    assert orjson.loads((out / "_export.json").read_bytes())["sequence"] == 0
    quiet = _export(server, out, "--since", "last")
    assert quiet.returncode == 0 and "no changes after sequence 0" in quiet.stdout
    ahead = _export(server, out, "--since", "5")
    assert ahead.returncode == 2 and "full export" in ahead.stderr
