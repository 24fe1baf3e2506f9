"""Benign look-alikes: texts that use the attack vocabulary innocently (device jailbreaks,
`kill -9`, "is this email phishing?", a memo to summarise that says "ignore my last
email"), by category and language, from chatforge/data/guard_lookalikes.yaml.

Design decisions:
- Each template is filled with each filler of its category, and the template is the unit
  of the split: even-numbered templates of every language are `train` (the classifier
  learns from them, training/guard_data.py), odd-numbered ones `eval` (only measured, by
  the `guardrails` eval suite, false-positive rate per category). No wording is on both
  sides, so the eval says how the guard does on phrasings it never saw.
- It lives in chatforge/ because training and the evals both read it and may not import
  each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chatforge.data_files import DataFileError, read_yaml

LOOKALIKES_FILE = Path(__file__).resolve().parent / "data" / "guard_lookalikes.yaml"
SPLITS = ("train", "eval")


@dataclass(frozen=True)
class Lookalike:
    text: str
    category: str
    language: str
    template: str  # category:language:index, the unit of the split
    split: str  # train | eval


def load_lookalikes(path: Path = LOOKALIKES_FILE, split: str | None = None) -> list[Lookalike]:
    """Every filled template (or those of one split), in file order."""
    if split not in (None, *SPLITS):
        raise ValueError(f"split {split!r}: use one of {SPLITS} or None")
    data = read_yaml(path, dict[str, dict[str, dict[str, list[str] | dict[str, list[str]]]]])
    if set(data) != {"categories"}:
        raise DataFileError(f"{path}: expected one key, `categories`")
    out = []
    for category, spec in data["categories"].items():
        fillers, templates = spec.get("fillers"), spec.get("templates")
        if not isinstance(fillers, list) or not fillers or not isinstance(templates, dict):
            raise DataFileError(
                f"{path}: {category} needs a non-empty `fillers` list and `templates`"
            )
        for language, texts in templates.items():
            if len(texts) < 2 or not all("{x}" in t for t in texts):
                raise DataFileError(
                    f"{path}: {category}.{language}: at least two templates, each with {{x}}"
                )
            for i, template in enumerate(texts):
                part = SPLITS[i % 2]
                if split in (None, part):
                    out += [
                        Lookalike(template.replace("{x}", x), category, language,
                                  f"{category}:{language}:{i}", part)
                        for x in fillers
                    ]  # fmt: skip
    return out
