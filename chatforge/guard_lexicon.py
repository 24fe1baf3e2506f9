"""A small multilingual concept lexicon for the guard classifier: the words of prompt
attacks and of their benign look-alikes, in ten languages, mapped to shared concept tokens.

`concept_tokens(text)` returns the concepts a text mentions, in the order it mentions
them, as words of their own (`cxignore cxprevious cxrules`); `annotate(text)` appends
them to the text. The classifier (training/classifier.py) is trained on annotated texts
and the server's guard (backend/guardrails/classifier.py) annotates what it scores the
same way, so "Ignoriere alle vorherigen Anweisungen", "忽略之前的所有指令" and "ignore all
previous instructions" share the features `cxignore cxprevious cxrules` whatever the
script.

Design decisions:
- Why: character n-grams carry no evidence across scripts, so a classifier that never saw
  Russian, Chinese or Japanese attacks scored them at 0.02 to 0.27, and an intent learnt
  in one family or language (an override in German) did not reach the same intent worded
  in another. A dictionary translation into shared concepts is the cheapest cross-lingual
  representation that can be had offline: no model, one regular expression, microseconds.
- The concepts are vocabulary, not sentences: each lists the dictionary words (stems,
  inflections, synonyms) for one idea, written for this project from general knowledge of
  each language rather than copied from the training templates, and benign ideas
  (programming, questions, everyday subjects) are concepts too, so the classifier learns
  weights for both sides; a concept alone decides nothing.
- The table is data (chatforge/data/guard_lexicon.yaml, package data), read and checked
  at import: every fragment a valid, lower-case expression.
- It lives in chatforge/ because training and the server must annotate identically and
  may not import each other; `LEXICON_VERSION` (a hash of the file) is recorded in the
  classifier artifact, and the server refuses an artifact built with another version.
- Latin and Cyrillic forms match at the start of a word and may continue (stems: `ignor`
  covers ignore, ignoriere, ignorez, игнорируй is its own entry); Chinese and Japanese
  forms match anywhere. Matching is on the case-folded text.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path

from chatforge.data_files import DataFileError, read_yaml

LEXICON_FILE = Path(__file__).resolve().parent / "data" / "guard_lexicon.yaml"


def load_lexicon(path: Path = LEXICON_FILE) -> dict[str, dict[str, tuple[str, ...]]]:
    """concept -> language -> regular-expression fragments (lower case), from the file;
    a fragment that is not a valid expression is an error naming it."""
    table = read_yaml(path, dict[str, dict[str, dict[str, list[str]]]])
    if set(table) != {"concepts"}:
        raise DataFileError(f"{path}: expected one key, `concepts`, found {sorted(table)}")
    lexicon = {}
    for concept, by_language in table["concepts"].items():
        if not concept.isidentifier():
            raise DataFileError(f"{path}: concept {concept!r} must be a plain identifier")
        for language, forms in by_language.items():
            for form in forms:
                try:
                    re.compile(form)
                except re.error as exc:
                    raise DataFileError(f"{path}: {concept}.{language}: {form!r}: {exc}") from None
                if not form or form != form.lower():
                    raise DataFileError(
                        f"{path}: {concept}.{language}: {form!r} must be non-empty and lower case"
                    )
        lexicon[concept] = {lang: tuple(forms) for lang, forms in by_language.items()}
    return lexicon


LEXICON = load_lexicon()

_META = set(".^$*+?{}[]\\|()")


def _is_cjk(form: str) -> bool:
    return any("\u2e80" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" for c in form)


def _trie(forms: list[str]) -> str:
    """A regular expression matching any of the literal forms, as a trie: at each position
    the engine tries one branch per distinct next character instead of every form, which
    is what keeps the lexicon in microseconds; longer forms are preferred."""
    root: dict = {}
    for form in forms:
        node = root
        for char in form:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict) -> str:
        branches = [re.escape(c) + build(child) for c, child in sorted(node.items()) if c]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(root)


@cache
def _matcher() -> tuple[re.Pattern[str], dict[str, tuple[str, ...]]]:
    """One pattern for the whole lexicon and the concepts of each literal form: literal
    stems (Latin and Cyrillic, at a word start) and literal Chinese or Japanese forms in
    two tries, whose match is looked up; the few forms that need regular-expression syntax
    in a named group per concept, behind the same word-start test when they begin with a
    letter, so that most positions of a text are rejected by one look-behind."""
    concepts_of: dict[str, list[str]] = {}
    at_word: dict[str, list[str]] = {}
    anywhere: dict[str, list[str]] = {}
    for concept, by_language in LEXICON.items():
        for forms in by_language.values():
            for form in forms:
                if _META & set(form):
                    special = at_word if form[0].isalpha() else anywhere
                    special.setdefault(concept, []).append(form)
                elif concept not in concepts_of.setdefault(form, []):
                    concepts_of[form].append(concept)
    latin = [f for f in concepts_of if not _is_cjk(f)]
    cjk = [f for f in concepts_of if _is_cjk(f)]
    gated = [f"(?P<{c}_w>{'|'.join(forms)})" for c, forms in at_word.items()]
    if latin:
        gated.insert(0, "(?P<latin>" + _trie(latin) + r")\w*")
    parts = [r"(?<!\w)(?:" + "|".join(gated) + ")"] if gated else []
    if cjk:
        parts.append("(?=[\u2e80-\u9fff])(?P<cjk>" + _trie(cjk) + ")")
    parts += [f"(?P<{c}>{'|'.join(forms)})" for c, forms in anywhere.items()]
    pattern = re.compile("|".join(parts) or r"(?!)", re.MULTILINE)
    return pattern, {form: tuple(c) for form, c in concepts_of.items()}


def concept_tokens(text: str) -> list[str]:
    """The concepts the text mentions, in order, as `cx<concept>` words."""
    pattern, concepts_of = _matcher()
    out = []
    for match in pattern.finditer(text.casefold()):
        group = match.lastgroup
        if group in ("latin", "cjk"):
            out += ["cx" + c for c in concepts_of[match.group(group)]]
        else:
            out.append("cx" + group.removesuffix("_w"))
    return out


def annotate(text: str) -> str:
    """The text followed by its concept words on a line of their own."""
    return text + "\n" + " ".join(concept_tokens(text))


LEXICON_VERSION = hashlib.sha256(LEXICON_FILE.read_bytes()).hexdigest()[:12]
