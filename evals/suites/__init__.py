"""The suites by name. Modules load on demand, so `python -m evals list` stays quick."""

from __future__ import annotations

import importlib

from evals.errors import EvalError
from evals.suites.base import Item, Suite, SuiteConfig

# name -> "module:Class"
SUITES: dict[str, str] = {
    "smoke": "evals.suites.smoke:Smoke",
    "perplexity": "evals.suites.perplexity:Perplexity",
    "docs-qa": "evals.suites.docs_qa:DocsQA",
    "choice": "evals.suites.choice:Choice",
    "latency": "evals.suites.latency:Latency",
    "retrieval": "evals.suites.retrieval:Retrieval",
    "guardrails": "evals.suites.guardrails:Guardrails",
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise EvalError(f"unknown suite {name!r}; the suites are: {', '.join(SUITES)}")
    module, cls = SUITES[name].split(":")
    return getattr(importlib.import_module(f"{module}"), cls)()


__all__ = ["SUITES", "Item", "Suite", "SuiteConfig", "get_suite"]
