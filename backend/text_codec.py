"""Thread-safe text <-> token ids for one model: chat template, encode, decode, token bytes.

Design decisions:
- Every gRPC handler thread encodes prompts and decodes streamed tokens with the model's
  one Hugging Face fast tokenizer. Its Python binding mutates shared state on each call
  and raises `RuntimeError: Already borrowed` when two threads use it at once
  (huggingface/tokenizers#537), so every call goes through one lock. The calls are
  microseconds long, so a lock costs less than a tokenizer copy per thread.
- The chat template is applied as text and then encoded without adding special tokens,
  so the ids are exactly the template's, whatever the tokenizer's BOS habits.
- Streaming needs the bytes behind each token, not its text: a byte-level BPE token can
  hold part of a UTF-8 character, and `decode` turns such a part into U+FFFD, the same
  character a model may produce whole. For a byte-level tokenizer (GPT-2 style: SmolLM2,
  Llama 3, Qwen, our own BPE) `token_bytes` is each id's bytes exactly as its ByteLevel
  decoder writes them (special tokens empty, as `decode` skips them), built once from the
  vocabulary. Other tokenizers (SentencePiece and the like) get None, and the
  detokenizer falls back to decoding text.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from tokenizers import decoders


def _byte_level_chars() -> dict[str, int]:
    """The ByteLevel decoder's table: each of its 256 printable characters -> the byte it
    stands for (GPT-2's `bytes_to_unicode`, inverted)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars, shifted = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:  # control and space bytes are shifted past 255 to printable characters
            chars[chr(256 + shifted)] = byte
            shifted += 1
    return chars


_BYTE_LEVEL = _byte_level_chars()


def byte_level_table(tokenizer) -> list[bytes] | None:
    """Each token id's bytes for a ByteLevel-decoded fast tokenizer; None for any other."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not isinstance(backend.decoder, decoders.ByteLevel):
        return None
    vocab = backend.get_vocab(with_added_tokens=True)
    special = {i for i, t in backend.get_added_tokens_decoder().items() if t.special}
    table = [b""] * (max(vocab.values()) + 1)
    for token, index in vocab.items():
        if index in special:
            continue
        # As the ByteLevel decoder does: a token whose characters are all in the table is
        # those bytes; any other (an added token with a space, say) is its own UTF-8.
        if all(c in _BYTE_LEVEL for c in token):
            table[index] = bytes(_BYTE_LEVEL[c] for c in token)
        else:
            table[index] = token.encode()
    return table


class TextCodec:
    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer  # use only under `lock` from shared threads
        self.lock = threading.Lock()
        self._token_bytes: list[bytes] | None = None
        self._token_bytes_built = False

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

    def token_bytes(self) -> list[bytes] | None:
        """Each token id's bytes (special tokens: b""), or None if not byte-level; built on
        first use, since a server that never streams has no need for it."""
        with self.lock:
            if not self._token_bytes_built:
                self._token_bytes = byte_level_table(self.tokenizer)
                self._token_bytes_built = True
            return self._token_bytes
