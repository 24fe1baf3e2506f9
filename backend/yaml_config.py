"""Read a YAML config file into a pydantic model, reporting errors as `file:line: problem`.

Design decisions:
- One loader for every config file the server reads (the model registry, the guardrail
  policy), so each reports a mistake the same way: the file, the line of the offending key
  and pydantic's message, found by walking the YAML node tree along the error's location.
- The caller passes its own error type, so each command keeps catching the error it knows
  (`RegistryError`, `PolicyError`) while the reporting is shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def _node_at(node: yaml.Node, loc: tuple) -> yaml.Node:
    """The YAML node that names the deepest key along a pydantic error location."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == key]
            if not match:
                return node
            key_node, node = match[0]
            if key == loc[-1] or not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
                return key_node
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return node
    return node


def load_yaml_model(
    path: Path,
    schema: type[Model],
    error: type[Exception],
    what: str,
    top_keys: str,
    short: str | None = None,
) -> Model:
    """Parse and validate `path`; raise `error` naming the file, line and problem.

    `what` names the file's role in messages ("model registry"; `short`, if given, in the
    "cannot read" one); `top_keys` says what the top-level mapping should hold, for a file
    that is not a mapping at all.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"{path}: cannot read the {short or what} ({exc.strerror})") from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{path}{line}: not valid YAML: {problem}") from None
    if data is None:
        return schema()
    if not isinstance(data, dict):
        raise error(f"{path}:1: expected a mapping with {top_keys}")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            node = _node_at(root, loc)
            where = ".".join(str(p) for p in loc) or "(top level)"
            problems.append(f"{path}:{node.start_mark.line + 1}: {where}: {err['msg']}")
        raise error(f"invalid {what}:\n  " + "\n  ".join(problems)) from None
