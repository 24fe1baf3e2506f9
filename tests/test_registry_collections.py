"""The `collections:` section of models.yaml: paths, defaults, includes, and errors that
name the file and the line."""

import pytest

from backend.registry import RegistryError, load_registry
from tests.helpers import run_backend

MODEL = "models:\n  a:\n    checkpoint: x\n"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_collections_resolve_paths_merge_includes_and_pick_the_default(tmp_path):
    write(tmp_path / "runs" / "models.yaml", "collections:\n  notes:\n    index: ../idx/notes\n")
    path = write(
        tmp_path / "models.yaml",
        MODEL + "collections:\n  pydocs:\n    index: idx/pydocs\n  blog:\n    index: /srv/blog\n"
        "    default: true\ninclude:\n  - runs/models.yaml\n",
    )
    registry = load_registry(path)
    assert registry.collections["pydocs"].index == str(tmp_path / "idx" / "pydocs")
    assert registry.collections["notes"].index == str(tmp_path / "idx" / "notes")
    assert registry.default_collection == "blog"
    registry.add_collection("pydocs", str(tmp_path / "other"))  # --collection replaces
    assert registry.collections["pydocs"].index == str(tmp_path / "other")
    assert load_registry(write(tmp_path / "plain.yaml", MODEL)).default_collection == ""


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("collections:\n  p:\n    indx: /i\n", 6, "collections.p.indx"),
        ("collections:\n  p:\n    default: true\n", 6, "collections.p.index: Field required"),
        ("collections:\n  p:\n    index: /i\n    default: maybe\n", 7, "collections.p.default"),
    ],
)
def test_collection_errors_name_file_and_line(tmp_path, text, line, fragment):
    path = write(tmp_path / "models.yaml", MODEL + text)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert f"{path}:{line}" in str(info.value) and fragment in str(info.value)


def test_two_default_collections_and_duplicates_across_includes(tmp_path):
    two = MODEL + "collections:\n  p:\n    index: /a\n    default: true\n"
    two += "  q:\n    index: /b\n    default: true\n"
    with pytest.raises(RegistryError, match="more than one default collection: p, q"):
        load_registry(write(tmp_path / "two.yaml", two))
    write(tmp_path / "more.yaml", "collections:\n  p:\n    index: /c\n")
    dup = MODEL + "collections:\n  p:\n    index: /a\ninclude:\n  - more.yaml\n"
    with pytest.raises(RegistryError, match="collection `p` is already defined"):
        load_registry(write(tmp_path / "dup.yaml", dup))


def test_serve_names_a_collection_whose_index_is_missing(tmp_path):
    path = write(tmp_path / "models.yaml", MODEL + "collections:\n  p:\n    index: nowhere\n")
    result = run_backend("serve", "--config", str(path), "--port", "0", timeout=120)
    assert result.returncode == 2
    assert f"collection p: {tmp_path / 'nowhere'}: no retrieval index there" in result.stderr
    assert "Traceback" not in result.stderr
