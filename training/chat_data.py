"""Chat data for fine-tuning: where conversations come from, how bad rows are handled, and
how a conversation becomes token ids with the loss on the assistant's tokens only.

Design decisions:
- The documentation-QA set is not generated here. It is the corpus's `questions.jsonl`
  (written by `training/questions.py`, the one question generator) turned into one-turn
  chats, so its train/val/test split is the corpus's page split and no held-out page leaks
  into training. The eval suites read the same questions.
- The question is the only user turn and there is no system turn: the model's chat template
  adds its default system prompt, exactly as when the server or an eval asks the question.
- `--data` is one of: a corpus folder (docs-QA from its splits), a JSONL file of
  `{"messages": [...]}` rows, or `hf:NAME` (`datasets.load_dataset`, online or a local
  dataset folder). A JSONL or hub set without a validation split gets a seeded 10% slice.
- A malformed row is an error naming the file, the line and the problem; with `skip_bad`
  it is skipped instead and counted, and the count is printed and recorded in run.json.
- Loss on assistant tokens only, for any chat template: the conversation is rendered once
  as text; each assistant turn's character span is the text between the rendering of the
  turns before it (with the generation prompt) and the rendering that includes it, so it
  covers the answer and the end-of-turn marker (the model learns to stop). Tokens whose
  offsets start inside a span get labels, the rest -100. No `{% generation %}` markers are
  needed in the template, and a template that is not prefix-stable is refused by name.
- Subsampling is seeded, so a run is reproducible from its run.json.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from chatforge.corpus_files import QUESTIONS_FILE, load_questions
from training.errors import TrainingError

ROLES = ("system", "user", "assistant")
IGNORE_INDEX = -100
VAL_FRACTION = 0.1

Messages = list[dict[str, str]]


@dataclass
class ChatSplits:
    """Conversations per split; `test` is empty unless the source has a held-out split."""

    source: str
    train: list[Messages]
    val: list[Messages]
    test: list[Messages] = field(default_factory=list)
    skipped: int = 0  # malformed rows skipped with skip_bad

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def check_messages(row: object) -> Messages:
    """The row's `messages` if it is a valid conversation; otherwise a ValueError saying why."""
    if not isinstance(row, dict) or "messages" not in row:
        raise ValueError('expected an object with a "messages" list')
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        raise ValueError('"messages" must be a non-empty list')
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{index}] is not an object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"messages[{index}].role is {role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"messages[{index}].content must be a non-empty string")
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("no assistant message: nothing to learn from")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def load_jsonl(path: Path, skip_bad: bool = False) -> tuple[list[Messages], int]:
    """Conversations from a JSONL file of `{"messages": [...]}` rows, and the skipped count."""
    if not path.is_file():
        raise TrainingError(f"{path}: no such file (give a JSONL of messages or a corpus folder)")
    conversations: list[Messages] = []
    skipped = 0
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                conversations.append(check_messages(json.loads(line)))
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                if not skip_bad:
                    raise TrainingError(
                        f"{path}:{number}: {exc} (fix the row, or pass --skip-bad to skip it)"
                    ) from None
                skipped += 1
    if not conversations:
        raise TrainingError(f"{path}: no usable conversation ({skipped} malformed rows)")
    return conversations, skipped


def docs_qa_messages(question: str, answer: str) -> Messages:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def load_docs_qa(folder: Path) -> ChatSplits:
    """One-turn chats from a corpus folder's questions, keeping the corpus split."""
    splits = {
        split: [docs_qa_messages(q.question, q.answer) for q in load_questions(folder, split)]
        for split in ("train", "val", "test")
    }
    if not splits["train"] or not splits["val"]:
        raise TrainingError(
            f"{folder}: the corpus has {len(splits['train'])} training and "
            f"{len(splits['val'])} validation questions; both are needed"
        )
    return ChatSplits(str(folder), splits["train"], splits["val"], splits["test"])


