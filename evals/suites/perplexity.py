"""perplexity: bits per byte on the corpus's held-out test split.

Design decisions:
- Bits per byte, not token perplexity: the sum of the text's negative log-likelihood in
  bits over the number of UTF-8 bytes scored. It does not depend on the tokenizer, so our
  from-scratch GPT with its own BPE and SmolLM2 compare on the same pages (nanochat's bpb).
  The aggregate is a ratio of sums over all chunks, never a mean of per-chunk ratios.
- Pages are cut into chunks of about `chunk_chars` characters at paragraph boundaries (a
  paragraph longer than that is cut at a space), each scored from the start of text (the
  BOS token) with no earlier context. Chunking keeps every forward pass inside small
  models' context windows and makes the item a unit to resample; the fixed size keeps
  numbers comparable between models with different context lengths.
- Chunks are taken in a seeded order over the whole test split, so the small default run
  is a random sample of pages rather than the first page.
"""

from __future__ import annotations

import math

from evals.results import MetricSpec, Row
from evals.suites.base import Item, Suite, SuiteConfig
from evals.suites.corpus_data import seeded_order, test_documents
from evals.targets import Target

CHUNK_CHARS = 1000


def chunk_text(text: str, size: int) -> list[str]:
    """Paragraph-aligned chunks of at most about `size` characters."""
    chunks: list[str] = []
    current = ""
    for paragraph in (p.strip() for p in text.split("\n\n")):
        while len(paragraph) > size:
            cut = paragraph.rfind(" ", 0, size)
            cut = cut if cut > 0 else size
            chunks.extend([current] if current else [])
            current = ""
            chunks.append(paragraph[:cut])
            paragraph = paragraph[cut:].strip()
        if not paragraph:
            continue
        if current and len(current) + 2 + len(paragraph) > size:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        chunks.append(current)
    return chunks


class Perplexity(Suite):
    name = "perplexity"
    version = "1"
    description = "bits per byte on the held-out corpus split (comparable across tokenizers)"
    default_size = 8
    metrics = [
        MetricSpec(
            "bits_per_byte",
            "ratio",
            "nats",
            "bits of negative log-likelihood per byte",
            denominator="bytes",
            scale=1 / math.log(2),
            higher_is_better=False,
        ),
        MetricSpec(
            "bytes_per_token",
            "ratio",
            "bytes",
            "UTF-8 bytes per token (tokenizer)",
            denominator="tokens",
        ),
    ]

    def chunk_chars(self, config: SuiteConfig) -> int:
        return int(config.options.get("chunk_chars", CHUNK_CHARS))

    def settings(self, config: SuiteConfig) -> dict:
        return {**super().settings(config), "chunk_chars": self.chunk_chars(config)}

    def all_items(self, config: SuiteConfig) -> list[Item]:
        items = [
            Item(f"{doc.id}:{i}", {"text": chunk})
            for doc in test_documents(config.corpus)
            for i, chunk in enumerate(chunk_text(doc.text, self.chunk_chars(config)))
        ]
        return seeded_order(items, config.seed)

    def run_item(self, item: Item, target: Target, config: SuiteConfig) -> Row:
        text = item.data["text"]
        (scored,) = target.score([text])
        size = len(text.encode())
        return Row(
            id=item.id,
            input=text[:200],
            scores={
                "nats": -scored.logprob,
                "bytes": float(size),
                "tokens": float(scored.tokens),
                "bits_per_byte": -scored.logprob / math.log(2) / size,
            },
        )
