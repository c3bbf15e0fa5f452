"""``pacsflow import``: find files, read their headers, skip what the archive holds, send the rest.

1. Find: every location becomes files (``pacsflow.importer.sources``).
2. Read headers, in parallel: DICOM or not, study and SOP Instance UID
   (``pacsflow.importer.classify``); files that are not DICOM are skipped with a note.
3. Plan: batches of one study each, sent largest first (``pacsflow.importer.plan``).
4. Send, ``parallel`` requests at once (``pacsflow.importer.dicomweb``): before the first batch
   of a study goes, one QIDO-RS search lists what the archive holds of it with the SHA-256 and
   size of each object; a file whose SOP Instance UID is held with the same size and SHA-256
   is skipped (hashed locally only then), so a re-run resumes where the last one stopped.
5. Summarize (``pacsflow.importer.report``); the exit status is 1 when a file failed.

An archive that cannot be reached, or that refuses the credentials, stops the import before
it starts (exit status 2).

SIGINT and SIGTERM stop the import at once: requests in flight are abandoned (the archive
keeps nothing it did not acknowledge, or keeps it whole), the summary counts the files not
sent, and the exit status is 128 + the signal number.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, NoReturn

from pacsflow.importer import DEFAULT_URL
from pacsflow.importer.classify import Scanned, scan_item, sha256_of
from pacsflow.importer.dicomweb import ArchiveClient, ArchiveError, Held
from pacsflow.importer.outcomes import FileResult, Outcome
from pacsflow.importer.plan import Batch, plan_batches, sending_order
from pacsflow.importer.progress import ImportProgress
from pacsflow.importer.report import Summary
from pacsflow.importer.s3 import S3Options
from pacsflow.importer.sources import Item, Sources

__all__ = ["ImportOptions", "import_files"]

_POLL: Final = 0.1  # seconds the main thread waits for results before it looks again


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """The options of ``pacsflow import`` (see ``pacsflow.importer.command``)."""

    url: str = DEFAULT_URL
    token: str | None = None
    parallel: int = 4
    batch_files: int = 100
    batch_bytes: int = 64 * 1024 * 1024
    resume: bool = True
    spool_dir: Path | None = None
    s3: S3Options = field(default_factory=S3Options)
    progress: bool = False
    report: Path | None = None


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise _Interrupted(signum)


def import_files(locations: Sequence[str], options: ImportOptions, out: IO[str]) -> int:
    """Import every file of ``locations``; print the summary on ``out``; the exit status."""
    client = ArchiveClient(options.url, token=options.token, connections=options.parallel)
    if (problem := client.probe()) is not None:
        client.close()
        print(f"pacsflow import: {problem}", file=sys.stderr)
        return 2
    summary = Summary()
    progress = ImportProgress(options.progress, out)
    sources = Sources(spool_dir=options.spool_dir, s3=options.s3)
    run = _Run(options, summary, progress, client)
    handlers = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    signum = 0
    try:
        run.execute(locations, sources)
    except _Interrupted as exc:
        signum = exc.signum
        summary.interrupted = signal.Signals(signum).name
        run.stop()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        progress.close()
        sources.close()
        if not signum:
            client.close()  # else threads may still use it: the process ends anyway
    print(summary.text(), file=out)
    if options.report is not None:
        summary.write_report(options.report)
    return summary.exit_status(signum)


class _Run:
    """The state of one import, shared by the main thread and the sending threads."""

    def __init__(
        self,
        options: ImportOptions,
        summary: Summary,
        progress: ImportProgress,
        client: ArchiveClient,
    ) -> None:
        self.options = options
        self.summary = summary
        self.progress = progress
        self.client = client
        self.stopping = threading.Event()
        self.unsent: dict[int, tuple[str, str]] = {}  # id of an item → its name and SOP UID
        self._held: dict[str, dict[str, Held]] = {}
        self._batches_left: dict[str, int] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def record(self, result: FileResult, item: Item | None = None) -> None:
        """Count a file's result and note it if it was skipped or failed."""
        if item is not None:
            self.unsent.pop(id(item), None)
        self.summary.add(result)
        self.summary.note(result, sys.stderr)

    def stop(self) -> None:
        """Stop sending; the files not done are counted as not sent."""
        self.stopping.set()
        for name, sop_uid in list(self.unsent.values()):
            self.record(FileResult(name, Outcome.NOT_SENT, sop_uid, "interrupted"))
        self.unsent.clear()

    def execute(self, locations: Sequence[str], sources: Sources) -> None:
        """The phases, one after the other."""
        self.progress.phase("finding files")
        items: list[Item] = []
        for location in locations:
            for item in sources.items(location):
                items.append(item)
                self.unsent[id(item)] = (item.name, "")
                self.progress.advance(1, 0)
        for name, reason in sources.missing:
            self.record(FileResult(name, Outcome.FAILED, "", "not readable", reason))
        files = self._scan(items)
        batches = plan_batches(files, self.options.batch_files, self.options.batch_bytes)
        self._send(sending_order(batches), sum(f.item.size for f in files))

    def _scan(self, items: list[Item]) -> list[Scanned]:
        """Read every header (in parallel); record the files not to send."""
        self.progress.phase("reading headers", len(items), sum(i.size for i in items))
        executor = ThreadPoolExecutor(self.options.parallel, thread_name_prefix="import-scan")
        to_send: list[Scanned] = []
        try:
            for item, scanned in zip(items, executor.map(_scan_one, items), strict=True):
                self.progress.advance(1, item.size)
                if isinstance(scanned, FileResult):
                    self.record(scanned, item)
                elif scanned.skip is None:
                    to_send.append(scanned)
                    self.unsent[id(item)] = (item.name, scanned.sop_uid)
                else:
                    result = FileResult(item.name, scanned.skip, scanned.sop_uid, "", scanned.note)
                    self.record(result, item)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        return to_send

    def _send(self, batches: list[Batch], nbytes: int) -> None:
        """Send the batches from ``parallel`` threads; record results as they come."""
        work: queue.SimpleQueue[Batch] = queue.SimpleQueue()
        done: queue.SimpleQueue[tuple[Batch, list[FileResult], int]] = queue.SimpleQueue()
        for batch in batches:
            work.put(batch)
            self._batches_left[batch.study_uid] = self._batches_left.get(batch.study_uid, 0) + 1
        self.progress.phase("sending", sum(len(b.files) for b in batches), nbytes)
        started = time.monotonic()
        for number in range(min(self.options.parallel, len(batches))):
            name = f"import-send-{number}"
            threading.Thread(target=self._worker, args=(work, done), name=name, daemon=True).start()
        for _ in batches:
            while True:
                try:
                    batch, results, sent = done.get(timeout=_POLL)
                    break
                except queue.Empty:
                    continue
            for result, file in zip(results, batch.files, strict=True):
                self.record(result, file.item)
                stored = result.outcome in (Outcome.STORED, Outcome.REPLACED)
                self.progress.advance(1, file.item.size, 1 if stored else 0)
            self.summary.sent_bytes += sent
            self.summary.sending_seconds = time.monotonic() - started

    def _worker(
        self,
        work: queue.SimpleQueue[Batch],
        done: queue.SimpleQueue[tuple[Batch, list[FileResult], int]],
    ) -> None:
        while not self.stopping.is_set():
            try:
                batch = work.get_nowait()
            except queue.Empty:
                return
            try:
                results, sent = self._process(batch)
            except Exception as exc:  # a bug must not hang the import: report the batch
                message = f"{type(exc).__name__}: {exc}"
                results = [
                    FileResult(f.item.name, Outcome.FAILED, f.sop_uid, "importer error", message)
                    for f in batch.files
                ]
                sent = 0
            done.put((batch, results, sent))

    def _process(self, batch: Batch) -> tuple[list[FileResult], int]:
        """Skip the groups the archive holds, send the others: each file's result in order."""
        held = self._held_of(batch.study_uid)
        results: dict[int, FileResult] = {}
        to_send: list[Scanned] = []
        for group in batch.groups:
            skipped = _held_group(group, held) if held else None
            if skipped is None:
                to_send += group
            else:
                results.update((id(f), r) for f, r in zip(group, skipped, strict=True))
        if to_send:
            results.update(
                (id(f), r) for f, r in zip(to_send, self.client.store(to_send), strict=True)
            )
        self._batch_done(batch.study_uid)
        return [results[id(f)] for f in batch.files], sum(f.item.size for f in to_send)

    def _held_of(self, study_uid: str) -> dict[str, Held]:
        """What the archive holds of a study: asked once, before its first batch is sent."""
        if not self.options.resume or not study_uid:
            return {}
        with self._lock:
            lock = self._locks.setdefault(study_uid, threading.Lock())
        with lock:
            if study_uid not in self._held:
                try:
                    self._held[study_uid] = self.client.held(study_uid)
                except ArchiveError as exc:
                    print(f"note: study {study_uid}: {exc}; its files are sent", file=sys.stderr)
                    self._held[study_uid] = {}
            return self._held[study_uid]

    def _batch_done(self, study_uid: str) -> None:
        with self._lock:
            self._batches_left[study_uid] -= 1
            if not self._batches_left[study_uid]:
                self._held.pop(study_uid, None)
                self._locks.pop(study_uid, None)