def _split_off(conversations: list[Messages], seed: int) -> tuple[list[Messages], list[Messages]]:
    if len(conversations) < 2:
        raise TrainingError("need at least two conversations to hold one out for validation")
    order = conversations[:]
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * VAL_FRACTION))
    return order[n_val:], order[:n_val]


def load_hub(name: str, seed: int, skip_bad: bool) -> ChatSplits:
    import datasets

    try:
        data = datasets.load_dataset(name)
    except Exception as exc:  # offline, unknown name, no such local folder
        raise TrainingError(f"hf:{name}: cannot load the dataset ({exc})") from None
    rows: dict[str, list[Messages]] = {}
    skipped = 0
    for split, table in data.items():
        rows[split] = []
        for number, row in enumerate(table):
            try:
                rows[split].append(check_messages(row))
            except ValueError as exc:
                if not skip_bad:
                    raise TrainingError(f"hf:{name}[{split}] row {number}: {exc}") from None
                skipped += 1
    train = rows.get("train") or []
    val = rows.get("validation") or rows.get("val") or []
    if not train:
        raise TrainingError(f"hf:{name}: no usable `train` split with a `messages` column")
    if not val:
        train, val = _split_off(train, seed)
    return ChatSplits(f"hf:{name}", train, val, rows.get("test") or [], skipped)


def load_chat_data(
    data: str, val_data: str | None = None, seed: int = 0, skip_bad: bool = False
) -> ChatSplits:
    """Resolve `--data` (corpus folder, JSONL file or hf:NAME) into train/val/test chats."""
    if data.startswith("hf:"):
        return load_hub(data.removeprefix("hf:"), seed, skip_bad)
    path = Path(data).expanduser()
    if path.is_dir():
        if not (path / QUESTIONS_FILE).is_file():
            raise TrainingError(
                f"{path}: a folder must be a corpus with {QUESTIONS_FILE} "
                "(build it with `python -m training data`)"
            )
        return load_docs_qa(path)
    if not path.exists():
        raise TrainingError(
            f"--data {data}: no such file or folder (give a corpus folder from "
            "`python -m training data`, a JSONL of messages, or hf:NAME)"
        )
    train, skipped = load_jsonl(path, skip_bad)
    if val_data:
        val, skipped_val = load_jsonl(Path(val_data).expanduser(), skip_bad)
        skipped += skipped_val
    else:
        train, val = _split_off(train, seed)
    return ChatSplits(str(path), train, val, [], skipped)


def sample(conversations: list[Messages], limit: int | None, seed: int) -> list[Messages]:
    """At most `limit` conversations, a seeded random choice (all of them for None or 0)."""
    if not limit or limit >= len(conversations):
        return conversations
    return random.Random(seed).sample(conversations, limit)


def assistant_spans(tokenizer, messages: Messages) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of each assistant turn in it."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(
            messages[:index], tokenize=False, add_generation_prompt=True
        )
        through = tokenizer.apply_chat_template(messages[: index + 1], tokenize=False)
        if not text.startswith(before) or not text.startswith(through):
            raise TrainingError(
                "the chat template renders a conversation differently from its prefixes, "
                "so the assistant turns cannot be located for the loss mask"
            )
        spans.append((len(before), len(through)))
    return text, spans


def encode_chat(tokenizer, messages: Messages, max_length: int) -> dict[str, list[int]] | None:
    """Token ids and labels (-100 outside assistant turns), cut to `max_length`;
    None when no assistant token is left after the cut."""
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=False
    )
    ids = encoded["input_ids"][:max_length]
    labels = [
        token if any(start <= offset[0] < end for start, end in spans) else IGNORE_INDEX
        for token, offset in zip(ids, encoded["offset_mapping"], strict=False)
    ]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def encode_all(tokenizer, conversations: list[Messages], max_length: int) -> list[dict]:
    """Encode every conversation; those left with no assistant token are dropped."""
    encoded = (encode_chat(tokenizer, messages, max_length) for messages in conversations)
    return [row for row in encoded if row is not None]
