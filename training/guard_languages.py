"""Prompt attacks and benign look-alikes in nine languages other than English, written for
the guardrail classifier (training/guard_data.py composes them into labelled examples),
read from training/data/guard_languages.yaml.

Per language: instruction overrides, system-prompt extraction, role-play framing and fake
authority (each sentence a template; `{harm}` is one of the language's harmful requests),
tails that an override ends with, and benign requests, among them hard negatives that use
the attack vocabulary innocently ("ignorer un fichier dans git", "joue le rôle d'un guide").

Design decisions:
- The texts are data (the YAML file); this module reads and checks them: every field of
  every language present and non-empty, and `{harm}` in every role-play and authority
  template, so a new language is a data change.
- Written by hand for this project, not translated from the public eval sets, and never
  read from them; the phrasings vary verbs, objects and frames inside each language so a
  character n-gram model learns the intent rather than one sentence.
- Benign requests are about as many as attacks in every language, so a language's script
  or function words carry no evidence either way: only what the text asks for does.
- Chinese and Japanese have no spaces; the classifier's character n-grams handle them, and
  the guard counts their words by characters (backend/guardrails/normalise.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from chatforge.data_files import DataFileError, read_yaml

LANGUAGES_FILE = Path(__file__).resolve().parent / "data" / "guard_languages.yaml"


@dataclass(frozen=True)
class Language:
    override: tuple[str, ...]
    tails: tuple[str, ...]
    extraction: tuple[str, ...]
    roleplay: tuple[str, ...]  # {harm}
    authority: tuple[str, ...]  # {harm}
    harms: tuple[str, ...]
    benign: tuple[str, ...]


def load_languages(
    path: Path = LANGUAGES_FILE,
) -> tuple[dict[str, Language], dict[str, tuple[tuple[str, ...], tuple[str, ...]]]]:
    """(language code -> its attack and benign texts, code -> (question templates with
    `{t}`, topics)), from the file."""
    data = read_yaml(path, dict[str, dict[str, dict[str, list[str]]]])
    if set(data) != {"languages", "questions"}:
        raise DataFileError(f"{path}: expected the keys `languages` and `questions`")
    names = [f.name for f in fields(Language)]
    languages = {}
    for code, texts in data["languages"].items():
        if sorted(texts) != sorted(names) or not all(texts.values()):
            raise DataFileError(f"{path}: languages.{code} must have non-empty {names}")
        for name in ("roleplay", "authority"):
            if not all("{harm}" in t for t in texts[name]):
                raise DataFileError(f"{path}: languages.{code}.{name}: every one needs {{harm}}")
        languages[code] = Language(**{n: tuple(texts[n]) for n in names})
    questions = {}
    for code, parts in data["questions"].items():
        if sorted(parts) != ["templates", "topics"] or not all(parts.values()):
            raise DataFileError(f"{path}: questions.{code} needs non-empty templates and topics")
        if not all("{t}" in t for t in parts["templates"]):
            raise DataFileError(f"{path}: questions.{code}.templates: every one needs {{t}}")
        questions[code] = (tuple(parts["templates"]), tuple(parts["topics"]))
    return languages, questions


LANGUAGES, QUESTIONS = load_languages()
