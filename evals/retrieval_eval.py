"""Retrieval eval: does the page that answers a question come back in the top k?

    python -m evals.retrieval_eval [--index-dir DIR] [--questions FILE] [--generated N]

Reports recall@1/5/10 and MRR for BM25 alone, dense alone and hybrid (reciprocal rank
fusion of both), on hand-written questions (evals/data/retrieval_questions.jsonl) and on
questions generated from the corpus by the project's one question generator
(`questions.jsonl` beside the collection's documents). Prints a table, writes JSON under
runs/evals/ and an entry in daily-log/.

Design decisions:
- Relevance is page-level: a result counts when its chunk comes from one of the pages the
  question names. A question's answer can sit in any section of a page, and a citation
  that opens the right page is what a reader needs.
- The three modes run through the same `HybridRetriever` with weights (0, 1), (1, 0) and
  (1, 1), so "hybrid beats both" compares exactly what the server serves.
- Generated questions come from the held-out `test` split by default and are sampled with
  a fixed seed, so the numbers are reproducible and comparable across runs.
- The functions (`load_items`, `generated_items`, `evaluate`) are importable so the eval
  runner can wrap this as a suite; the CLI is a thin shell around them.
- Hand-written items naming a page the collection does not have are an error (a typo
  would silently count as a miss otherwise).
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from evals.journal import REPO_ROOT, append_entry

HAND_WRITTEN = Path(__file__).resolve().parent / "data" / "retrieval_questions.jsonl"
MODES: dict[str, tuple[float, float]] = {  # name -> (dense weight, lexical weight)
    "bm25": (0.0, 1.0),
    "dense": (1.0, 0.0),
    "hybrid": (1.0, 1.0),
}
KS = (1, 5, 10)


class EvalDataError(ValueError):
    """Eval data that cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    paths: tuple[str, ...]  # pages that answer it
    origin: str  # "hand" or "generated"


