"""The `Guard` facade: every guardrail check the server makes, decided by the policy.

Stages, in the chat pipeline's order:
- input: `screen_input(messages)` redacts PII in every message and checks each user
  message for oversize, attack rules and the classifier; a `block` stops the request
  before anything is tokenized.
- retrieval: `check_chunks(texts)` says which retrieved chunks to drop and why (planted
  instructions), before they reach the prompt.
- output: `output_guard(messages)` filters the streamed reply (PII, system-prompt leaks).
- `check_text(text, stage)` is the verdict alone, for the CheckText RPC and the evals.

Design decisions:
- Every detector sees the raw text and its normalised views (normalise.py); a finding that
  only a normalised view revealed says which one in its reason ("revealed by leetspeak").
- Checks report findings; the policy maps each finding's category to an action, and the
  most severe action wins (block > redact > flag > allow), ties broken by score.
- Reasons name the rule or detector and the kinds found, never the personal data itself,
  so events and logs do not repeat what was redacted.
- Metrics are recorded here (verdict counts by model, stage, category and action; latency by
  model and stage) through the server's metrics object when one is given, so every caller of the
  guard is counted the same way.
- A retrieved chunk's verdict depends only on its text and the guard's fixed policy and
  classifier, and the same chunks come back for many questions, so verdicts are cached
  by text (bounded LRU, cleared when the classifier changes); every request still counts
  its own verdicts in the metrics.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from backend.guardrails.classifier import AttackClassifier, load_classifier
from backend.guardrails.normalise import raw_view, views, word_count
from backend.guardrails.pii import count_kinds, find_pii, redact
from backend.guardrails.policy import SEVERITY, Policy, PolicyError
from backend.guardrails.rules import category_scores, match_rules
from backend.guardrails.streaming import OutputFilter

log = logging.getLogger("chatforge.guardrails")
_RULE_THRESHOLD = 0.5
CHUNK_VERDICTS = 4096  # retrieved chunks whose verdict is kept


@dataclass
class Verdict:
    action: str = "allow"  # allow | flag | redact | block
    category: str = ""
    score: float = 0.0
    reason: str = ""
    stage: str = "input"
    redacted_text: str = ""


@dataclass
class InputScreen:
    messages: list[dict[str, str]]  # what the model may see (PII redacted)
    verdicts: list[Verdict] = field(default_factory=list)  # every finding, for the stream
    blocked: Verdict | None = None


@dataclass
class ChunkDrop:
    index: int
    verdict: Verdict


def most_severe(verdicts: list[Verdict]) -> Verdict | None:
    return max(verdicts, key=lambda v: (SEVERITY[v.action], v.score), default=None)


def _revealed_by(view_names: list[str]) -> str:
    """ " (revealed by leetspeak)" when only normalised views fired; "" when the raw text did."""
    if not view_names or "raw" in view_names:
        return ""
    return f" (revealed by {', '.join(dict.fromkeys(view_names))})"


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


class Guard:
    def __init__(
        self, policy: Policy, classifier: AttackClassifier | None = None, metrics=None
    ) -> None:
        self.policy = policy
        self.classifier = classifier
        self.metrics = metrics
        self.min_words = policy.classifier.min_words
        self._chunk_verdict = functools.lru_cache(maxsize=CHUNK_VERDICTS)(self._check_chunk)

    @classmethod
    def from_policy(cls, policy: Policy, metrics=None) -> Guard:
        guard = cls(policy, None, metrics)
        guard.load_classifier()
        return guard

    def load_classifier(self) -> None:
        """Load the classifier the policy names; without one the rules run alone."""
        path = self.policy.classifier_path()
        if path is None or not path.exists():
            if self.policy.classifier.required:
                raise PolicyError(
                    f"classifier artifact {path} is missing; build it with "
                    "`make guard-classifier` (or set classifier.required: false)"
                )
            if path is not None:
                log.warning(
                    "no classifier artifact at %s: rule-based checks only "
                    "(build one with `make guard-classifier`)",
                    path,
                )
            return
        self.classifier = load_classifier(path)
        self._chunk_verdict.cache_clear()
        log.info(
            "guard classifier %s (threshold %s) from %s",
            self.classifier.kind,
            self.classifier.threshold,
            path,
        )

    # Findings ---------------------------------------------------------------------------

    def _finding(self, category: str, score: float, reason: str, stage: str) -> Verdict | None:
        action = self.policy.category(category).action
        if action == "allow":
            return None
        return Verdict(action, category, round(score, 4), reason, stage)

    def _attack_findings(self, text: str, stage: str) -> list[Verdict]:
        found = []
        limit = self.policy.input.max_chars
        if stage == "input" and limit is not None and len(text) > limit:
            found.append(
                self._finding(
                    "oversize",
                    1.0,
                    f"{len(text)} characters; the limit is {limit}",
                    stage,
                )
            )
        text_views = views(text) if self.policy.input.normalise else [raw_view(text)]
        hits = match_rules(text, retrieval=stage == "retrieval", text_views=text_views)
        for category, (score, members) in category_scores(hits).items():
            threshold = self.policy.category(category).threshold
            if score >= (_RULE_THRESHOLD if threshold is None else threshold):
                names = ", ".join(h.name for h in members)
                reason = f"rules: {names}{_revealed_by([h.view for h in members])}"
                found.append(self._finding(category, score, reason, stage))
        if self.classifier is not None and stage == "input" and word_count(text) >= self.min_words:
            scores = self.classifier.score([v.text for v in text_views])
            best = int(np.argmax(scores))
            score = float(scores[best])
            threshold = self.policy.categories.prompt_attack.threshold
            limit = self.classifier.threshold if threshold is None else threshold
            if score >= limit:
                revealed = "" if scores[0] >= limit else _revealed_by([text_views[best].name])
                reason = f"classifier ({self.classifier.kind}) p={score:.2f}{revealed}"
                found.append(self._finding("prompt_attack", score, reason, stage))
        return [v for v in found if v is not None]

    def _pii_finding(self, text: str, stage: str) -> Verdict | None:
        pii = self.policy.categories.pii
        if pii.action == "allow":
            return None
        matches = find_pii(text, tuple(pii.kinds))
        if not matches:
            return None
        verdict = self._finding("pii", 1.0, f"{_describe(count_kinds(matches))}", stage)
        verdict.redacted_text = redact(text, matches)
        return verdict

    # Public API -------------------------------------------------------------------------

    def check_text(self, text: str, stage: str = "input", model: str = "") -> Verdict:
        """The verdict alone: the most severe finding, or ALLOW."""
        with self._timed(stage, model):
            found = [] if stage == "output" else self._attack_findings(text, stage)
            pii = self._pii_finding(text, stage)
            verdict = most_severe([*found, *([pii] if pii else [])]) or Verdict(stage=stage)
            if verdict.action == "redact" and pii is not None:
                verdict.redacted_text = pii.redacted_text
            elif verdict is not pii:
                verdict.redacted_text = ""
            self.count([verdict], model)
            return verdict

    def screen_input(self, messages: list[dict[str, str]], model: str = "") -> InputScreen:
        with self._timed("input", model):
            screened, verdicts = [], []
            for message in messages:
                content = message["content"]
                if message["role"] == "user":
                    verdicts += self._attack_findings(content, "input")
                pii = self._pii_finding(content, "input")
                if pii is not None:
                    verdicts.append(pii)
                    if pii.action == "redact":
                        content = pii.redacted_text
                screened.append({**message, "content": content})
            for verdict in verdicts:
                verdict.redacted_text = ""  # the stream never carries the text back
            blocked = most_severe([v for v in verdicts if v.action == "block"])
            self.count(verdicts, model)
            return InputScreen(screened, verdicts, blocked)

    def _check_chunk(self, text: str) -> Verdict | None:
        return most_severe(self._attack_findings(text, "retrieval"))

    def check_chunks(self, texts: list[str], model: str = "") -> list[ChunkDrop]:
        """Which retrieved chunks to drop (policy `block`) or report (`flag`), and why."""
        with self._timed("retrieval", model):
            out = []
            for i, text in enumerate(texts):
                verdict = self._chunk_verdict(text)
                if verdict is not None:
                    out.append(ChunkDrop(i, verdict))
            self.count([d.verdict for d in out], model)
            return out

    def output_guard(self, messages: list[dict[str, str]], model: str = "") -> OutputGuard:
        system_prompts = [m["content"] for m in messages if m["role"] == "system"]
        return OutputGuard(self, system_prompts, model)

    # Metrics ----------------------------------------------------------------------------

    @contextmanager
    def _timed(self, stage: str, model: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe_latency(stage, time.perf_counter() - start, model)

    def observe_latency(self, stage: str, seconds: float, model: str) -> None:
        if self.metrics is not None:
            self.metrics.guard_latency.labels(model, stage).observe(seconds)

    def count(self, verdicts: list[Verdict], model: str) -> None:
        if self.metrics is None:
            return
        for v in verdicts:
            labels = (model, v.stage, v.category or "none", v.action)
            self.metrics.guardrail_verdicts.labels(*labels).inc()


class OutputGuard:
    """One stream's output checks: feed deltas, get back what is safe to send."""

    def __init__(self, guard: Guard, system_prompts: list[str], model: str = "") -> None:
        categories = guard.policy.categories
        self.guard = guard
        self.model = model  # the metrics' label
        self.pii_action = categories.pii.action
        self.leak = categories.prompt_leak
        self.filter = OutputFilter(
            kinds=() if self.pii_action == "allow" else tuple(categories.pii.kinds),
            redact_pii=self.pii_action == "redact",
            secrets=() if self.leak.action == "allow" else tuple(system_prompts),
            min_leak_chars=self.leak.min_chars,
        )
        self.blocked: Verdict | None = None
        self.seconds = 0.0

    def feed(self, text: str) -> tuple[str, list[Verdict]]:
        start = time.perf_counter()
        step = self.filter.feed(text)
        out = self._verdicts(step)
        self.seconds += time.perf_counter() - start
        return ("" if self.blocked else step.text), out

    def finish(self) -> tuple[str, list[Verdict]]:
        start = time.perf_counter()
        step = self.filter.flush()
        out = self._verdicts(step)
        self.seconds += time.perf_counter() - start
        self.guard.observe_latency("output", self.seconds, self.model)
        return ("" if self.blocked else step.text), out

    def _verdicts(self, step) -> list[Verdict]:
        out = []
        if step.leaked:
            out.append(
                Verdict(
                    self.leak.action,
                    "prompt_leak",
                    1.0,
                    f"the reply repeats the system prompt ({step.leaked})",
                    "output",
                )
            )
        if step.redacted:
            out.append(Verdict(self.pii_action, "pii", 1.0, _describe(step.redacted), "output"))
        self.blocked = self.blocked or most_severe([v for v in out if v.action == "block"])
        self.guard.count(out, self.model)
        return out
