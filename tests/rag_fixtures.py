"""Small document fixtures for the retrieval tests: a folder of pages in every supported
format, and corpus-contract records written straight to a documents.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

PAGES = {
    "json.md": """# The json module

The json module encodes Python objects as JSON text and decodes JSON text back.

## Encoding

Call `json.dumps(obj)` to turn a Python object into a JSON string. Pass `indent=2` to
pretty-print the output with two spaces per level.

## Decoding

Call `json.loads(text)` to parse a JSON string into Python objects such as dicts and
lists. Invalid input raises `json.JSONDecodeError`.
""",
    "guide/sorting.html": """<html><head><title>Sorting lists</title></head><body>
<h1 id="sorting-lists">Sorting lists</h1>
<p>Python lists have a <code>list.sort()</code> method that sorts the list in place.</p>
<h2 id="sorted">The sorted() function</h2>
<p>The built-in <code>sorted()</code> function builds a new sorted list from any iterable.
Pass <code>reverse=True</code> to sort in descending order, and <code>key=</code> to sort
by a value computed from each item.</p>
</body></html>
""",
    "widgets.rst": """Widgets
=======

The widgets module manages sprockets for the factory floor.

Frobnicate
----------

The function ``widgets.frobnicate(crate)`` returns the number of sprockets in the crate.
It raises ``EmptyCrateError`` when the crate holds no sprockets at all.
""",
    "tea.txt": """Brewing green tea

Green tea is brewed with water at about 80 degrees Celsius for two to three minutes.
Boiling water makes it bitter.
""",
}


def write_pages(folder: Path) -> Path:
    for name, text in PAGES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def document(doc_id: str, title: str, sections: list[tuple[str, str, str]]) -> dict:
    """A corpus-contract record; sections are (title, anchor, text)."""
    parts = [
        {"title": t, "anchor": a, "level": 1 if i == 0 else 2, "text": x}
        for i, (t, a, x) in enumerate(sections)
    ]
    text = "\n\n".join(f"{s['title']}\n{s['text']}" for s in parts)
    return {"id": doc_id, "title": title, "path": doc_id, "split": "train", "text": text,
            "sections": parts}  # fmt: skip


def write_documents(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path
