"""System-prompt leak detection for a streamed reply, through the same normalisation as the
input checks: a reply that reproduces the system prompt is caught even when reformatted.

What counts as a leak (`LeakTracker.feed` says which, as the reason's `how`):
- `verbatim`: a run of at least `min_chars` characters of a system prompt, compared after
  folding (NFKC, homoglyphs, case, and every character that is not a letter or digit
  dropped), so spacing letters out, adding punctuation, changing case or inserting
  invisible characters does not hide it. The threshold is counted in folded characters
  (`min_chars` x 0.8: about what a run of `min_chars` characters keeps once its spaces
  and punctuation are gone).
- `reversed`: the same run written backwards.
- `encoded`: a base64 run in the reply that decodes to such a run. While a reply ends in a
  run of base64 characters 16 or more long, that run is held back until it ends, so the
  encoded prompt is judged before more than its first 15 characters (11 bytes) are
  released (holding every shorter run would delay every word of every reply).
- `translated`: the reply contains most of the system prompt's distinctive terms (names,
  codes, numbers, capitalised or all-capital words that are not common English words; at
  least 3 of them, and at least 60% of them), which survive translation and paraphrase
  where the wording does not. A reply can mention one or two (the bot's own name) freely.

Design decisions:
- The verbatim and reversed checks track the longest folded suffix of the reply that is a
  substring of a folded prompt, and say how many raw characters it spans, so the stream
  holds exactly those back (streaming.py) and a leak is reported before any of it is
  released. Translation and paraphrase cannot be held back that way: the reply is
  stopped when the terms add up, and what came before was released.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
import string

from backend.guardrails.normalise import COMMON_WORDS, fold_homoglyphs

FOLDED_SHARE = 0.8
MIN_B64_HOLD = 16
_B64_CHARS = frozenset(string.ascii_letters + string.digits + "+/=")
_TERM = re.compile(r"[^\W_][\w-]*[^\W_]|\d+")


def fold(text: str) -> str:
    """Lowercase letters and digits only, after NFKC and homoglyph folding (invisible
    characters are neither, so they go too)."""
    return "".join(c for c in fold_homoglyphs(text).lower() if c.isalnum())


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """fold() of one streamed character: the stream folds every character it sends."""
    return fold(char)


def distinctive_terms(prompt: str) -> set[str]:
    """Names, codes and numbers: words with a digit, or capitalised words that are not at a
    sentence start and not common English words."""
    terms = set()
    words = list(_TERM.finditer(prompt))
    for i, m in enumerate(words):
        word = m.group()
        before = prompt[: m.start()].rstrip()
        sentence_start = i == 0 or before.endswith((".", "!", "?", ":", "\n"))
        capital = word[0].isupper() and not sentence_start
        shouting = len(word) >= 2 and word.isupper()
        coded = any(c.isdigit() for c in word) and len(word) >= 3
        if (coded or capital or shouting) and word.lower() not in COMMON_WORDS:
            terms.add(word.lower())
    return terms


def contains_run(folded: str, keys: tuple[str, ...], length: int) -> bool:
    """Whether `folded` has a run of `length` characters found in one of `keys`."""
    suffix = ""
    for char in folded:
        suffix += char
        while suffix and not any(suffix in k for k in keys):
            suffix = suffix[1:]
        if len(suffix) >= length:
            return True
    return False


class LeakTracker:
    def __init__(self, secrets: tuple[str, ...], min_chars: int) -> None:
        self.min_folded = math.ceil(min_chars * FOLDED_SHARE)
        folded = [fold(s) for s in secrets]
        self.keys = tuple(k for k in folded if len(k) >= self.min_folded)
        # Folded keys hold letters and digits only, so a NUL between them never joins two
        # keys into one match: one substring test covers every key.
        self._forwards = "\0".join(self.keys)
        self._backwards = "\0".join(k[::-1] for k in self.keys)
        self.terms = [t for s in secrets if len(t := distinctive_terms(s)) >= 3]
        self._suffix = {"verbatim": "", "reversed": ""}
        self._spans = {"verbatim": [], "reversed": []}  # raw characters per folded one
        self._trailing = 0  # raw characters since the last folded one
        self._b64 = ""  # the reply's trailing run of base64 characters
        self._words = ""  # the reply's last partial word
        self._seen_terms: set[str] = set()

    @property
    def active(self) -> bool:
        return bool(self.keys or self.terms)

    def held(self) -> int:
        """Raw characters at the end of the reply that could still become a leak."""
        spans = max(
            (sum(self._spans[k]) + self._trailing for k in self._spans if self._suffix[k]),
            default=0,
        )
        b64 = len(self._b64) if len(self._b64) >= MIN_B64_HOLD else 0
        return max(spans, b64)

    def feed(self, text: str) -> str | None:
        """How the reply leaks a system prompt once `text` is added, or None."""
        for char in text:
            found = self._char(char)
            if found:
                return found
        return None

    def finish(self) -> str | None:
        """The end of the reply: judge a trailing base64 run and the last word."""
        return "encoded" if self._end_b64() else self._end_word()

    def _char(self, char: str) -> str | None:
        if self.keys:
            folded = _fold_char(char)
            if not folded:
                self._trailing += 1
            for piece in folded:
                for kind, haystack in (("verbatim", self._forwards), ("reversed", self._backwards)):
                    if self._extend(kind, piece, haystack):
                        return kind
                self._trailing = 0
            if char in _B64_CHARS:
                self._b64 += char
            elif self._end_b64():
                return "encoded"
        if self.terms:
            if char.isalnum() or char in "-_":
                self._words += char
            elif self._end_word():
                return "translated"
        return None

    def _extend(self, kind: str, piece: str, haystack: str) -> bool:
        suffix = self._suffix[kind] + piece
        spans = self._spans[kind]
        spans.append(self._trailing + 1)
        if suffix not in haystack:  # drop characters from the front until it fits
            cut = 1
            while cut < len(suffix) and suffix[cut:] not in haystack:
                cut += 1
            suffix = suffix[cut:]
            del spans[:cut]
            if spans:  # the separators before the run's first character are not part of it
                spans[0] = 1
        self._suffix[kind] = suffix
        return len(suffix) >= self.min_folded

    def _end_b64(self) -> bool:
        run, self._b64 = self._b64, ""
        if len(run) < 20:
            return False
        try:
            decoded = base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return False
        return contains_run(fold(decoded), self.keys, self.min_folded)

    def _end_word(self) -> str | None:
        word, self._words = self._words.lower(), ""
        if not word:
            return None
        self._seen_terms.add(word)
        for terms in self.terms:
            found = len(terms & self._seen_terms)
            if found >= max(3, math.ceil(0.6 * len(terms))):
                return "translated"
        return None
