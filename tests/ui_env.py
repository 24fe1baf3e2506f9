"""A virtual environment holding only the UI's dependency set, for the UI-only test.

Dockerfile.ui installs the `ui` extra of pyproject.toml and the project without its
dependencies; a UI that imports anything else works here and breaks on Cloud Run. No
Docker daemon runs here, and a pip install of the extra takes minutes on the shared CPUs,
so this builds the same set from what the project's own venv already has installed: the
distributions the `ui` extra requires, followed through their own requirements (markers
and extras evaluated as pip would), are linked file by file (each distribution's RECORD)
into a fresh venv's site-packages. Nothing else is importable there: not torch, not
transformers, not the packages only the server or the tests need.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def ui_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["optional-dependencies"]["ui"]]


def closure(requirements: list[Requirement]) -> dict[str, metadata.Distribution]:
    """Every installed distribution the requirements need, by canonical name."""
    found: dict[str, metadata.Distribution] = {}
    pending = [(req, "") for req in requirements]
    while pending:
        req, extra = pending.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        wanted = set(req.extras)
        if name in found and not wanted:
            continue
        dist = found.get(name) or metadata.distribution(req.name)
        found[name] = dist
        for text in dist.requires or []:
            child = Requirement(text)
            # Requirements of the base set, and of each extra asked for.
            pending += [(child, e) for e in ("", *wanted)]
    return found


def build_ui_env(folder: Path, project: bool = True) -> Path:
    """A venv in `folder` with the UI's dependency set and (`project`) the project from this
    checkout; its python. Without the project, its site-packages take an install of it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    target = site_packages(python)
    here = Path(sysconfig.get_paths()["purelib"])
    for dist in closure(ui_requirements()).values():
        for file in dist.files or []:
            source = Path(dist.locate_file(file)).resolve()
            if not source.is_file() or not source.is_relative_to(here):
                continue  # scripts in bin/, absent byte code
            link = target / source.relative_to(here)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(source)
    if project:  # as `pip install --no-deps .` puts it there: its packages only
        (target / "chatforge.pth").write_text(f"{ROOT}\n{ROOT / 'proto'}\n")
    return python


def site_packages(python: Path) -> Path:
    return Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
