"""Load the attack classifier artifact that `python -m training classifier` writes.

The artifact is a folder with `classifier.json` (`kind`, `threshold`, `max_length`, the
metrics of its held-out split) and either `model.skops` (TF-IDF + logistic regression) or
a transformers sequence-classification checkpoint (safetensors, config, tokenizer).

Design decisions:
- The server reads the artifact with scikit-learn, skops and transformers only: the
  folder is the boundary with training, as a checkpoint folder is for chat models.
- skops refuses to build any type it was not told to trust. We trust the types the file
  declares only if every one of them comes from scikit-learn, numpy or scipy, so a
  tampered file cannot make the server import arbitrary code.
- A missing artifact is not an error here: the guard then runs its rules alone and says
  so at start-up. A folder that exists but cannot be read is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ARTIFACT_FILE = "classifier.json"
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


class ClassifierError(ValueError):
    """The artifact exists but cannot be used; the message says why."""


@dataclass
class AttackClassifier:
    kind: str
    threshold: float
    path: Path
    _model: object
    _tokenizer: object = None
    max_length: int = 256

    def score(self, texts: list[str]) -> np.ndarray:
        """Probability that each text is a prompt attack."""
        if self.kind == "tfidf-logreg":
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
        import torch

        batch = self._tokenizer(
            texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )
        with torch.inference_mode():
            logits = self._model(**batch).logits
        return torch.softmax(logits, dim=-1)[:, 1].numpy()

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
    if kind == "tfidf-logreg":
        from skops.io import get_untrusted_types, load

        model_file = path / "model.skops"
        try:
            types = get_untrusted_types(file=model_file)
        except (OSError, ValueError) as exc:
            raise ClassifierError(f"{model_file}: cannot read ({exc})") from None
        foreign = [t for t in types if not t.startswith(_TRUSTED_PREFIXES)]
        if foreign:
            raise ClassifierError(f"{model_file}: refuses to load untrusted types {foreign}")
        return AttackClassifier(kind, threshold, path, load(model_file, trusted=types))
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
