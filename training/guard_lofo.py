"""`python -m training guard-lofo`: the leave-one-family-out protocol for the guard
classifier. For every attack family (guard_data.ATTACK_FAMILIES) and every non-English
language, train a TF-IDF classifier without it and keep what was held out.

Output (default runs/guard/lofo/):
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
  pessimistic for a reason that has nothing to do with unseen attacks.
- TF-IDF only: seventeen fits of a few seconds each. The transformer comparison runs on
  one split (`python -m training classifier --kind transformer`), since seventeen
  fine-tunes would take hours on the CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from training.classifier import ARTIFACT_FILE, save_tfidf, train_tfidf
from training.errors import TrainingError
from training.guard_data import ATTACK, ATTACK_FAMILIES, Example, build_examples
from training.guard_languages import LANGUAGES

DEFAULT_OUT = "runs/guard/lofo"
SUMMARY_FILE = "lofo.json"  # evals/targets.py recognises a LOFO folder by it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder for the held-out artifacts")
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

    out = Path(args.out)
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
    summary = {}
    for name, (train, held) in splits.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        model = train_tfidf(train, args.seed)
        save_tfidf(model, folder)
        p = model.predict_proba([e.text for e in held])[:, 1]
        caught = [bool(pi >= args.threshold) for pi, e in zip(p, held, strict=True) if e.label]
        false = [bool(pi >= args.threshold) for pi, e in zip(p, held, strict=True) if not e.label]
        row = {
            "attacks": len(caught),
            "benign": len(false),
            "classifier_recall": _rate(caught),
            "classifier_fpr": _rate(false),
        }
        summary[name] = row
        meta = {"kind": "tfidf-logreg", "threshold": args.threshold, "held_out": name, **row}
        (folder / ARTIFACT_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        with open(folder / "heldout.jsonl", "w") as f:
            for e in held:
                label = "attack" if e.label == ATTACK else "benign"
                record = {"text": e.text, "label": label, "family": e.family}
                f.write(json.dumps({**record, "language": e.language}, ensure_ascii=False) + "\n")
        print(f"{name:<24} recall {row['classifier_recall']}  fpr {row['classifier_fpr']}")
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Leave one family out: the classifier alone\n",
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
    append_entry("training", "guard classifier leave-one-family-out", numbers, [out / "report.md"])
    print(f"held-out artifacts: {out}")
    return out
