"""The staged parts of STOW requests a crash cut short are deleted when a STOW process starts,
those of requests published or still streaming in a live process are kept (issue 23,
pacsflow/stow/inflight.py)."""

from __future__ import annotations

from pathlib import Path

from pacsflow.adapters.fs_store import FileSystemObjectStore
from pacsflow.pipeline.keys import staging_prefix
from pacsflow.stow.inflight import InFlight


async def test_a_dead_process_s_requests_in_flight_are_swept_a_live_one_s_kept(
    tmp_path: Path,
) -> None:
    """InFlight (pacsflow/stow/inflight.py): markers of a process whose lock is free (it died)
    are swept with what they staged; a live process's markers and staged parts are kept."""
    objects = FileSystemObjectStore(tmp_path / "objects")
    await objects.start()
    try:
        root = tmp_path / "stow-inflight"
        dead, live, starting = InFlight(root), InFlight(root), InFlight(root)
        cut = staging_prefix("a", "r1")
        dead.begin(cut)
        done = dead.begin(staging_prefix("a", "r2"))
        dead.end(done)  # published: not swept
        streaming = live.begin(staging_prefix("a", "r3"))
        for key in (cut + "000001.dcm", cut + "000002.dcm", "a/staging/r2.000001.dcm"):
            await objects.put(key, b"abc")
        await objects.put("a/staging/r3.000001.dcm", b"abc")
        dead.close()  # as the kernel does when the process is killed

        assert await starting.sweep(objects) == 2
        left = [k async for k in objects.list("a/staging/")]
        assert left == ["a/staging/r2.000001.dcm", "a/staging/r3.000001.dcm"]
        assert streaming.exists() and len(list(root.iterdir())) == 1  # the live one's
        live.end(streaming)
        assert await starting.sweep(objects) == 0
    finally:
        await objects.close()


async def test_a_marker_cut_short_by_the_crash_deletes_nothing(tmp_path: Path) -> None:
    objects = FileSystemObjectStore(tmp_path / "objects")
    await objects.start()
    try:
        root = tmp_path / "stow-inflight"
        dead = InFlight(root)
        marker = dead.begin(staging_prefix("a", "r1"))
        assert marker is not None
        marker.write_text("a/st")  # half written: it would name every study of the site
        for key in ("a/staging/r1.000001.dcm", "a/studies/1/series/2/instances/3.dcm"):
            await objects.put(key, b"abc")
        dead.close()
        assert await InFlight(root).sweep(objects) == 0
        assert len([k async for k in objects.list("a/")]) == 2
        assert not root.joinpath(marker.parent.name).exists()  # the dead one's directory
    finally:
        await objects.close()
