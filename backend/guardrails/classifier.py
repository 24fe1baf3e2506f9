"""Load the attack classifier artifact that `python -m training classifier` writes.

The artifact is a folder with `classifier.json` (`kind`, `threshold`, `max_length`, the
lexicon version, the metrics of its held-out split) and either `model.skops` (TF-IDF +
logistic regression, or the logistic-regression head of `encoder-logreg`, which reads
the retrieval embedder's all-MiniLM-L6-v2 sentence embeddings) or a transformers
sequence-classification checkpoint (safetensors, config, tokenizer).

Design decisions:
- The server reads the artifact with scikit-learn, skops and transformers only: the
  folder is the boundary with training, as a checkpoint folder is for chat models.
- skops refuses to build any type it was not told to trust. We trust the types the file
  declares only if every one of them comes from scikit-learn, numpy or scipy, so a
  tampered file cannot make the server import arbitrary code.
- A TF-IDF artifact whose `classifier.json` names a concept lexicon version reads each
  text with its concept words appended (chatforge/guard_lexicon.py), as training did; an
  artifact built with another version of the lexicon is refused rather than scored on
  features it was not trained with. Artifacts without the key are read as before.
- A TF-IDF model is scored from dictionaries built once from its vectorizers (term ->
  idf and weight): the same arithmetic as the vectorizers and the linear step, without
  building a sparse matrix per call, whose fixed cost was most of the guard's time (about
  2 ms a text of 2 ms and a half under load). Blocks it cannot read that way (another
  norm, binary counts, weighted unions) are scored through scikit-learn as before.
- A missing artifact is not an error here: the guard then runs its rules alone and says
  so at start-up. A folder that exists but cannot be read is an error.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chatforge.guard_lexicon import LEXICON_VERSION, annotate

ARTIFACT_FILE = "classifier.json"
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


class ClassifierError(ValueError):
    """The artifact exists but cannot be used; the message says why."""


@dataclass
class _TfidfBlock:
    """One TF-IDF feature block as a dictionary: term -> (idf, the linear weight)."""

    analyzer: Callable[[str], list[str]]
    terms: dict[str, tuple[float, float]]
    sublinear: bool

    def logit(self, text: str) -> float:
        """This block's share of the linear step's logit: the L2-normalised TF-IDF vector
        of the text dotted with the weights, as TfidfVectorizer + LogisticRegression."""
        counts = Counter(t for t in self.analyzer(text) if t in self.terms)
        dot = norm = 0.0
        for term, count in counts.items():
            idf, weight = self.terms[term]
            value = ((1.0 + math.log(count)) if self.sublinear else count) * idf
            dot += value * weight
            norm += value * value
        return dot / math.sqrt(norm) if norm else 0.0


def _tfidf_blocks(model, parts: list) -> list[_TfidfBlock] | None:
    """The feature blocks as dictionaries, or None when a block is not a plain
    TfidfVectorizer with L2 norm (then the sparse path computes the same thing)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    coef = model[-1].coef_[0]
    blocks, offset = [], 0
    for part in parts:
        plain = isinstance(part, TfidfVectorizer) and part.use_idf and not part.binary
        if not plain or part.norm != "l2":
            return None
        idf = part.idf_
        terms = {t: (float(idf[i]), float(coef[offset + i])) for t, i in part.vocabulary_.items()}
        blocks.append(_TfidfBlock(part.build_analyzer(), terms, part.sublinear_tf))
        offset += len(part.vocabulary_)
    return blocks


