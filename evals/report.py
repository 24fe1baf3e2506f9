"""Markdown reports: one run (metrics with intervals, failures) and a table of many runs.

Design decision: reports are rendered from results files alone, so `python -m evals report`
can rebuild them at any time and the UI shows the same numbers as the terminal.
"""

from __future__ import annotations

from evals.results import Aggregate, RunResult

MAX_FAILURES = 20


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if abs(value) < 1e-12:  # float noise around zero (a centered score at chance)
        return "0"
    return f"{value:.{digits}g}"


def fmt_ci(agg: Aggregate) -> str:
    if agg.ci_low is None:
        return ""
    return f"[{fmt(agg.ci_low)}, {fmt(agg.ci_high)}]"


def metrics_table(result: RunResult) -> str:
    lines = ["| metric | value | 95% CI | n | better |", "|---|---|---|---|---|"]
    for spec in result.metrics:
        agg = result.aggregates.get(spec.name)
        if agg is None:
            continue
        better = "higher" if spec.higher_is_better else "lower"
        lines.append(f"| {spec.name} | {fmt(agg.value)} | {fmt_ci(agg)} | {agg.n} | {better} |")
    return "\n".join(lines)


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown_report(result: RunResult) -> str:
    target = result.target.get("address") or result.target.get("path", "")
    parts = [
        f"# {result.suite} (v{result.suite_version}) on {result.model}",
        "",
        f"- target: {result.target.get('kind', '')} `{target}`",
        f"- git revision: `{result.git_revision}`",
        f"- started {result.started_at}, took {result.duration_s:.1f} s",
        f"- items: {len(result.rows)}, errors: {result.errors}",
        f"- settings: `{ {k: v for k, v in result.settings.items() if k != 'options'} }`",
        "",
        metrics_table(result),
    ]
    failures = result.failures
    if failures:
        parts += ["", f"## Failures ({len(failures)} of {len(result.rows)})", ""]
        parts += ["| item | input | expected | got |", "|---|---|---|---|"]
        for row in failures[:MAX_FAILURES]:
            got = row.error or row.output
            parts.append(
                f"| {_cell(row.id, 60)} | {_cell(row.input)} | {_cell(row.reference)} | "
                f"{_cell(got)} |"
            )
        if len(failures) > MAX_FAILURES:
            parts.append(f"\n({len(failures) - MAX_FAILURES} more in results.json)")
    return "\n".join(parts) + "\n"


def runs_table(results: list[tuple[str, RunResult]]) -> str:
    """One line per run: name, suite, model, headline metrics."""
    lines = ["| run | suite | model | items | metrics |", "|---|---|---|---|---|"]
    for name, result in results:
        shown = ", ".join(
            f"{spec.name} {fmt(result.aggregates[spec.name].value)}"
            for spec in result.metrics[:3]
            if spec.name in result.aggregates
        )
        lines.append(
            f"| {name} | {result.suite} v{result.suite_version} | {result.model} | "
            f"{len(result.rows)} | {shown} |"
        )
    return "\n".join(lines)
