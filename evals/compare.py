"""Compare two runs of one suite: per-metric deltas with paired intervals, changed items.

Design decisions:
- Items pair by id. The suites draw items deterministically from a seed, so two runs of
  one suite version share them; only shared items (without errors in either run) enter
  the deltas, and how many were left out is reported.
- A delta's interval is a paired bootstrap: the same resampled items in both runs, which is
  far tighter than two independent intervals when the models agree on most items.
- "Changed" items are those whose pass/fail flipped, or, for suites without pass/fail,
  whose own value of the first metric moved (a chunk's bits per byte, a request's mean
  time to first token); listed biggest change first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from evals.errors import EvalError
from evals.report import fmt
from evals.results import MetricSpec, Row, RunResult, metric_statistic, usable_rows
from evals.scoring import bootstrap_ci


@dataclass
class MetricDelta:
    name: str
    a: float | None
    b: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    higher_is_better: bool

    @property
    def verdict(self) -> str:
        if self.delta is None or self.ci_low is None:
            return ""
        if self.ci_low > 0 or self.ci_high < 0:
            better = (self.delta > 0) == self.higher_is_better
            return "better" if better else "worse"
        return "no clear change"


@dataclass
class ChangedItem:
    id: str
    input: str
    before: str
    after: str
    change: float  # signed change in the item's main score (B - A)


@dataclass
class Comparison:
    a: RunResult
    b: RunResult
    deltas: list[MetricDelta]
    changed: list[ChangedItem]
    shared: int
    only_a: int
    only_b: int
    warnings: list[str] = field(default_factory=list)


def _main_score(row: Row, spec: MetricSpec) -> float | None:
    """Pass/fail where the suite has it, else the item's share of the first metric."""
    if row.passed is not None:
        return float(row.passed)
    for name in (spec.name, spec.field):
        if name in row.scores:
            return row.scores[name]
    samples = row.samples.get(spec.field)
    return float(np.mean(samples)) if samples else None


def _delta(spec: MetricSpec, rows_a: list[Row], rows_b: list[Row]) -> MetricDelta:
    ids_a = {r.id for r in usable_rows(spec, rows_a)}
    ids_b = {r.id for r in usable_rows(spec, rows_b)}
    by_a, by_b = {r.id: r for r in rows_a}, {r.id: r for r in rows_b}
    shared = [i for i in by_a if i in ids_a and i in ids_b]
    if not shared:
        return MetricDelta(spec.name, None, None, None, None, None, 0, spec.higher_is_better)
    stat_a = metric_statistic(spec, [by_a[i] for i in shared])
    stat_b = metric_statistic(spec, [by_b[i] for i in shared])

    def delta(idx):
        return stat_b(idx) - stat_a(idx)

    everything = np.arange(len(shared))
    a, b = stat_a(everything), stat_b(everything)
    ci = bootstrap_ci(delta, len(shared))
    value = None if math.isnan(b - a) else b - a
    return MetricDelta(
        spec.name, a, b, value, *(ci or (None, None)), len(shared), spec.higher_is_better
    )


def compare_runs(a: RunResult, b: RunResult) -> Comparison:
    if a.suite != b.suite:
        raise EvalError(f"cannot compare a `{a.suite}` run with a `{b.suite}` run")
    warnings = []
    if a.suite_version != b.suite_version:
        warnings.append(
            f"suite versions differ (v{a.suite_version} vs v{b.suite_version}): items or "
            "scoring changed between them"
        )
    deltas = [_delta(spec, a.rows, b.rows) for spec in b.metrics]
    by_a = {r.id: r for r in a.rows}
    by_b = {r.id: r for r in b.rows}
    changed = []
    for item_id, row_b in by_b.items():
        row_a = by_a.get(item_id)
        if row_a is None or row_a.error or row_b.error:
            continue
        before, after = _main_score(row_a, b.metrics[0]), _main_score(row_b, b.metrics[0])
        if before is None or after is None or abs(after - before) < 1e-9:
            continue
        changed.append(
            ChangedItem(
                item_id,
                row_b.input,
                row_a.error or row_a.output,
                row_b.error or row_b.output,
                after - before,
            )
        )
    changed.sort(key=lambda c: -abs(c.change))
    shared = len(by_a.keys() & by_b.keys())
    return Comparison(
        a, b, deltas, changed, shared, len(by_a) - shared, len(by_b) - shared, warnings
    )


def markdown_comparison(comparison: Comparison, name_a: str, name_b: str, limit: int = 20) -> str:
    a, b = comparison.a, comparison.b
    parts = [
        f"# {a.suite}: {a.model} (A) vs {b.model} (B)",
        "",
        f"- A: `{name_a}`",
        f"- B: `{name_b}`",
        f"- shared items: {comparison.shared} (only in A: {comparison.only_a}, "
        f"only in B: {comparison.only_b})",
        *[f"- warning: {w}" for w in comparison.warnings],
        "",
        "| metric | A | B | B - A | 95% CI (paired) | n | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in comparison.deltas:
        ci = f"[{fmt(d.ci_low)}, {fmt(d.ci_high)}]" if d.ci_low is not None else ""
        parts.append(
            f"| {d.name} | {fmt(d.a)} | {fmt(d.b)} | {fmt(d.delta)} | {ci} | {d.n} | {d.verdict} |"
        )
    if comparison.changed:
        parts += ["", f"## Changed items ({len(comparison.changed)})", ""]
        parts += ["| item | change | A | B |", "|---|---|---|---|"]
        for c in comparison.changed[:limit]:
            parts.append(f"| {c.id} | {c.change:+.3g} | {_short(c.before)} | {_short(c.after)} |")
    return "\n".join(parts) + "\n"


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"
