"""The architecture's layering, checked on the code's own imports (every import statement,
including those inside functions): the parts that must never reach each other do not."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# part -> the top-level packages (or modules of them) it may never import, and why
NEVER = {
    "backend": {"evals": "the server knows no eval code", "training": "checkpoint folders are "
                "the door", "ui": "the server knows no screen"},
    "training": {"backend": "checkpoint folders are the door",
                 "evals": "training writes folders; evals read them"},
    "evals": {"training": "evals read folders and corpora, not training code"},
    "ui": {"training": "the UI runs on Cloud Run without the ML stack"},
    # every part may import chatforge/, so it imports none of them
    "chatforge": {p: "the shared modules stand below every part"
                  for p in ("backend", "training", "evals", "ui", "bench", "deploy")},
}  # fmt: skip
# Of the backend, the UI and the evals use only the client (the UI runs without the
# server's ML stack); the evals' checkpoint target alone loads and scores a model the way
# the server does ("Evals -> Server: checkpoint targets").
CLIENT = ("backend.client", "backend.launcher", "backend.settings")  # settings: the client's
CHECKPOINT_TARGET = "evals/targets.py"


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def broken(part: str) -> list[str]:
    out = []
    for path in sorted((ROOT / part).rglob("*.py")):
        for line, module in imports_of(path):
            top = module.split(".")[0]
            if top in NEVER[part]:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}: {NEVER[part][top]}")
            elif (
                part in ("ui", "evals")
                and top == "backend"
                and not module.startswith(CLIENT)
                and path.relative_to(ROOT).as_posix() != CHECKPOINT_TARGET
            ):
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}: only "
                           f"{CHECKPOINT_TARGET} reaches past the client")  # fmt: skip
    return out


@pytest.mark.parametrize("part", sorted(NEVER))
def test_no_part_imports_what_the_architecture_forbids(part):
    assert broken(part) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from evals.journal import append_entry\n")
    assert imports_of(module) == [(2, "evals.journal")]
