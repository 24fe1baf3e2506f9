"""The output filter for a token stream: PII redaction and system-prompt leak detection
that hold back only the characters that could still become a match.

Design decisions:
- Text arrives in deltas, and a match may straddle two of them (`jane.doe@exam` +
  `ple.com`). Each PII pattern is run with the `regex` package's partial matching over the
  pending text: a match that reaches the end of the pending text (partial, or complete but
  extendable) pins the hold-back point at its start. Everything before that point is
  final: complete matches in it are redacted and the rest is released at once. So an
  ordinary word is held only while it could still turn into an email address, and a
  stream with no PII-like tail passes through unchanged and undelayed.
- The last few released characters are kept as left context, so look-behind assertions
  (an email that does not start mid-word) see the same text they would in one piece.
- System-prompt leaks are leak.py's: verbatim (after folding: spacing, punctuation, case,
  homoglyphs and invisible characters do not hide it), reversed, base64-encoded, or
  translated. The filter holds back the characters the tracker says could still become
  a leak, so the first three are reported before any of the leaked text was released.
- The filter is mechanical: it reports what it found; what to do about it (block, redact,
  flag) is the policy's decision, applied by the guard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.guardrails.leak import LeakTracker
from backend.guardrails.pii import redact, scan_pii

_CONTEXT_CHARS = 24  # the longest look-behind: `password: `


@dataclass
class FilterStep:
    text: str = ""  # safe to release now
    redacted: dict[str, int] = field(default_factory=dict)  # PII kind -> matches
    leaked: str = ""  # how a system-prompt leak was found (reported once), see leak.py


class OutputFilter:
    def __init__(
        self,
        kinds: tuple[str, ...] = (),
        redact_pii: bool = True,
        secrets: tuple[str, ...] = (),
        min_leak_chars: int = 30,
    ) -> None:
        self.kinds = kinds
        self.redact_pii = redact_pii
        self.leak = LeakTracker(secrets, min_leak_chars)
        self._context = ""  # released text kept as left context
        self._pending = ""
        self.leaked = False

    def feed(self, text: str) -> FilterStep:
        self._pending += text
        step = FilterStep()
        if self.leak.active and not self.leaked:
            step.leaked = self.leak.feed(text) or ""
            self.leaked = bool(step.leaked)
        if not step.leaked:  # a leak holds back everything pending: the caller decides
            self._release(step, final=False)
        return step

    def flush(self) -> FilterStep:
        step = FilterStep()
        if self.leak.active and not self.leaked:
            step.leaked = self.leak.finish() or ""
            self.leaked = bool(step.leaked)
        if not step.leaked:  # as in feed: a leak releases nothing more
            self._release(step, final=True)
        return step

    def _release(self, step: FilterStep, final: bool) -> None:
        scan = self._context + self._pending
        base = len(self._context)
        matches, hold = scan_pii(scan, self.kinds, pos=base, partial=not final)
        held = self.leak.held() if self.leak.active and not self.leaked else 0
        if not final and held:
            hold = min(hold, max(base, len(scan) - held))
            for m in reversed(matches):
                if m.start < hold < m.end:
                    hold = m.start
        done = [m for m in matches if m.end <= hold]
        released = scan[base:hold]
        for m in done:
            step.redacted[m.kind] = step.redacted.get(m.kind, 0) + 1
        step.text = redact(released, done, offset=base) if self.redact_pii else released
        self._context = (self._context + released)[-_CONTEXT_CHARS:]
        self._pending = scan[hold:]