@dataclass
class AttackClassifier:
    kind: str
    threshold: float
    path: Path
    _model: object
    _tokenizer: object = None
    max_length: int = 256
    lexicon: str | None = None  # the LEXICON_VERSION its inputs were annotated with
    _blocks: list[_TfidfBlock] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind == "tfidf-logreg":  # once, at load: scoring is per request
            self._blocks = _tfidf_blocks(self._model, self._feature_parts())

    def score(self, texts: list[str]) -> np.ndarray:
        """Probability that each text is a prompt attack."""
        if self.kind == "tfidf-logreg":
            if self.lexicon is not None:
                texts = [annotate(t) for t in texts]
            if self._blocks is not None:
                intercept = float(self._model[-1].intercept_[0])
                logits = [intercept + sum(b.logit(t) for b in self._blocks) for t in texts]
                return 1.0 / (1.0 + np.exp(-np.asarray(logits)))
            return self._score_sparse(texts)
        if self.kind == "encoder-logreg":
            from backend.retrieval.embedder import shared_embedder

            return self._model.predict_proba(shared_embedder().encode(texts))[:, 1]
        import torch

        batch = self._tokenizer(
            texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )
        with torch.inference_mode():
            logits = self._model(**batch).logits
        return torch.softmax(logits, dim=-1)[:, 1].numpy()

    def _score_sparse(self, texts: list[str]) -> np.ndarray:
        """The pipeline's own arithmetic, for feature blocks `_tfidf_blocks` cannot read."""
        import sklearn

        # Each feature block through its own vectorizer, dotted with its slice of the
        # weights, then the logistic function by hand: FeatureUnion.transform and the
        # final step's input validation cost more than the arithmetic (about 1 ms).
        linear = self._model[-1]
        weights, logits, offset = linear.coef_[0], linear.intercept_[0], 0
        with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
            for part in self._feature_parts():
                features = part.transform(texts)
                width = features.shape[1]
                logits = logits + features @ weights[offset : offset + width]
                offset += width
        return 1.0 / (1.0 + np.exp(-np.asarray(logits).ravel()))

    def _feature_parts(self) -> list:
        """The vectorizers whose outputs, side by side, are the linear step's input."""
        from sklearn.pipeline import FeatureUnion

        steps = self._model[:-1]
        if len(steps) == 1 and isinstance(steps[0], FeatureUnion):
            union = steps[0]
            if union.transformer_weights:
                return [steps]  # weighted blocks: let the union apply its weights
            return [t for _, t in union.transformer_list]
        return [steps]


def load_classifier(path: Path | str) -> AttackClassifier:
    path = Path(path)
    try:
        meta = json.loads((path / ARTIFACT_FILE).read_text())
        kind = meta["kind"]
    except (OSError, ValueError, KeyError) as exc:
        raise ClassifierError(
            f"{path}: not a classifier artifact ({exc}); rebuild it with "
            "`python -m training classifier`"
        ) from None
    threshold = float(meta.get("threshold", 0.5))
    if kind in ("tfidf-logreg", "encoder-logreg"):
        from skops.io import get_untrusted_types, load

        model_file = path / "model.skops"
        try:
            types = get_untrusted_types(file=model_file)
        except (OSError, ValueError) as exc:
            raise ClassifierError(f"{model_file}: cannot read ({exc})") from None
        foreign = [t for t in types if not t.startswith(_TRUSTED_PREFIXES)]
        if foreign:
            raise ClassifierError(f"{model_file}: refuses to load untrusted types {foreign}")
        lexicon = meta.get("lexicon")
        if lexicon is not None and lexicon != LEXICON_VERSION:
            raise ClassifierError(
                f"{path}: built with concept lexicon {lexicon}, this code has "
                f"{LEXICON_VERSION}; rebuild it with `python -m training classifier`"
            )
        model = load(model_file, trusted=types)
        return AttackClassifier(kind, threshold, path, model, lexicon=lexicon)
    if kind == "transformer":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            model = AutoModelForSequenceClassification.from_pretrained(path).eval()
            tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise ClassifierError(f"{path}: cannot load the transformer ({exc})") from None
        return AttackClassifier(
            kind, threshold, path, model, tokenizer, int(meta.get("max_length", 256))
        )
    raise ClassifierError(f"{path}: unknown classifier kind {kind!r}")
