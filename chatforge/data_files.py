"""Read a YAML data file of the project and check it against the shape its reader expects.

Design decisions:
- Word lists, templates and labelled texts live in YAML files beside the code that reads
  them (chatforge/data/, training/data/), not in Python literals, so adding a language or
  a template is a data change; the reader states the expected shape as a type, and
  pydantic checks it, so a mistake is reported with the file and the path to the bad
  value (`languages.fr.override.2: Input should be a valid string`) rather than failing
  later inside a generator.
- The readers are small and typed: each module keeps the names it had, filled from its
  file at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError


class DataFileError(ValueError):
    """A data file that is missing or does not have the expected shape."""


def read_yaml(path: Path, shape: Any) -> Any:
    """The file's content, validated as `shape` (a type pydantic understands)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataFileError(f"{path}: cannot read ({exc})") from None
    try:
        return TypeAdapter(shape).validate_python(data, strict=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise DataFileError(f"{path}: {problems}") from None
