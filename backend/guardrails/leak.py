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
- Each streamed delta is handled whole, not a Python step per character: it is folded at
  once (ASCII, the common case, by lowercasing and keeping letters and digits), every
  window of `min_folded` folded characters is looked up in the set of the keys' runs of
  that length, and the tracked suffix grows while it is still a shorter run of a key.
  Those sets are built once per system prompt (cached), since a deployment sends the same
  few with every request.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re

from backend.guardrails.normalise import COMMON_WORDS, fold_homoglyphs

FOLDED_SHARE = 0.8
MIN_B64_HOLD = 16
_TERM = re.compile(r"[^\W_][\w-]*[^\W_]|\d+")
# What ends a run of base64 characters, and what ends a word of a distinctive term.
_B64_RUN = re.compile(r"[^A-Za-z0-9+/=]+")
_WORD_RUN = re.compile(r"[^\w-]+")


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


@functools.lru_cache(maxsize=64)
def _key_index(keys: tuple[str, ...], m: int) -> dict[str, tuple[frozenset, frozenset]]:
    """Per direction: every run of `m` characters of a key (a leak is one of these in the
    folded reply) and every shorter run (what the reply may end in while a leak could
    still follow). Built once per system prompt, since a deployment sends the same few."""
    index = {}
    for kind, texts in (("verbatim", keys), ("reversed", tuple(k[::-1] for k in keys))):
        grams = {t[i : i + m] for t in texts for i in range(len(t) - m + 1)}
        parts = {g[:j] for g in grams for j in range(1, m)} | {
            t[i:] for t in texts for i in range(max(0, len(t) - m), len(t))
        }
        index[kind] = (frozenset(grams), frozenset(parts))
    return index


class LeakTracker:
    def __init__(self, secrets: tuple[str, ...], min_chars: int) -> None:
        self.min_folded = math.ceil(min_chars * FOLDED_SHARE)
        folded = [fold(s) for s in secrets]
        self.keys = tuple(k for k in folded if len(k) >= self.min_folded)
        self._index = _key_index(self.keys, self.min_folded) if self.keys else {}
        self.terms = [t for s in secrets if len(t := distinctive_terms(s)) >= 3]
        self._suffix = {"verbatim": 0, "reversed": 0}  # folded characters
        self._folded = ""  # the reply's last folded characters (fewer than min_folded)
        self._raw_at: list[int] = []  # the raw offset each of them came from
        self._raw = 0  # raw characters so far
        self._b64 = ""  # the reply's trailing run of base64 characters
        self._words = ""  # the reply's last partial word
        self._seen_terms: set[str] = set()

    @property
    def active(self) -> bool:
        return bool(self.keys or self.terms)

    def held(self) -> int:
        """Raw characters at the end of the reply that could still become a leak."""
        longest = max(self._suffix.values())
        spans = self._raw - self._raw_at[-longest] if longest else 0
        b64 = len(self._b64) if len(self._b64) >= MIN_B64_HOLD else 0
        return max(spans, b64)

    def feed(self, text: str) -> str | None:
        """How the reply leaks a system prompt once `text` is added, or None. The delta is
        handled whole: folded at once, then windows and runs found by slicing, never a
        Python step per character beyond the fold."""
        found = None
        if self.keys:
            found = self._runs(text) or ("encoded" if self._b64_runs(text) else None)
        if found is None and self.terms and self._term_words(text):
            found = "translated"
        return found

    def finish(self) -> str | None:
        """The end of the reply: judge a trailing base64 run and the last word."""
        return "encoded" if self._end_b64() else self._end_word()

    def _runs(self, text: str) -> str | None:
        base = self._raw
        self._raw += len(text)
        if text.isascii():  # NFKC and homoglyphs change no ASCII character
            lower = text.lower()
            offsets = [base + i for i, c in enumerate(lower) if c.isalnum()]
            folded = "".join([lower[i - base] for i in offsets])
        else:
            offsets, pieces = [], []
            for i, char in enumerate(text, base):
                piece = _fold_char(char)
                pieces.append(piece)
                offsets += [i] * len(piece)
            folded = "".join(pieces)
        if not folded:
            return None
        scan = self._folded + folded
        raw_at = self._raw_at + offsets
        m, size, keep = self.min_folded, len(scan), 0
        for kind, (grams, parts) in self._index.items():
            # The kept text is shorter than m, so every window here ends in the new text.
            if size >= m and any(scan[i : i + m] in grams for i in range(size - m + 1)):
                return kind
            # The longest suffix still inside a key: a suffix that is not in one has no
            # longer suffix that is, so count up until one fails.
            longest, limit = 0, min(m - 1, size)
            while longest < limit and scan[-longest - 1 :] in parts:
                longest += 1
            self._suffix[kind] = longest
            keep = max(keep, longest)
        self._folded = scan[size - keep :] if keep else ""
        self._raw_at = raw_at[size - keep :] if keep else []
        return None

    def _b64_runs(self, text: str) -> bool:
        """Whether a base64 run that the delta ends decodes to a leak; the trailing run is
        kept for the next delta."""
        runs = _B64_RUN.split(self._b64 + text)
        self._b64 = runs[-1]
        return any(len(run) >= 20 and self._decodes_to_leak(run) for run in runs[:-1])

    def _term_words(self, text: str) -> bool:
        words = _WORD_RUN.split(self._words + text)
        self._words = words[-1]
        return any(self._add_word(word) for word in words[:-1] if word)

    def _decodes_to_leak(self, run: str) -> bool:
        try:
            decoded = base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return False
        return contains_run(fold(decoded), self.keys, self.min_folded)

    def _end_b64(self) -> bool:
        run, self._b64 = self._b64, ""
        return len(run) >= 20 and self._decodes_to_leak(run)

    def _end_word(self) -> str | None:
        word, self._words = self._words, ""
        return "translated" if word and self._add_word(word) else None

    def _add_word(self, word: str) -> bool:
        self._seen_terms.add(word.lower())
        return any(
            len(terms & self._seen_terms) >= max(3, math.ceil(0.6 * len(terms)))
            for terms in self.terms
        )
