"""The console's study list of a 10,000-study archive: ``python -m bench.console_list``.

Loads a synthetic archive (bench/synth.py, ~20 instances a study) into the embedded index
through its port (bench/load_pacsflow.py; no objects, so thumbnails are not part of it),
starts ``pacsflow serve`` on it and opens ``/`` in headless Chromium (tests/support/browser.py,
``bash tests/browser/setup.sh`` first). It times, in the page, from the navigation's start to
the first page of 25 rows rendered (the ``pacsflow:studies-shown`` measure's end), and each
move to the next page (the measure itself: the QIDO-RS request, its answer and the rows);
prints medians and 95th percentiles. Results: docs/console.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.load_pacsflow import load_index
from bench.synth import generate
from tests.support.browser import Browser
from tests.support.servers import start_server

SHOWN = """const m = performance.getEntriesByName('pacsflow:studies-shown');
return m.length >= arg && document.querySelectorAll('#studies tbody tr').length === 25
  && {count: document.getElementById('count').innerText, start: m[m.length - 1].startTime,
      duration: m[m.length - 1].duration};"""


def summary(times: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(statistics.quantiles(times, n=20)[18], 1),
        "max_ms": round(max(times), 1),
    }


def measure(url: str, runs: int, artifacts: Path) -> dict[str, Any]:
    """First page after a navigation, and the next page, ``runs`` times each."""
    browser = Browser(artifacts)
    first: list[float] = []
    pages: list[float] = []
    try:
        for run in range(runs + 1):  # the first navigation warms the server up
            browser.call("goto", url=f"{url}/")
            shown = browser.wait_for(SHOWN, arg=1)
            if run:
                first.append(shown["start"] + shown["duration"])
            browser.call("click", selector="#next")
            moved = browser.wait_for(SHOWN, arg=2)
            if run:
                pages.append(moved["duration"])
        browser.save("console-list")
    finally:
        browser.close()
    return {"shown": shown["count"], "first_page": summary(first), "next_page": summary(pages)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dir", type=Path, help="keep the archive here (reused when loaded)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="pacsflow-console-bench-"))
    data = root / "data"
    marker = root / "loaded.json"
    if not marker.is_file() or json.loads(marker.read_text())["studies"] != args.studies:
        data.mkdir(parents=True, exist_ok=True)
        (data / "index.sqlite").unlink(missing_ok=True)
        corpus = generate(args.studies)
        report = asyncio.run(load_index(corpus, data / "index.sqlite", 1000, 2))
        print(f"loaded {report.instances} instances of {report.studies} studies"
              f" in {report.seconds:.0f} s", file=sys.stderr)  # fmt: skip
        marker.write_text(json.dumps({"studies": args.studies}))
    server = start_server(data)
    try:
        result = measure(server.url.removesuffix("/dicom-web"), args.runs, root / "browser")
    finally:
        server.stop()
    result = {"studies": args.studies, "runs": args.runs, **result}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
