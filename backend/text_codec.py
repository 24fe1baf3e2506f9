"""Thread-safe text <-> token ids for one model: chat template, encode, decode.

Design decisions:
- Every gRPC handler thread encodes prompts and decodes streamed tokens with the model's
  one Hugging Face fast tokenizer. Its Python binding mutates shared state on each call
  and raises `RuntimeError: Already borrowed` when two threads use it at once
  (huggingface/tokenizers#537), so every call goes through one lock. The calls are
  microseconds long, so a lock costs less than a tokenizer copy per thread.
- The chat template is applied as text and then encoded without adding special tokens,
  so the ids are exactly the template's, whatever the tokenizer's BOS habits.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence


class TextCodec:
    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer  # use only under `lock` from shared threads
        self.lock = threading.Lock()

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The prompt text of a conversation, ending with the assistant turn's header."""
        with self.lock:
            return self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )

    def encode(self, text: str) -> list[int]:
        with self.lock:
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return self.encode(self.render_chat(messages))

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        with self.lock:
            return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
