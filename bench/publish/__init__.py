"""Benchmark results JSON -> ``docs/performance.md`` and its plots.

Run from the repository root: ``python -m bench.publish bench/results/bench-<date>.json``. The
JSON is what ``python -m bench`` writes (see bench/results.py); this package only reads it, so a
published page can be rebuilt from the JSON alone. The same report gives the same markdown text;
the plots are PNGs of a fixed size.

Written: ``<docs-dir>/performance.md`` and ``<docs-dir>/performance/*.png`` (a plot with
nothing to show is not drawn, and a stale file of that name is removed). The page is made of
``text`` (numbers and cells), ``layout`` (order), ``tables``, ``plots``, ``findings`` and
``document`` (the whole page); ``cli`` is the command.
"""

from __future__ import annotations

from bench.publish.cli import main
from bench.publish.document import publish, render_markdown
from bench.publish.findings import findings_of
from bench.publish.layout import SCENARIOS
from bench.publish.plots import (
    DPI,
    LATENCY_PNG,
    THROUGHPUT_FIGSIZE,
    THROUGHPUT_PNG,
    latency_figsize,
    plot_latency_vs_index_size,
    plot_throughput_vs_concurrency,
)

__all__ = [
    "DPI",
    "LATENCY_PNG",
    "SCENARIOS",
    "THROUGHPUT_FIGSIZE",
    "THROUGHPUT_PNG",
    "findings_of",
    "latency_figsize",
    "main",
    "plot_latency_vs_index_size",
    "plot_throughput_vs_concurrency",
    "publish",
    "render_markdown",
]
