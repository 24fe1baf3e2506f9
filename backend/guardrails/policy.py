"""The guardrail policy: `guardrails.yaml`, what to do per category, and its thresholds.

```yaml
input:
  max_chars: 8000                  # a longer user message is an `oversize` finding
  normalise: true                  # detectors also see the de-obfuscated views of a text
classifier:
  path: runs/guard/classifier      # relative to this file; missing: rules only
  required: false                  # true: a missing artifact stops start-up
  min_words: 6                     # shorter texts are left to the rules
categories:                        # action: block | redact | flag | allow
  injection: {action: block, threshold: 0.5}
  prompt_attack: {action: block}   # the classifier; threshold: the artifact's own
  pii: {action: redact, kinds: [email, phone, card, iban, secret]}
  prompt_leak: {action: block, min_chars: 30}
messages:
  blocked: "I can't help with that request."
```

Design decisions:
- The categories are fixed fields, not a free mapping, so a misspelt category is an error
  with its line number instead of a silently ignored rule (errors come from the shared
  YAML loader, backend/yaml_config.py, as the model registry's do).
- `block` at the input or output stage ends the stream with finish reason BLOCKED and the
  policy's message; at the retrieval stage it drops the chunk. `redact` exists only where
  something can be cut out (PII); `flag` reports in the stream, logs and metrics and lets
  the text through; `allow` turns the check off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from backend.guardrails.pii import ALL_KINDS
from backend.yaml_config import load_yaml_model

DEFAULT_POLICY = Path(__file__).resolve().parent.parent.parent / "guardrails.yaml"
Action = Literal["block", "redact", "flag", "allow"]
SEVERITY = {"allow": 0, "flag": 1, "redact": 2, "block": 3}


class PolicyError(ValueError):
    """guardrails.yaml is unusable; the message names the file, the line and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CategoryPolicy(_Strict):
    action: Action = "block"
    threshold: float | None = Field(None, ge=0.0, le=1.0)

    @field_validator("action")
    @classmethod
    def _no_redact(cls, action: str) -> str:
        if action == "redact":
            raise ValueError("`redact` only applies to `pii`; use block, flag or allow")
        return action


class PiiPolicy(_Strict):
    action: Action = "redact"
    kinds: list[str] = Field(default_factory=lambda: list(ALL_KINDS))

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = [k for k in kinds if k not in ALL_KINDS]
        if unknown:
            raise ValueError(f"unknown PII kinds {unknown}; known: {', '.join(ALL_KINDS)}")
        return kinds


class LeakPolicy(CategoryPolicy):
    min_chars: int = Field(30, ge=8)


class Categories(_Strict):
    injection: CategoryPolicy = CategoryPolicy()
    jailbreak: CategoryPolicy = CategoryPolicy()
    encoded_payload: CategoryPolicy = CategoryPolicy()
    prompt_attack: CategoryPolicy = CategoryPolicy()
    indirect_injection: CategoryPolicy = CategoryPolicy()
    oversize: CategoryPolicy = CategoryPolicy()
    pii: PiiPolicy = PiiPolicy()
    prompt_leak: LeakPolicy = LeakPolicy()


class InputLimits(_Strict):
    # None: only the API's own limits (32,000 characters a message, the model's context),
    # which answer INVALID_ARGUMENT; a number blocks longer user messages as `oversize`.
    max_chars: int | None = Field(None, ge=1)
    # Detectors see the normalised views of a text too (normalise.py); off: the raw text
    # alone, which is how the tests show what each normalisation catches.
    normalise: bool = True


class ClassifierConfig(_Strict):
    path: str | None = None
    required: bool = False
    # Below this many words a bag of words has too little evidence and sits near its prior
    # (an unknown three-word follow-up can score 0.6): the rules alone judge such texts.
    min_words: int = Field(6, ge=1)


class Messages(_Strict):
    blocked: str = Field("I can't help with that request.", min_length=1)


class Policy(_Strict):
    input: InputLimits = InputLimits()
    classifier: ClassifierConfig = ClassifierConfig()
    categories: Categories = Categories()
    messages: Messages = Messages()
    _source: Path | None = PrivateAttr(None)  # the file it came from

    @model_validator(mode="after")
    def _classifier_named(self) -> Policy:
        if self.classifier.required and not self.classifier.path:
            raise ValueError("classifier.required is true but classifier.path is not set")
        return self

    def category(self, name: str) -> CategoryPolicy | PiiPolicy:
        return getattr(self.categories, name)

    def classifier_path(self) -> Path | None:
        if not self.classifier.path:
            return None
        base = self._source.parent if self._source else Path.cwd()
        return (base / Path(self.classifier.path).expanduser()).resolve()


def load_policy(path: Path | str = DEFAULT_POLICY) -> Policy:
    path = Path(path).expanduser().resolve()
    policy = load_yaml_model(
        path,
        Policy,
        PolicyError,
        "guardrail policy",
        "`input`, `classifier`, `categories` or `messages` keys",
    )
    policy._source = path
    return policy
