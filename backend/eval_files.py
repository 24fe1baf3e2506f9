"""The eval results files in a checkpoint's evals/ folder, as GetModel and GetEvalRows
serve them: a summary per file, and the item rows of one file a page at a time.

Design decisions:
- A results file grows with its items (every input, reference and output), and a model
  gathers one per run, so the card carries summaries only (suite, counts, the aggregates
  the file already holds, and the file minus its `items`), and the rows travel in pages:
  no message approaches gRPC's 4 MiB limit however many runs a model has.
- The server reads the files' JSON and knows their field names (the checkpoint contract,
  DESIGN §4), not the evals code that wrote them: a client rebuilds the whole file from
  `header_json` plus the rows, and recomputes anything from there.
- A file in evals/ that is not a results file (no `items` list, say a note) is left out
  of the summaries, and asking for its rows says so.
- A page token is opaque to clients: the file's name and the next row's offset, base64
  encoded, so a token of another file or a made-up one is refused with a message rather
  than read from the wrong place. Files are read whole per page; they are at most
  MAX_EVAL_JSON_BYTES (what RecordEval accepts). A page also ends after MAX_PAGE_BYTES
  of rows (always holding at least one), so a page of long answers fits a message too.
- Parsing is per file version, not per call: a file's summary (small) and the rows of the
  last few files read (large) are cached under its path, modification time and size.
  Every GetModel summarises every file of the model and a client reads a run page by
  page, so without it each call re-parsed megabytes; a file rewritten (RecordEval) has
  a new key, so what GetModel shows is still read when it is asked for.
- Summaries are newest first: run file names begin with the run's UTC time.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import grpc

from backend.validation import RequestError, invalid, validate_eval_name
from chat.v1 import chat_pb2

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_PAGE_BYTES = 2 * 1024 * 1024  # a page of long rows ends early, far below gRPC's 4 MiB


def _version(path: Path) -> tuple[Path, int, int] | None:
    """The cache key of the file as it is now; None when it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return path, stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=4)  # whole files: the few runs being inspected or compared
def _read(path: Path, mtime_ns: int, size: int) -> dict | None:
    """The file's JSON when it is a results file (an object with an `items` list); callers
    share the result, so they must not change it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        return None
    return data


@functools.lru_cache(maxsize=4096)
def _summary_bytes(path: Path, mtime_ns: int, size: int) -> bytes | None:
    data = _read(path, mtime_ns, size)
    return None if data is None else summary(path.name, data).SerializeToString()


def read_summary(path: Path) -> chat_pb2.EvalSummary | None:
    """The summary of one results file anywhere (a run folder's results.json, or one in
    evals/), as a message of its own: callers may change it."""
    version = _version(path)
    found = None if version is None else _summary_bytes(*version)
    return None if found is None else chat_pb2.EvalSummary.FromString(found)


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def summary(name: str, data: dict) -> chat_pb2.EvalSummary:
    """What one results file says, without its rows."""
    header = {k: v for k, v in data.items() if k != "items"}
    aggregates = data.get("aggregates") or {}
    metrics = []
    for spec in data.get("metrics") or []:
        agg = aggregates.get(spec.get("name"), {})
        metrics.append(
            chat_pb2.EvalMetric(
                name=str(spec.get("name", "")),
                description=str(spec.get("description", "")),
                value=_number(agg.get("value")),
                ci_low=_number(agg.get("ci_low")),
                ci_high=_number(agg.get("ci_high")),
                n=int(agg.get("n") or 0),
                higher_is_better=bool(spec.get("higher_is_better", True)),
            )
        )
    items = data["items"]
    return chat_pb2.EvalSummary(
        name=name,
        suite=str(data.get("suite", "")),
        suite_version=str(data.get("suite_version", "")),
        model=str(data.get("model", "")),
        items=len(items),
        errors=sum(1 for row in items if isinstance(row, dict) and row.get("error")),
        started_at=str(data.get("started_at", "")),
        duration_s=_number(data.get("duration_s")) or 0.0,
        metrics=metrics,
        header_json=json.dumps(header, ensure_ascii=False),
    )


def summaries(folder: Path) -> list[chat_pb2.EvalSummary]:
    """One summary per results file in `folder`/evals, newest first."""
    evals_dir = folder / "evals"
    if not evals_dir.is_dir():
        return []
    found = (read_summary(path) for path in sorted(evals_dir.glob("*.json"), reverse=True))
    return [s for s in found if s is not None]


@dataclass(frozen=True)
class Page:
    rows: list[str]
    total: int
    next_token: str


def _token(name: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([name, offset]).encode()).decode()


def _offset(name: str, token: str) -> int:
    if not token:
        return 0
    try:
        found, offset = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, binascii.Error):
        found, offset = None, None
    if found != name or not isinstance(offset, int) or offset < 0:
        raise invalid(
            f"page_token: not a token this server returned for {name!r}; pass the "
            "next_page_token of the previous page, or none for the first page"
        )
    return offset


def rows_page(folder: Path, model: str, name: str, page_size: int, token: str) -> Page:
    """One page of the rows of `folder`/evals/`name` (a name its card lists)."""
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        raise invalid(
            f"page_size: {page_size} is out of range; give 1 to {MAX_PAGE_SIZE}, or 0 "
            f"for {DEFAULT_PAGE_SIZE}"
        )
    validate_eval_name(name)
    offset = _offset(name, token)
    path = folder / "evals" / name
    version = _version(path) if path.is_file() else None
    if version is None:
        raise RequestError(
            grpc.StatusCode.NOT_FOUND,
            f"name: model `{model}` has no eval result {name!r}; GetModel lists its eval_summaries",
        )
    data = _read(*version)
    if data is None:
        raise RequestError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"name: {name!r} in model `{model}`'s evals/ is not an evals results file",
        )
    items = data["items"]
    rows: list[str] = []
    size = 0
    for row in items[offset : offset + (page_size or DEFAULT_PAGE_SIZE)]:
        text = json.dumps(row, ensure_ascii=False)
        if rows and size + len(text) > MAX_PAGE_BYTES:
            break
        rows.append(text)
        size += len(text)
    end = offset + len(rows)
    return Page(rows, len(items), _token(name, end) if end < len(items) else "")
