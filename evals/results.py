"""The results file: per-item rows, metric definitions, aggregates with intervals, metadata.

Design decisions:
- A results file carries the definition of each metric (`MetricSpec`) next to its value,
  so any reader (the UI, `compare`, a test) recomputes an aggregate from the item rows with
  `aggregate()` and nothing else; nothing in an aggregate is known only to the suite.
- Four aggregate kinds cover every suite: the mean of a per-item score (F1, accuracy),
  a ratio of sums (bits per byte = nats / bytes / ln 2, which must not be a mean of per-item
  ratios), and the mean or a percentile of values pooled across items (latency; inter-token
  gaps are many per item). Intervals resample items in every case.
- Rows that errored (a failed RPC) keep their error message and are left out of every
  aggregate; their count is a top-level field, so a run that half failed cannot pass as a
  clean run.
- Plain JSON with a `format` number; `load_results` checks it and says what is wrong with a
  file that is not a results file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from evals.errors import EvalError
from evals.scoring import bootstrap_ci

FORMAT = 1
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Literal["mean", "ratio", "pooled_mean", "percentile"]
    field: str  # a score (mean, ratio numerator) or a sample list (pooled_mean, percentile)
    description: str
    denominator: str = ""  # ratio only
    scale: float = 1.0  # multiplies the statistic (1/ln 2 turns nats into bits)
    q: float = 50.0  # percentile only
    higher_is_better: bool = True


@dataclass
class Row:
    """One item's outcome. `scores` are numbers per item; `samples` are lists (latency gaps)."""

    id: str
    input: str = ""
    reference: str = ""
    output: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    passed: bool | None = None  # None: the suite has no pass/fail for an item
    label: str = ""  # classification suites: the expected class ...
    prediction: str = ""  # ... and the predicted one
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> Row:
        return cls(**data)


@dataclass
class Aggregate:
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


def metric_statistic(spec: MetricSpec, rows: list[Row]):
    """A function of item indices computing `spec` over those rows."""
    if spec.kind == "mean":
        values = np.array([r.scores[spec.field] for r in rows], dtype=float)
        return lambda idx: float(values[idx].mean()) * spec.scale
    if spec.kind == "ratio":
        num = np.array([r.scores[spec.field] for r in rows], dtype=float)
        den = np.array([r.scores[spec.denominator] for r in rows], dtype=float)

        def ratio(idx):
            total = den[idx].sum()
            return float(num[idx].sum() / total) * spec.scale if total else math.nan

        return ratio
    pooled = [np.array(r.samples[spec.field], dtype=float) for r in rows]
    reduce = np.mean if spec.kind == "pooled_mean" else lambda v: np.percentile(v, spec.q)

    def over_samples(idx):
        values = np.concatenate([pooled[i] for i in idx]) if len(idx) else np.array([])
        return float(reduce(values)) * spec.scale if values.size else math.nan

    return over_samples


def _has_field(spec: MetricSpec, row: Row) -> bool:
    if spec.kind in ("pooled_mean", "percentile"):
        return spec.field in row.samples
    return spec.field in row.scores and (spec.kind != "ratio" or spec.denominator in row.scores)


def usable_rows(spec: MetricSpec, rows: list[Row]) -> list[Row]:
    """The rows a metric is computed from: no error, and carrying the metric's fields."""
    return [r for r in rows if not r.error and _has_field(spec, r)]


def aggregate(spec: MetricSpec, rows: list[Row], with_ci: bool = True) -> Aggregate:
    rows = usable_rows(spec, rows)
    if not rows:
        return Aggregate(None, None, None, 0)
    statistic = metric_statistic(spec, rows)
    value = statistic(np.arange(len(rows)))
    ci = bootstrap_ci(statistic, len(rows)) if with_ci else None
    value = None if math.isnan(value) else value
    return Aggregate(value, *(ci or (None, None)), n=len(rows))


@dataclass
class RunResult:
    suite: str
    suite_version: str
    model: str
    target: dict[str, Any]  # {"kind": "live", "address": ...} or {"kind": "checkpoint", ...}
    settings: dict[str, Any]
    metrics: list[MetricSpec]
    rows: list[Row]
    git_revision: str = ""
    started_at: str = ""
    finished_at: str = ""
    duration_s: float = 0.0
    aggregates: dict[str, Aggregate] = field(default_factory=dict)
    format: int = FORMAT

    @property
    def errors(self) -> int:
        return sum(1 for r in self.rows if r.error)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.error or r.passed is False]

    def compute_aggregates(self) -> None:
        self.aggregates = {m.name: aggregate(m, self.rows) for m in self.metrics}

    def to_json(self) -> dict:
        data = asdict(self)
        data["errors"] = self.errors
        data["items"] = data.pop("rows")
        return data

    @classmethod
    def from_json(cls, data: dict) -> RunResult:
        data = dict(data)
        data.pop("errors", None)
        rows = [Row.from_json(r) for r in data.pop("items")]
        return cls(
            **{
                **data,
                "rows": rows,
                "metrics": [MetricSpec(**m) for m in data["metrics"]],
                "aggregates": {k: Aggregate(**v) for k, v in data.get("aggregates", {}).items()},
            }
        )

    def headline(self) -> dict[str, float]:
        """Metric name -> value, for logs and tables."""
        return {k: a.value for k, a in self.aggregates.items() if a.value is not None}


def dumps(result: RunResult) -> str:
    return json.dumps(result.to_json(), indent=1, ensure_ascii=False)


def save_results(result: RunResult, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RESULTS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(dumps(result))
    tmp.replace(path)
    return path


def parse_results(text: str, where: str) -> RunResult:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise EvalError(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "items" not in data:
        raise EvalError(
            f"{where}: not an evals results file (format {FORMAT}); "
            "give a run folder under runs/evals/ or its results.json"
        )
    try:
        return RunResult.from_json(data)
    except (TypeError, KeyError) as exc:
        raise EvalError(f"{where}: malformed results file ({exc})") from None


def load_results(path: Path | str) -> RunResult:
    """A run folder or its results.json."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise EvalError(f"{path} not found: give a run folder under runs/evals/ or a results file")
    return parse_results(path.read_text(), str(path))
