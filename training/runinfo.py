"""What a run records about itself in `run.json`: command, code revision and hardware.

Design decision: gathered once at the start of a run and written beside the weights
(DESIGN §4), so a checkpoint folder alone says how it was made and on what.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


def git_revision() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    revision = done.stdout.strip() or "unknown"
    return revision + ("+dirty" if dirty.stdout.strip() else "")


def hardware(device: torch.device, world: int) -> dict:
    info = {
        "device": str(device),
        "processes": world,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def shown_path(path: Path | str) -> str:
    """A path as the daily log shows it: relative to the repository when inside it."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(REPO_ROOT))
    except ValueError:
        return str(resolved)
