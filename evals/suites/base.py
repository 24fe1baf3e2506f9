"""The suite interface: a suite is data (`items`) plus a scorer (`run_item`), with a version.

Design decisions:
- A suite is small by default (minutes on a 2-core CPU) and larger with `size` or `full`;
  the data it draws for a size is a deterministic function of the seed, so two runs of the
  same version on two models see the same items and `compare` can pair them.
- `version` changes whenever the items or the scoring change; it is recorded in every
  results file so numbers from different versions are never compared unawares.
- A suite never writes files or talks to the user: it yields rows. The runner owns
  concurrency, progress, resuming, and where results go.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chatforge.paths import REPO_ROOT
from evals.errors import EvalError
from evals.results import MetricSpec, Row
from evals.targets import Target

DEFAULT_CORPUS = REPO_ROOT / "runs" / "data" / "pydocs"


@dataclass
class SuiteConfig:
    size: int | None = None  # items to run; None: the suite's small default
    full: bool = False  # every item the suite has (overrides size)
    seed: int = 0
    corpus: Path = DEFAULT_CORPUS
    max_tokens: int | None = None  # generation suites; None: the suite's default
    options: dict[str, Any] = field(default_factory=dict)  # suite-specific extras

    def to_json(self) -> dict:
        return {**asdict(self), "corpus": str(self.corpus)}


@dataclass(frozen=True)
class Item:
    id: str
    data: dict[str, Any]


class Suite(ABC):
    name: str
    version: str
    description: str
    default_size: int
    live_only: bool = False  # measures the serving path: needs a server, not a checkpoint
    metrics: list[MetricSpec]

    @abstractmethod
    def all_items(self, config: SuiteConfig) -> list[Item]:
        """Every item this suite has for the config, in a seeded order."""

    @abstractmethod
    def run_item(self, item: Item, target: Target, config: SuiteConfig) -> Row:
        """Run one item against the target and score it."""

    def items(self, config: SuiteConfig) -> list[Item]:
        everything = self.all_items(config)
        if config.full:
            return everything
        size = self.default_size if config.size is None else config.size
        if size < 1:
            raise EvalError(f"--size must be at least 1, not {size}")
        return everything[:size]

    def settings(self, config: SuiteConfig) -> dict[str, Any]:
        """What the results file records about how the suite ran."""
        return config.to_json()

    def check_target(self, target: Target, config: SuiteConfig) -> None:
        """Before any item runs: can this suite measure this target with this config?
        Raise EvalError saying what to do if not."""
        if self.live_only and target.kind != "live":
            raise EvalError(
                f"suite `{self.name}` measures a running server; serve the checkpoint with "
                "`python -m backend serve` and pass --target HOST:PORT"
            )
