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
- A leak is a run of at least `min_chars` characters copied (case-insensitively) from a
  system message. The filter tracks the longest suffix of the output that is a substring
  of a system message, and holds that suffix back while it is shorter than `min_chars`:
  when it reaches `min_chars` the leak is reported before any of it was released.
- The filter is mechanical: it reports what it found; what to do about it (block, redact,
  flag) is the policy's decision, applied by the guard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.guardrails.pii import redact, scan_pii

_CONTEXT_CHARS = 24  # the longest look-behind: `password: `


@dataclass
class FilterStep:
    text: str = ""  # safe to release now
    redacted: dict[str, int] = field(default_factory=dict)  # PII kind -> matches
    leaked: bool = False  # a system-prompt leak was found (reported once)


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
        self.secrets = tuple(s.lower() for s in secrets if len(s) >= min_leak_chars)
        self.min_leak_chars = min_leak_chars
        self._context = ""  # released text kept as left context
        self._pending = ""
        self._leak_suffix = ""  # longest output suffix found in a secret
        self.leaked = False

    def feed(self, text: str) -> FilterStep:
        self._pending += text
        step = FilterStep()
        if self.secrets and not self.leaked:
            step.leaked = self._track_leak(text)
        if not step.leaked:  # a leak holds back everything pending: the caller decides
            self._release(step, final=False)
        return step

    def flush(self) -> FilterStep:
        step = FilterStep()
        self._release(step, final=True)
        return step

    def _track_leak(self, text: str) -> bool:
        suffix = self._leak_suffix
        for char in text.lower():
            suffix += char
            while suffix and not any(suffix in s for s in self.secrets):
                suffix = suffix[1:]
            if len(suffix) >= self.min_leak_chars:
                self.leaked = True
                self._leak_suffix = ""
                return True
        self._leak_suffix = suffix
        return False

    def _release(self, step: FilterStep, final: bool) -> None:
        scan = self._context + self._pending
        base = len(self._context)
        matches, hold = scan_pii(scan, self.kinds, pos=base, partial=not final)
        if not final and self._leak_suffix:
            hold = min(hold, max(base, len(scan) - len(self._leak_suffix)))
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
