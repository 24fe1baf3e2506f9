"""Normalisation before any detector: the views of a text that obfuscation would hide.

`views(text)` returns the raw text first, then one view per normalisation that changed
something, each named by the steps that made it, so a verdict can say which normalisation
revealed an attack ("leetspeak", "unicode+despaced", "decoded:base64").

Steps, applied cumulatively in this order to make the `normalised` view:
- `unicode`: NFKC (full-width and mathematical letters), invisible characters removed
  (zero-width, joiners, soft hyphen, variation selectors, bidi controls: every format
  character), homoglyphs folded (Cyrillic and Greek look-alikes inside Latin words, or
  everywhere when the text is mostly Latin, so Russian text stays Russian).
- `despaced`: letter-by-letter text (`i g n o r e`, `i-g-n-o-r-e`) joined back into
  words; a run with no visible word gaps is segmented with a small English vocabulary.
- `leetspeak`: digits and symbols inside words that also have letters (`1gn0r3`, `@ll`)
  folded to the letters they stand for; plain numbers and versions are left alone.
Payloads found in the text become views of their own (`decoded:...`): base64 and hex runs,
ROT13 and reversed text (kept only when the decoded text reads as more English words than
the original), invisible Unicode tag characters (ASCII smuggled in U+E0000..E007F), and
quoted fragments joined together (a payload split across string literals). Decoding
recurses into what it decoded, bounded in depth, in payload count and in size, so a crafted
input cannot make the guard do unbounded work.

Design decisions:
- Detectors see the raw text and every view, never only the normalised one: the raw text
  keeps evidence that folding can destroy (a real `3` in "Python 3", accents), and the
  views reveal what the raw text hides.
- Views are deduplicated, so ordinary text costs one view (or two) and the classifier is
  called on a handful of strings at most.
- Pure string code, no model and no I/O: the rules, the classifier and the output filter
  all share it, and the training side does not need it (training texts are written clean;
  obfuscation is undone at inference).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass

MAX_CHARS = 20_000  # longer texts: only the first MAX_CHARS characters get derived views
MAX_PAYLOADS = 8  # decoded payloads kept per text
MAX_DEPTH = 2  # payloads inside payloads
MAX_PAYLOAD_CHARS = 4_000

_WS = re.compile(r"\s+")
_TAGS = re.compile("[\U000e0020-\U000e007e]+")
# Cyrillic and Greek letters drawn like Latin ones.
_HOMOGLYPHS = str.maketrans(
    "аеорсухіјѕԁɡһԛԝАВЕКМНОРСТХІЈЅУ"  # Cyrillic
    "αοнρτιкυνεΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",  # Greek (and Cyrillic н, к)
    "aeopcyxijsdghqwABEKMHOPCTXIJSYaohptikuveABEZHIKMNOPTYX",
)
_CONFUSABLE = set("аеорсухіјѕԁɡһԛԝАВЕКМНОРСТХІЈЅУαοнρτιкυνεΑΒΕΖΗΙΚΜΝΟΡΤΥΧ")
_WORD = re.compile(r"[^\W\d_]+")
_LEET = str.maketrans("0134578@$€!|", "oieastbaseil")
_LEET_TOKEN = re.compile(r"[A-Za-z0-9@$€!|]*[A-Za-z][A-Za-z0-9@$€!|]*")
_LEET_CHARS = set("0134578@$€!|")
_NAME_AND_NUMBER = re.compile(r"[A-Za-z]+\d+")  # mp3, utf8, sha256, rot13: not leetspeak
# Letter-by-letter: single characters separated by spaces or by one punctuation mark.
_SPACED_RUN = re.compile(r"(?<!\S)(?:[^\W_] {1,3}){3,}[^\W_](?!\S)")
_DOTTED_RUN = re.compile(r"\b(?:[^\W_][-.*_|/+~]){3,}[^\W_]\b")
_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4}){5,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[ :]?){10,}\b")
_QUOTED = re.compile(r"""["'`“”‘’«»]([^"'`“”‘’«»\n]{1,200})["'`“”‘’«»]""")

# Common English words: how "English" a decoded candidate reads, and the vocabulary that
# splits a letter run with no word gaps ("ignoreallpreviousinstructions").
_COMMON = """a about above act after again against all also am an and any are as at be been before
    being below between both but by can cannot could did do does doing down during each few for
    from further had has have having he her here hers him his how i if in into is it its itself
    just me more most my no nor not now of off on once only or other our out over own same she
    should so some such than that the their them then there these they this those through to
    too under until up very was we were what when where which while who whom why will with
    would you your yours yourself tell say said give show print write repeat reveal output
    ignore disregard forget override bypass previous prior earlier above instructions
    instruction rules rule prompt system secret hidden original initial password key pretend
    role play game story grandmother grandma character persona mode developer admin
    administrator unrestricted restrictions filter filters policy policies safety guidelines
    answer respond reply question help everything anything nothing must never always now new
    task tasks start starting text words message messages first last begin beginning below
    confidential internal config configuration verbatim exactly word full complete make build
    how what do evil free jailbreak dan act as are were stop follow obey bomb weapon hack steal
    kill drugs poison malware virus code decode encoded base64 instead tell me please"""
COMMON_WORDS = frozenset(_COMMON.split())


@dataclass(frozen=True)
class View:
    name: str  # "raw", or the steps that made it ("unicode+leetspeak", "decoded:rot13")
    text: str


def _is_invisible(char: str) -> bool:
    return unicodedata.category(char) == "Cf"


def fold_homoglyphs(text: str) -> str:
    """NFKC and every Cyrillic or Greek look-alike folded, whatever the script around it:
    for comparing two texts folded the same way (leak.py), not for reading one."""
    return unicodedata.normalize("NFKC", text).translate(_HOMOGLYPHS)


def fold_unicode(text: str) -> str:
    """NFKC, invisible characters removed, homoglyphs folded (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if not _is_invisible(c))
    letters = [c for c in text if c.isalpha()]
    latin = sum(c.isascii() for c in letters)
    if letters and latin >= 0.6 * len(letters):
        return text.translate(_HOMOGLYPHS)

    def fold(match: re.Match) -> str:
        word = match.group()
        if any(c.isascii() for c in word) and any(c in _CONFUSABLE for c in word):
            return word.translate(_HOMOGLYPHS)
        return word

    return _WORD.sub(fold, text)


def segment(letters: str) -> str:
    """Split a run of letters into COMMON_WORDS where it can (fewest pieces wins); letters
    no word covers stay as they are."""
    run = letters.lower()
    n = len(run)
    best: list[tuple[int, list[str]]] = [(0, [])] + [(10**9, [])] * n
    for end in range(1, n + 1):
        for start in range(max(0, end - 16), end):
            piece = run[start:end]
            known = piece in COMMON_WORDS
            cost = best[start][0] + (1 if known else 3 * len(piece))
            if cost < best[end][0]:
                words = best[start][1]
                if not known and words and words[-1].startswith("?"):  # extend unknown run
                    merged = [*words[:-1], words[-1] + piece]
                else:
                    merged = [*words, ("?" + piece) if not known else piece]
                best[end] = (cost, merged)
    return " ".join(w.lstrip("?") for w in best[n][1])


def _join_spaced(match: re.Match) -> str:
    run = match.group()
    if re.search(r" {2,}", run):  # wider gaps separate the words
        return " ".join(part.replace(" ", "") for part in re.split(r" {2,}", run))
    return segment(run.replace(" ", "")) if run.replace(" ", "").isalpha() else run


def despace(text: str) -> str:
    text = _SPACED_RUN.sub(_join_spaced, text)
    return _DOTTED_RUN.sub(lambda m: re.sub(r"[-.*_|/+~]", "", m.group()), text)


def _fold_leet_token(match: re.Match) -> str:
    token = match.group()
    core = token.rstrip("!|")
    if (
        not any(c in _LEET_CHARS for c in core)
        or not 3 <= len(core) <= 24  # base64 runs and hashes are not words
        or _NAME_AND_NUMBER.fullmatch(core)
    ):
        return token
    return core.translate(_LEET) + token[len(core) :]


def fold_leetspeak(text: str) -> str:
    return _LEET_TOKEN.sub(_fold_leet_token, text)


def english_words(text: str) -> int:
    return sum(w in COMMON_WORDS for w in _WORD.findall(text.lower()))


def _decoded(original: str) -> list[tuple[str, str]]:
    """(how, payload) for every payload found in a text."""
    out: list[tuple[str, str]] = []
    tags = "".join(_TAGS.findall(original))
    if tags:
        out.append(("unicode-tags", "".join(chr(ord(c) - 0xE0000) for c in tags)))
    text = fold_unicode(original)  # before despacing or leet folding, which alter payloads
    for m in _B64.finditer(text):
        raw = m.group()
        try:
            payload = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        out.append(("base64", payload.decode("utf-8", "replace")))
    for m in _HEX.finditer(text):
        try:
            payload = bytes.fromhex(re.sub(r"[ :]", "", m.group()))
        except ValueError:
            continue
        out.append(("hex", payload.decode("utf-8", "replace")))
    plain = english_words(text)
    for how, candidate in (("rot13", codecs.encode(text, "rot13")), ("reversed", text[::-1])):
        if english_words(candidate) >= plain + 3:
            out.append((how, candidate))
    quoted = _QUOTED.findall(text)
    if len(quoted) >= 2:
        out.append(("joined-quotes", "".join(quoted)))
    readable = []
    for how, payload in out:
        payload = payload[:MAX_PAYLOAD_CHARS]
        if payload.isprintable() and sum(c.isalpha() for c in payload) > len(payload) / 2:
            readable.append((how, payload))
    return readable


def normalise(text: str) -> str:
    """Every cumulative step applied: what the `normalised` view holds."""
    return _WS.sub(" ", fold_leetspeak(despace(fold_unicode(text)))).strip()


def raw_view(text: str) -> View:
    """The text as received, whitespace collapsed: what detectors see without normalisation."""
    return View("raw", _WS.sub(" ", text).strip())


def views(text: str) -> list[View]:
    """The raw text and every distinct view of it, raw first."""
    out = [raw_view(text)]
    seen = {out[0].text}
    _add_views(text[:MAX_CHARS], "", out, seen, depth=0)
    return out


def _add_views(text: str, prefix: str, out: list[View], seen: set[str], depth: int) -> None:
    steps, current = [], text
    for name, step in (
        ("unicode", fold_unicode),
        ("despaced", despace),
        ("leetspeak", fold_leetspeak),
    ):
        changed = step(current)
        if changed != current:
            steps.append(name)
            current = changed
    current = _WS.sub(" ", current).strip()
    if steps and current not in seen:
        seen.add(current)
        out.append(View(prefix + "+".join(steps), current))
    if depth >= MAX_DEPTH:
        return
    payloads = 0
    for how, payload in _decoded(text):
        if payloads >= MAX_PAYLOADS:
            break
        payload = _WS.sub(" ", payload).strip()
        if payload in seen:
            continue
        payloads += 1
        seen.add(payload)
        name = f"{prefix}decoded:{how}"
        out.append(View(name, payload))
        _add_views(payload, name + "+", out, seen, depth + 1)


def word_count(text: str) -> int:
    """Words for the classifier's minimum: whitespace-separated words, plus one per two
    Chinese or Japanese characters, since those scripts do not put spaces between words."""
    cjk = sum(
        "\u3040" <= c <= "\u30ff" or "\u4e00" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af"
        for c in text
    )
    return len(text.split()) + cjk // 2
