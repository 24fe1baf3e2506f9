"""`python -m training guard-lofo`: the leave-one-family-out protocol for the guard
classifier. For every attack family (guard_data.ATTACK_FAMILIES) and every non-English
language, train a classifier without it and keep what was held out.

Output (default runs/guard/lofo/, or runs/guard/lofo-encoder/ with `--kind encoder`):
- `<name>/`: a classifier artifact the server's guard can load (classifier.json,
  model.skops), trained without `<name>`, and `heldout.jsonl`, the texts it never saw:
  the family's attacks in every language (`family-<name>`), or every attack and benign
  text of one language (`language-<code>`), one JSON object a line: text, label, family,
  language.
- `lofo.json`: for each held-out set, the classifier's own recall on the unseen attacks
  (and its false-positive rate on the unseen language's benign texts), `report.md` the
  same as a table. The whole guard's numbers (rules and normalisation in front of each
  classifier) come from the eval: `python -m evals run guardrails --target runs/guard/lofo`.

Design decisions:
- Holding out a family removes its attacks only: its benign look-alikes stay, as they
  would in any real training set, so the test is whether the intent generalises.
- Holding out a language removes its benign texts too; otherwise the classifier would
  learn "this language is benign" from its benign half and the recall would be
  pessimistic for a reason that has nothing to do with unseen attacks. The concept
  lexicon (chatforge/guard_lexicon.py) still covers the held-out language: it is a
  dictionary written for every language, not training examples, so the protocol
  measures a classifier that never saw an example of the language but can read its
  vocabulary.
- Two kinds on the same splits: TF-IDF (seventeen fits of seconds) and frozen MiniLM
  embeddings with a logistic-regression head (`--kind encoder`: every text embedded once,
  then seventeen head fits of seconds). A fine-tuned encoder would be seventeen
  fine-tunes, hours on the CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from chatforge.guard_lexicon import LEXICON_VERSION
from training.classifier import (
    ARTIFACT_FILE,
    KINDS,
    embed,
    predict_tfidf,
    save_tfidf,
    train_encoder_head,
    train_tfidf,
)
from training.errors import TrainingError
from training.guard_data import ATTACK, ATTACK_FAMILIES, Example, build_examples
from training.guard_languages import LANGUAGES

DEFAULT_OUT = {"tfidf": "runs/guard/lofo", "encoder": "runs/guard/lofo-encoder"}
SUMMARY_FILE = "lofo.json"  # evals/targets.py recognises a LOFO folder by it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=("tfidf", "encoder"), default="tfidf")
    parser.add_argument(
        "--out", default=None, help="folder for the held-out artifacts (default: by kind)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-family", type=int, default=120, help="as for `classifier`")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument(
        "--only", default=None, help="comma-separated held-out names (default: all)"
    )


def holdouts(examples: list[Example]) -> dict[str, tuple[list[Example], list[Example]]]:
    """name -> (training examples, held-out examples) for every family and language."""
    out = {}
    for family in ATTACK_FAMILIES:
        held = [e for e in examples if e.label == ATTACK and e.family == family]
        out[f"family-{family}"] = ([e for e in examples if e not in held], held)
    for code in LANGUAGES:
        held = [e for e in examples if e.language == code]
        out[f"language-{code}"] = ([e for e in examples if e.language != code], held)
    return out


def _rate(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def run(args: argparse.Namespace) -> Path:
    from chatforge.journal import append_entry

    out = Path(args.out or DEFAULT_OUT[args.kind])
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out}: exists and is not a folder")
    splits = holdouts(build_examples(args.seed, args.per_family))
    if args.only:
        wanted = args.only.split(",")
        unknown = [n for n in wanted if n not in splits]
        if unknown:
            raise TrainingError(f"--only {unknown}: unknown; the names are {', '.join(splits)}")
        splits = {n: splits[n] for n in wanted}
    started = time.time()
    vectors = {}
    if args.kind == "encoder":  # each text embedded once, for every split
        texts = list(dict.fromkeys(e.text for train, held in splits.values() for e in train + held))
        vectors = dict(zip(texts, embed(texts), strict=True))
    summary = {}
    for name, (train, held) in splits.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        if args.kind == "tfidf":
            model = train_tfidf(train, args.seed)
            p = predict_tfidf(model, [e.text for e in held])
        else:
            matrix = np.stack([vectors[e.text] for e in train])
            model = train_encoder_head(matrix, [e.label for e in train], args.seed)
            p = model.predict_proba(np.stack([vectors[e.text] for e in held]))[:, 1]
        save_tfidf(model, folder)
        caught = [bool(pi >= args.threshold) for pi, e in zip(p, held, strict=True) if e.label]
        false = [bool(pi >= args.threshold) for pi, e in zip(p, held, strict=True) if not e.label]
        row = {
            "attacks": len(caught),
            "benign": len(false),
            "classifier_recall": _rate(caught),
            "classifier_fpr": _rate(false),
        }
        summary[name] = row
        meta = {
            "kind": KINDS[args.kind],
            "threshold": args.threshold,
            "lexicon": LEXICON_VERSION if args.kind == "tfidf" else None,
            "held_out": name,
            **row,
        }
        (folder / ARTIFACT_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        with open(folder / "heldout.jsonl", "w") as f:
            for e in held:
                label = "attack" if e.label == ATTACK else "benign"
                record = {"text": e.text, "label": label, "family": e.family}
                f.write(json.dumps({**record, "language": e.language}, ensure_ascii=False) + "\n")
        print(f"{name:<24} recall {row['classifier_recall']}  fpr {row['classifier_fpr']}")
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        f"# Leave one family out: the classifier alone ({KINDS[args.kind]})\n",
        "| held out | attacks | recall | benign | false positives |",
        "|---|---|---|---|---|",
    ]
    for name, row in summary.items():
        fpr = "" if row["classifier_fpr"] is None else f"{row['classifier_fpr']:.3f}"
        lines.append(
            f"| {name} | {row['attacks']} | {row['classifier_recall']:.3f} | {row['benign']} | "
            f"{fpr} |"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    recalls = [r["classifier_recall"] for r in summary.values()]
    numbers = {
        "min_recall": min(recalls),
        "mean_recall": round(sum(recalls) / len(recalls), 4),
        "seconds": round(time.time() - started, 1),
    }
    title = f"guard classifier leave-one-family-out ({KINDS[args.kind]})"
    append_entry("training", title, numbers, [out / "report.md"])
    print(f"held-out artifacts: {out}")
    return out
