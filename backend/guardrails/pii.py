"""Personal data and secrets by pattern: emails, phone numbers, payment cards, IBANs, keys.

Design decisions:
- Each kind is one regular expression plus, where the format has one, a checksum
  (`python-stdnum`: Luhn for cards, ISO 7064 mod 97 for IBANs), so a 16-digit order number
  or a random upper-case word is not taken for personal data.
- Patterns are compiled with the `regex` package rather than `re` because its partial
  matching tells whether the end of a text could still grow into a match; the streaming
  output filter (streaming.py) holds back exactly those characters and nothing more.
- A match is replaced by a placeholder naming its kind (`[EMAIL]`, `[CARD]`, ...), so the
  model and the reader still see that something was there.
- Phone numbers need a leading `+` (8 to 15 digits) or at least three separated digit
  groups (9 to 15 digits): bare digit runs and pairs of groups are too often counts,
  years, versions or ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import regex
from stdnum import iban, luhn


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _phone_ok(text: str) -> bool:
    digits = len(_digits(text))
    if text.startswith("+"):
        return 8 <= digits <= 15
    groups = len([g for g in re.split(r"[ .()-]+", text) if g])
    return groups >= 3 and 9 <= digits <= 15


def _card_ok(text: str) -> bool:
    digits = _digits(text)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _iban_ok(text: str) -> bool:
    return iban.is_valid(text)


@dataclass(frozen=True)
class PiiKind:
    name: str
    placeholder: str
    pattern: regex.Pattern
    valid: Callable[[str], bool] | None = None


KINDS: dict[str, PiiKind] = {
    kind.name: kind
    for kind in (
        PiiKind(
            "email",
            "[EMAIL]",
            regex.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
        ),
        PiiKind(
            "card",
            "[CARD]",
            regex.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])"),
            _card_ok,
        ),
        PiiKind(
            "iban",
            "[IBAN]",
            regex.compile(
                r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
            ),
            _iban_ok,
        ),
        PiiKind(
            "phone",
            "[PHONE]",
            regex.compile(
                r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}"
                r"(?![\w])"
            ),
            _phone_ok,
        ),
        PiiKind(
            "secret",
            "[SECRET]",
            regex.compile(
                r"AKIA[0-9A-Z]{16}"  # AWS access key id
                r"|gh[pousr]_[A-Za-z0-9]{36}"  # GitHub token
                r"|github_pat_[A-Za-z0-9_]{40,}"
                r"|sk-(?:proj-)?[A-Za-z0-9_-]{20,}"  # OpenAI-style key
                r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack token
                r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
                r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
                r"|(?i:(?<=\b(?:api[_-]?key|secret|token|password|passwd)\s*[:=]\s*)"
                r"[\"']?[^\s\"',;]{7,}[^\s\"',;.])"
            ),
        ),
    )
}
# Checked in this order; where two kinds overlap the earlier one wins (a card number is
# not also reported as a phone number).
ALL_KINDS = tuple(KINDS)
# Every complete match, and every partial one that spans more than its last word, holds
# one of these: a digit, `@`, `+`, `(`, a key prefix or a secret keyword.
_TRIGGER = regex.compile(
    r"[\d@+(]|AKIA|gh[pousr]_|github_pat|sk-|xox|AIza|-----|(?i:api|key|secret|token|passw)"
)
_TAIL = regex.compile(r"[\w.+-]*\Z")
_ORDER = {name: i for i, name in enumerate(ALL_KINDS)}


@dataclass(frozen=True)
class PiiMatch:
    kind: str
    start: int
    end: int


def find_pii(text: str, kinds: tuple[str, ...] = ALL_KINDS, pos: int = 0) -> list[PiiMatch]:
    """Validated, non-overlapping matches in `text[pos:]`, in order of position."""
    return scan_pii(text, kinds, pos)[0]


def scan_pii(
    text: str, kinds: tuple[str, ...] = ALL_KINDS, pos: int = 0, partial: bool = False
) -> tuple[list[PiiMatch], int]:
    """Matches in `text[pos:]` and the point from which the text must be held back.

    With `partial`, `text` may still grow: a match that could still extend to the end of
    the text (a prefix of a possible match, or a complete one followed by what could be
    the rest of a longer one) is not reported, and the
    returned hold point is its start; complete matches that straddle that point move it
    back to their own start. Without `partial` the hold point is `len(text)`.
    """
    if not kinds:
        return [], len(text)
    if partial and not _TRIGGER.search(text):
        # Nothing here can complete a match; only the trailing run of characters an email
        # address could start with may still grow into one (the common case, taken in a
        # fraction of the time the five patterns need).
        if "email" not in kinds:
            return [], len(text)
        return [], _TAIL.search(text, pos).start()
    hold = len(text)
    found: list[PiiMatch] = []
    for name in kinds:
        kind = KINDS[name]
        for m in kind.pattern.finditer(text, pos=pos, partial=partial):
            # The text from this match on may still grow into a longer match (regex
            # reports a complete match in preference to a longer partial one).
            if partial and (m.partial or kind.pattern.fullmatch(text, m.start(), partial=True)):
                hold = min(hold, m.start())
            elif kind.valid is None or kind.valid(m.group()):
                found.append(PiiMatch(name, m.start(), m.end()))
    kept: list[PiiMatch] = []
    for match in sorted(found, key=lambda m: (_ORDER[m.kind], m.start)):
        if all(match.end <= k.start or match.start >= k.end for k in kept):
            kept.append(match)
    for m in sorted(kept, key=lambda m: m.start, reverse=True):
        if m.start < hold < m.end:
            hold = m.start
    return sorted((m for m in kept if m.end <= hold), key=lambda m: m.start), hold


def redact(text: str, matches: list[PiiMatch], offset: int = 0) -> str:
    """`text` with each match (positions relative to `offset`) replaced by its placeholder."""
    out, last = [], 0
    for m in matches:
        out.append(text[last : m.start - offset])
        out.append(KINDS[m.kind].placeholder)
        last = m.end - offset
    out.append(text[last:])
    return "".join(out)


def count_kinds(matches: list[PiiMatch]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in matches:
        counts[m.kind] = counts.get(m.kind, 0) + 1
    return counts
