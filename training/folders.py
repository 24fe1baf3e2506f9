"""Output folders that are replaced whole: a reader sees the old folder or the new one,
never half of either.

The new folder is filled in a temp folder beside it (same file system, so the rename is
atomic); the old one is moved aside before the new one takes its name and removed after,
so a crash at any point leaves one complete folder under `out`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_folder(out: Path, fill: Callable[[Path], None]) -> None:
    """Call `fill(work)` on an empty temp folder, then put it in place of `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        fill(work)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}-old-{work.name}"
            out.rename(old)
        work.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