def load_items(path: Path | str = HAND_WRITTEN) -> list[EvalItem]:
    """Hand-written items: one JSON object per line with id, question and paths."""
    path = Path(path)
    if not path.is_file():
        raise EvalDataError(f"{path}: no such questions file")
    items = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            paths = row["paths"]
            if not isinstance(paths, list) or not paths or not row["question"].strip():
                raise ValueError("`question` must be text and `paths` a non-empty list")
            items.append(EvalItem(str(row["id"]), row["question"], tuple(paths), "hand"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EvalDataError(
                f'{path}:{number}: expected {{"id", "question", "paths": [...]}} ({exc})'
            ) from None
    return items


def generated_items(
    corpus_dir: Path, split: str = "test", limit: int = 300, seed: int = 0
) -> list[EvalItem]:
    """A seeded sample of the corpus's generated questions (`questions.jsonl`)."""
    path = Path(corpus_dir) / "questions.jsonl"
    if not path.is_file():
        raise EvalDataError(
            f"{path} not found: generated questions come from `python -m training data`"
        )
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if split == "all" or r["split"] == split]
    random.Random(seed).shuffle(rows)
    return [EvalItem(r["id"], r["question"], (r["path"],), "generated") for r in rows[:limit]]


def check_paths(items: list[EvalItem], known_paths: set[str]) -> None:
    for item in items:
        missing = [p for p in item.paths if p not in known_paths]
        if missing:
            raise EvalDataError(
                f"item {item.id}: the collection has no page {', '.join(missing)}; fix the "
                "path or ingest the pages it names"
            )


def first_relevant_rank(result_paths: list[str], paths: tuple[str, ...]) -> int | None:
    """1-based rank of the first result from a relevant page, None if there is none."""
    return next((i for i, p in enumerate(result_paths, 1) if p in paths), None)


def summarize(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    out = {f"recall@{k}": sum(r is not None and r <= k for r in ranks) / n for k in KS}
    out["mrr"] = sum(1.0 / r for r in ranks if r is not None) / n
    out["n"] = n
    return out


def evaluate(retriever, items: list[EvalItem], modes=MODES, depth: int = max(KS)) -> dict:
    """Metrics per mode for `items`, with a `HybridRetriever`; queries embedded once."""
    vectors = retriever.embedder.encode([item.question for item in items], batch_size=64)
    results = {}
    for mode, (dense_weight, lexical_weight) in modes.items():
        ranks = []
        for item, vector in zip(items, vectors, strict=True):
            hits = retriever.search(item.question, depth, dense_weight, lexical_weight, vector)
            ranks.append(first_relevant_rank([h.chunk.source_path for h in hits], item.paths))
        results[mode] = summarize(ranks)
    return results


def format_table(results: dict[str, dict]) -> str:
    lines = []
    for group, by_mode in results.items():
        n = next(iter(by_mode.values()))["n"]
        lines.append(f"{group} ({n} questions)")
        lines.append(f"  {'mode':8s} {'R@1':>6s} {'R@5':>6s} {'R@10':>6s} {'MRR':>6s}")
        for mode, m in by_mode.items():
            lines.append(
                f"  {mode:8s} {m['recall@1']:6.3f} {m['recall@5']:6.3f} "
                f"{m['recall@10']:6.3f} {m['mrr']:6.3f}"
            )
    return "\n".join(lines)


def run(
    index_dir: Path,
    questions: Path = HAND_WRITTEN,
    generated: int = 300,
    split: str = "test",
    seed: int = 0,
) -> dict:
    """Evaluate the collection in `index_dir`; returns the JSON-ready result."""
    from backend.retrieval.embedder import shared_embedder
    from backend.retrieval.hybrid import HybridRetriever
    from backend.retrieval.index import open_index, single_thread_search

    single_thread_search()  # queries are searched one at a time, as the server does
    snapshot = open_index(index_dir)
    retriever = HybridRetriever(snapshot, shared_embedder())
    known = {d["path"] for d in snapshot.manifest["documents"].values()}
    groups = {"hand-written": load_items(questions)}
    check_paths(groups["hand-written"], known)
    if generated > 0:
        corpus = Path(snapshot.manifest["documents_file"]).parent
        items = [i for i in generated_items(corpus, split, generated, seed) if i.paths[0] in known]
        if items:
            groups[f"generated ({split} split)"] = items
    results = {name: evaluate(retriever, items) for name, items in groups.items()}
    return {
        "collection": snapshot.manifest["collection"],
        "version": snapshot.version,
        "index_dir": str(index_dir),
        "chunks": len(snapshot.chunks),
        "index_type": snapshot.manifest["index"]["type"],
        "questions_file": str(questions),
        "generated": {"split": split, "limit": generated, "seed": seed},
        "results": results,
        "items": {name: [asdict(i) for i in items] for name, items in groups.items()},
    }


def main(argv: list[str] | None = None) -> int:
    from backend.retrieval.documents import IngestError
    from backend.retrieval.ingest import default_index_dir

    parser = argparse.ArgumentParser(
        prog="python -m evals.retrieval_eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--index-dir", type=Path, default=default_index_dir("pydocs"))
    parser.add_argument("--questions", type=Path, default=HAND_WRITTEN)
    parser.add_argument("--generated", type=int, default=300, help="0 skips them")
    parser.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "evals")
    args = parser.parse_args(argv)
    try:
        result = run(args.index_dir, args.questions, args.generated, args.split, args.seed)
    except (EvalDataError, IngestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result["results"]))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"retrieval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"written {path}")
    numbers = {"collection": result["collection"], "version": result["version"]}
    for group, by_mode in result["results"].items():
        label = group.split(" ")[0]
        for mode, m in by_mode.items():
            numbers[f"{label} {mode} R@5"] = m["recall@5"]
        numbers[f"{label} hybrid MRR"] = by_mode["hybrid"]["mrr"]
    artifact = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    command = shlex.join(["python", "-m", "evals.retrieval_eval", *(argv or sys.argv[1:])])
    append_entry("eval", "retrieval (BM25, dense, hybrid)", numbers, [artifact], command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
