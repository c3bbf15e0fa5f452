"""A large instance streams through STOW, the processor and retrieval in bounded memory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support.corpus import write_large_instance
from tests.support.dicomweb import retrieve_digest, sequence, stow_file, value
from tests.support.servers import peak_rss_bytes, start_server


@pytest.mark.slow
def test_large_instance_stays_out_of_memory(tmp_path: Path) -> None:
    source = tmp_path / "large.dcm"
    ds, size = write_large_instance(source)
    server = start_server(tmp_path / "data")
    try:
        baseline = peak_rss_bytes(server.process.pid)
        response = stow_file(server.url, source)
        assert response.status_code == 200, response.text
        item = sequence(response.json(), "00081199")[0]
        assert value(item, "00081155") == ds.SOPInstanceUID
        received, digest = retrieve_digest(
            server.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        )
        assert received == size
        with source.open("rb") as fp:
            expected = hashlib.file_digest(fp, "sha256").hexdigest()
        assert digest == expected
        peak = peak_rss_bytes(server.process.pid)
        print(
            f"instance {size / 2**20:.0f} MiB; server peak RSS {peak / 2**20:.0f} MiB "
            f"(at start {baseline / 2**20:.0f} MiB)"
        )
        assert peak - baseline < size / 6, (peak, baseline, size)
    finally:
        server.stop()
