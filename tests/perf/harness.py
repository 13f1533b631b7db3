"""Measuring: repetitions, medians, query counts, and the results table.

Each scenario times our code and a baseline in the same run, on the same data, with the same
clock, and reports the median of its repetitions. Queries are counted with a connection wrapper
(a counter, not Django's query log) so that counting costs nothing measurable.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection


class QueryCounter:
    """Counts the statements this thread's connection runs (execute and executemany)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


@contextmanager
def counting_queries() -> Iterator[QueryCounter]:
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        yield counter


@dataclass
class Sample:
    """Repeated measurements of one thing: seconds per run and queries per run."""

    seconds: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def query_count(self) -> int | None:
        return max(self.queries) if self.queries else None


def repeat(
    run: Callable[[], Any],
    *,
    times: int,
    before: Callable[[], Any] | None = None,
    after: Callable[[], Any] | None = None,
    warmup: int = 0,
) -> Sample:
    """Run ``run`` ``times`` times (after ``warmup`` untimed runs); ``before``/``after`` are not timed."""
    sample = Sample()
    for index in range(warmup + times):
        if before is not None:
            before()
        with counting_queries() as counter:
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
        if after is not None:
            after()
        if index >= warmup:
            sample.seconds.append(elapsed)
            sample.queries.append(counter.count)
    return sample


# --- the table ------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One reported value: a median time (lower is better) or a rate (higher is better)."""

    value: float
    unit: str = "s"  # "s" for a duration, anything else ("rows/s", "req/s") for a rate
    queries: int | None = None
    runs: int = 1
    note: str = ""

    @property
    def is_rate(self) -> bool:
        return self.unit != "s"

    def text(self) -> str:
        if self.is_rate:
            shown = f"{self.value:,.0f} {self.unit}" if self.value >= 100 else f"{self.value:,.1f} {self.unit}"
        elif self.value < 1:
            shown = f"{self.value * 1000:,.1f} ms"
        else:
            shown = f"{self.value:,.2f} s"
        return shown + (f" ({self.note})" if self.note else "")

    @classmethod
    def of(cls, sample: Sample, note: str = "") -> Figure:
        return cls(sample.median, "s", sample.query_count, len(sample.seconds), note)


@dataclass
class Row:
    scenario: str
    what: str
    ours: Figure
    baseline: Figure | None = None
    baseline_what: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        """How many times better ours is than the baseline (>1: ours is faster)."""
        if self.baseline is None or not self.baseline.value or not self.ours.value:
            return None
        if self.ours.is_rate:
            return self.ours.value / self.baseline.value
        return self.baseline.value / self.ours.value


HEADERS = (
    "scenario",
    "what",
    "ours (median)",
    "queries",
    "baseline",
    "baseline (median)",
    "queries",
    "ratio",
    "target",
    "met",
)


def _cells(row: Row) -> tuple[str, ...]:
    ratio = row.ratio
    return (
        row.scenario,
        row.what,
        f"{row.ours.text()} ×{row.ours.runs}",
        "—" if row.ours.queries is None else f"{row.ours.queries:,}",
        row.baseline_what or "—",
        "—" if row.baseline is None else f"{row.baseline.text()} ×{row.baseline.runs}",
        "—" if row.baseline is None or row.baseline.queries is None else f"{row.baseline.queries:,}",
        "—" if ratio is None else (f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:,.2f}×"),
        row.target or "—",
        {True: "yes", False: "**no**", None: "—"}[row.met],
    )


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(row)) + " |" for row in rows]
    return "\n".join(lines)
