"""Benchmarks (run as scripts: `python bench/NAME.py`), and what they share."""

from __future__ import annotations

import numpy as np


def percentiles(ms: list[float]) -> dict[str, float]:
    """p50 and p95 of timings in ms (numpy's linear interpolation), and their count, so
    every benchmark's p95 means the same thing."""
    p50, p95 = np.percentile(ms, [50, 95])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3), "n": len(ms)}
