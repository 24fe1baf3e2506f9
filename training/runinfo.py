"""What a run records about itself in `run.json`: the hardware it ran on.

Design decision: gathered once at the start of a run and written beside the weights
(DESIGN §4), so a checkpoint folder alone says how it was made and on what.
"""

from __future__ import annotations

import os
import platform
import sys

import torch


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
