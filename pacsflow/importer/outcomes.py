"""What happened to each file of an import, and the Store Instances Response read per file.

A STOW-RS answer (PS3.18 10.5.3, Annex I) lists the instances stored (Referenced SOP Sequence,
with a Warning Reason where one applies) and those refused (Failed SOP Sequence, with the
Failure Reason), by SOP Instance UID. Files are matched to those items by UID, in order; a
pacsflow archive also names each refused part by number in the ``Warning`` header
(``part N <uid>: failure XXXX: text``), which places failures exactly and gives their text.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import orjson

__all__ = ["FileResult", "Outcome", "failure_label", "read_store_response"]

JsonDict = dict[str, Any]

REPLACED_WARNING: Final = 0xB100  # pacsflow: an object replaced another one of the same UID
# PS3.18 Table I.2-1 and the codes pacsflow adds (docs/conformance.md).
_FAILURES: Final = {
    0x0110: "Processing failure",
    0x0111: "Duplicate SOP Instance",
    0x0122: "SOP Class not supported",
    0x0124: "Not authorized",
    0xA700: "Out of resources",
    0xA900: "Data Set does not match SOP Class",
    0xC000: "Cannot understand",
    0xC122: "Transfer Syntax not supported",
    0xC409: "Study Instance UID mismatch",
}
_PART: Final = re.compile(r"part (\d+) (.*?): (failure|warning) ([0-9A-Fa-f]{4}): (.*)")
_QUOTED: Final = re.compile(r'299 \S+ "((?:[^"\\]|\\.)*)"')


class Outcome(StrEnum):
    """What happened to a file."""

    STORED = "stored"
    REPLACED = "replaced"
    HELD = "already held"
    NOT_DICOM = "not DICOM"
    SKIPPED = "skipped"
    FAILED = "failed"
    NOT_SENT = "not sent"


@dataclass(frozen=True, slots=True)
class FileResult:
    """The outcome of one file, with the reason (a failure or warning) and its text."""

    name: str
    outcome: Outcome
    sop_uid: str = ""
    reason: str = ""
    message: str = ""


def failure_label(code: int) -> str:
    """``C000 Cannot understand``: a Failure Reason with its PS3.18 name."""
    name = _FAILURES.get(code)
    return f"{code:04X} {name}" if name else f"{code:04X}"


def _first(item: JsonDict, tag: str) -> Any:
    element = item.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return values[0] if values else None


def _items(document: JsonDict, tag: str) -> list[JsonDict]:
    element = document.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return [v for v in values or [] if isinstance(v, dict)]


def _warnings(header: str) -> dict[int, tuple[str, int, str]]:
    """Part number → (failure or warning, code, text) from a pacsflow ``Warning`` header."""
    found = {}
    for quoted in _QUOTED.findall(header):
        text = quoted.replace('\\"', '"').replace("\\\\", "\\")
        if match := _PART.match(text):
            found[int(match[1])] = (match[3], int(match[4], 16), match[5])
    return found


def read_store_response(
    names: Sequence[str], sop_uids: Sequence[str], body: bytes, warning: str = ""
) -> list[FileResult]:
    """The outcome of each file sent (the parts, in order) from a Store Instances Response."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, list) and len(document) == 1:
        document = document[0]
    if not isinstance(document, dict):
        text = "the archive's answer is not a Store Instances Response"
        return [
            FileResult(n, Outcome.FAILED, u, "bad response", text)
            for n, u in zip(names, sop_uids, strict=True)
        ]
    parts = _warnings(warning)
    failed = [
        (_first(i, "00081155") or "", _first(i, "00081197")) for i in _items(document, "00081198")
    ]
    numbered = {n: p for n, p in parts.items() if p[0] == "failure" and 1 <= n <= len(names)}
    results: list[FileResult | None] = [None] * len(names)
    if len(numbered) == len(failed):  # the header places every failure
        for number, (_, code, text) in numbered.items():
            index = number - 1
            results[index] = FileResult(
                names[index], Outcome.FAILED, sop_uids[index], failure_label(code), text
            )
    else:
        _assign_failures(results, names, sop_uids, failed)
    waiting: dict[str, deque[int]] = defaultdict(deque)
    for index, uid in enumerate(sop_uids):
        if results[index] is None:
            waiting[uid].append(index)
    for item in _items(document, "00081199"):
        queue = waiting.get(str(_first(item, "00081155") or ""))
        if not queue:
            continue
        index = queue.popleft()
        code = _first(item, "00081196")
        text = parts.get(index + 1, ("", 0, ""))[2]
        if code is None:
            results[index] = FileResult(names[index], Outcome.STORED, sop_uids[index])
        elif int(code) == REPLACED_WARNING:
            results[index] = FileResult(
                names[index], Outcome.REPLACED, sop_uids[index], f"{int(code):04X}", text
            )
        else:
            label = f"warning {int(code):04X}"
            results[index] = FileResult(names[index], Outcome.STORED, sop_uids[index], label, text)
    missing = "not in the archive's answer"
    return [
        r or FileResult(names[i], Outcome.FAILED, sop_uids[i], "bad response", missing)
        for i, r in enumerate(results)
    ]


def _assign_failures(
    results: list[FileResult | None],
    names: Sequence[str],
    sop_uids: Sequence[str],
    failed: Sequence[tuple[str, Any]],
) -> None:
    """Failed SOP Sequence items to files, by UID in order (an item without UID: any file)."""
    for uid, code in failed:
        candidates = [i for i, u in enumerate(sop_uids) if results[i] is None and u == uid]
        if not candidates:
            candidates = [i for i, u in enumerate(sop_uids) if results[i] is None and not u]
        if not candidates:
            continue
        index = candidates[0]
        label = failure_label(int(code)) if code is not None else "no reason given"
        results[index] = FileResult(names[index], Outcome.FAILED, sop_uids[index], label)