def _scan_one(item: Item) -> Scanned | FileResult:
    try:
        return scan_item(item)
    except OSError as exc:
        return FileResult(item.name, Outcome.FAILED, "", "not readable", str(exc))


def _held_group(group: Sequence[Scanned], held: dict[str, Held]) -> list[FileResult] | None:
    """Results for a group of files of one SOP Instance UID when the archive holds one of
    them (``None``: send the group). A file matches when its size and SHA-256 are those of
    the stored object; an archive that gives no SHA-256 is trusted on the UID alone."""
    uid = group[0].sop_uid
    entry = held.get(uid) if uid else None
    if entry is None:
        return None
    if entry.sha256 is None:
        text = "the archive holds this SOP Instance UID (it gives no SHA-256 to compare)"
        return [FileResult(f.item.name, Outcome.HELD, uid, "", text) for f in group]
    match = None
    for file in group:
        if entry.size is not None and entry.size != file.item.size:
            continue
        try:
            if sha256_of(file.item) == entry.sha256:
                match = file
                break
        except OSError:
            continue  # sending it will tell
    if match is None:
        return None  # the archive holds other bytes: send (it replaces them)
    return [
        FileResult(
            f.item.name,
            Outcome.HELD,
            uid,
            "",
            "the archive holds these bytes"
            if f is match
            else f"the archive holds another file of this SOP Instance UID: {match.item.name}",
        )
        for f in group
    ]
