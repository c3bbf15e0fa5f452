"""bench/publish/: a benchmark results report -> docs/performance.md and its plots."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from bench.publish import (
    DPI,
    LATENCY_PNG,
    THROUGHPUT_FIGSIZE,
    THROUGHPUT_PNG,
    latency_figsize,
    main,
    publish,
    render_markdown,
)
from bench.results import Metric, Report, load, stat

NONE = "\u2014"  # em dash: no value
FAILED_REASON = "orthanc: study 1.2.3.4 missing from the answer"


def _qido(name: str, target: str, scale: int, p50: list[float], error: str | None = None) -> Metric:
    return Metric(
        scenario="qido",
        group="study search",
        name=name,
        target=target,
        unit="ms",
        better="lower",
        primary="p50",
        stats={} if error else {"p50": stat(p50), "p95": stat(v * 1.5 for v in p50)},
        example="/studies?PatientID=P1",
        scale=scale,
        samples=200,
        error=error,
    )


def _stow(target: str, concurrency: int, rate: float, runs: int) -> Metric:
    return Metric(
        scenario="stow",
        group="CT 512x512",
        name="1,000 instances",
        target=target,
        unit="instances/s",
        better="higher",
        primary="instances_per_s",
        stats={
            "instances_per_s": stat([rate] * runs),
            "mb_per_s": stat([rate / 2] * runs),
        },
        params={"concurrency": concurrency},
        samples=1000,
    )


def _report(scales: tuple[int, ...] = (1_000, 10_000), runs: int = 3) -> Report:
    metrics: list[Metric] = []
    for i, scale in enumerate(scales):
        grow = 1 + i
        # pacsflow: median 2.0 ms, spread 0.2 / 2.0 = 10 %; orthanc: 40.0 ms, 2 / 40 = 5 %.
        pacsflow = [1.9 * grow, 2.0 * grow, 2.1 * grow] if runs > 1 else [2.0 * grow]
        orthanc = [39.0 * grow, 40.0 * grow, 41.0 * grow] if runs > 1 else [40.0 * grow]
        metrics += [
            _qido("studies by PatientID", "pacsflow", scale, pacsflow),
            _qido("studies by PatientID", "orthanc", scale, orthanc),
            _qido("studies by PatientName | prefix", "pacsflow", scale, pacsflow),
            _qido(
                "studies by PatientName | prefix",
                "orthanc",
                scale,
                [],
                error=FAILED_REASON if i == 0 else None,
            )
            if i == 0
            else _qido("studies by PatientName | prefix", "orthanc", scale, orthanc),
        ]
    for concurrency in (1, 2, 4):
        metrics.append(_stow("pacsflow", concurrency, 100.0 * concurrency, runs))
        metrics.append(_stow("orthanc", concurrency, 80.0 * concurrency, runs))
    return Report(
        started="2026-11-25T12:00:00",
        finished="2026-11-25T12:30:00",
        seconds=1800.0,
        profile="smoke",
        runs=runs,
        command="python -m bench --profile smoke",
        machine={"cpus": 2, "cpu_model": "Test CPU", "memory_gib": 8.0, "python": "3.11.7"},
        targets={
            "pacsflow": {"label": "pacsflow, embedded", "version": "0.1.0"},
            "orthanc": {"label": "Orthanc with DICOMweb", "version": "1.10.1"},
        },
        reference="orthanc",
        metrics=metrics,
        failures=[f"qido studies by PatientName | prefix, scale 1,000, {FAILED_REASON}"],
        notes={"qido": ["a qido note"], "general": ["a general note"]},
    )


def _rows(markdown: str, first_cells: list[str]) -> list[list[str]]:
    """Table rows (cells split on unescaped pipes) whose first cells are ``first_cells``."""
    found = []
    for line in markdown.splitlines():
        if not line.startswith("| "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells[: len(first_cells)] == first_cells:
            found.append(cells)
    return found


def _section(markdown: str, title: str) -> str:
    start = markdown.index(f"\n## {title}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else len(markdown)]


def test_document_sections_in_order(tmp_path: Path) -> None:
    text = publish(_report(), tmp_path, "bench/results/bench-x.json").read_text()
    assert text.startswith("# Performance: pacsflow beside Orthanc\n")
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings == [
        "Machine",
        "How to reproduce",
        "Summary",
        "STOW-RS ingest",
        "QIDO-RS search",
        "Noise",
        "Failures",
        "Notes",
    ]
    assert "3 repeated runs" in text and "30 min 0 s" in text
    assert (
        "python -m bench --profile smoke\npython -m bench.publish bench/results/bench-x.json"
        in text
    )
    assert "`bench/results/bench-x.json`" in text
    assert "- a qido note" in _section(text, "QIDO-RS search")
    assert "- a general note" in _section(text, "Notes")


def test_summary_ratio_from_medians(tmp_path: Path) -> None:
    text = publish(_report(), tmp_path, "r.json").read_text()
    summary = _section(text, "Summary")
    header = _rows(summary, ["scenario"])[0]
    row = _rows(summary, ["QIDO-RS search", "study search: studies by PatientID", "1,000"])
    assert len(row) == 1
    cells = dict(zip(header, row[0], strict=True))
    assert cells["pacsflow"] == "2.00"
    assert cells["orthanc"] == "40.0"
    assert cells["pacsflow / orthanc"] == "0.05"  # 2.0 / 40.0
    assert cells["stat"] == "p50 ms" and cells["better"] == "lower"
    stow = _rows(summary, ["STOW-RS ingest", "CT 512x512: 1,000 instances"])
    assert [dict(zip(header, r, strict=True))["pacsflow / orthanc"] for r in stow] == ["1.25"] * 3
    # a measurement the reference failed: its column says so, no ratio
    failed = _rows(summary, ["QIDO-RS search", "study search: studies by PatientName \\| prefix"])
    assert dict(zip(header, failed[0], strict=True))["orthanc"] == "failed"
    assert dict(zip(header, failed[0], strict=True))["pacsflow / orthanc"] == NONE


def test_scenario_table_median_range_and_failed(tmp_path: Path) -> None:
    text = publish(_report(), tmp_path, "r.json").read_text()
    qido = _section(text, "QIDO-RS search")
    header = _rows(qido, ["measurement"])[0]
    assert header[-3:] == ["p95 ms", "samples", "p50 ms ratio to orthanc"]
    first = _rows(qido, ["studies by PatientID", "1,000", "pacsflow"])[0]
    assert first[3] == "2.00 (1.90\u20132.10)"  # en dash
    assert first[-2:] == ["200", "0.05"]
    # the failed orthanc metric: "failed" in every stat, its reason under Failures
    failed = [r for r in _rows(qido, [""]) if r[2] == "orthanc" and "failed" in r]
    assert failed == [["", "", "orthanc", "failed", "failed", NONE, NONE]]
    assert FAILED_REASON in _section(text, "Failures")
    assert FAILED_REASON not in qido


def test_noise_table_shows_spread(tmp_path: Path) -> None:
    noise = _section(publish(_report(), tmp_path, "r.json").read_text(), "Noise")
    assert "(max \u2212 min) / median" in noise
    pacsflow = _rows(noise, ["QIDO-RS search", "pacsflow"])[0]
    orthanc = _rows(noise, ["QIDO-RS search", "orthanc"])[0]
    # spread is a ratio of the run range to the median: the same at every scale here
    assert pacsflow[2:5] == ["4", "10.0 %", "10.0 %"]
    assert orthanc[2:5] == ["3", "5.0 %", "5.0 %"]  # 4 metrics, the failed one not counted
    assert _rows(noise, ["STOW-RS ingest", "pacsflow"])[0][2:5] == ["3", "0.0 %", "0.0 %"]


def test_single_run_noise_cannot_be_estimated(tmp_path: Path) -> None:
    text = publish(_report(runs=1), tmp_path, "r.json").read_text()
    assert "cannot be estimated" in _section(text, "Noise")
    assert "2.00 (" not in text  # no range from one run
    assert _rows(text, ["studies by PatientID", "1,000", "pacsflow"])[0][3] == "2.00"


def test_plots_are_pngs_of_the_configured_size(tmp_path: Path) -> None:
    text = publish(_report(), tmp_path, "r.json").read_text()
    for name, size in (
        (LATENCY_PNG, latency_figsize(2)),  # two queries: one row of three panels
        (THROUGHPUT_PNG, THROUGHPUT_FIGSIZE),
    ):
        path = tmp_path / "performance" / name
        assert f"](performance/{name})" in text
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (round(size[0] * DPI), round(size[1] * DPI))
            image.verify()


def test_single_scale_no_latency_plot_and_no_broken_link(tmp_path: Path) -> None:
    publish(_report(), tmp_path, "r.json")  # leaves a latency plot behind...
    text = publish(_report(scales=(10_000,)), tmp_path, "r.json").read_text()
    assert LATENCY_PNG not in text
    assert not (tmp_path / "performance" / LATENCY_PNG).exists()  # ...removed as stale
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == [f"performance/{THROUGHPUT_PNG}"]
    assert all((tmp_path / link).is_file() for link in links)
    assert "| QIDO-RS search | study search: studies by PatientID | 10,000 |" in text


def test_deterministic_and_json_round_trip(tmp_path: Path) -> None:
    report = _report()
    plots = {"qido": f"performance/{LATENCY_PNG}"}
    report.save(tmp_path / "r.json")
    again = load(tmp_path / "r.json")
    assert render_markdown(report, plots) == render_markdown(again, plots)
    assert render_markdown(report, plots, source="x.json") == render_markdown(
        report, plots, source="x.json"
    )


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _report().save(tmp_path / "r.json")
    assert main([str(tmp_path / "r.json"), "--docs-dir", str(tmp_path / "docs")]) == 0
    assert (tmp_path / "docs" / "performance.md").is_file()
    assert capsys.readouterr().out.strip().endswith("performance.md")
    (tmp_path / "bad.json").write_text('{"schema": 99}')
    assert main([str(tmp_path / "bad.json"), "--docs-dir", str(tmp_path / "docs")]) == 2


def test_findings_next_to_the_results_come_first(tmp_path: Path) -> None:
    _report().save(tmp_path / "r.json")
    (tmp_path / "r.findings.md").write_text("pacsflow searches **faster** here.\n")
    assert main([str(tmp_path / "r.json"), "--docs-dir", str(tmp_path / "docs")]) == 0
    page = (tmp_path / "docs" / "performance.md").read_text()
    assert page.index("## Findings") < page.index("## Machine")
    assert "pacsflow searches **faster** here." in page
    (tmp_path / "r.findings.md").unlink()
    assert main([str(tmp_path / "r.json"), "--docs-dir", str(tmp_path / "docs")]) == 0
    assert "## Findings" not in (tmp_path / "docs" / "performance.md").read_text()
