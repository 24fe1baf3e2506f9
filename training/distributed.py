"""One process or many: the torchrun environment, read once.

Design decisions:
- The same entry point runs alone or under `torchrun --nproc_per_node N`: when torchrun's
  WORLD_SIZE is above one, the process group is started (NCCL on CUDA, gloo on CPU) and
  the model is wrapped in DistributedDataParallel; otherwise nothing changes.
- Only rank 0 writes files and prints progress; every rank computes.
- Helpers reduce plain Python numbers, so the loop stays readable without `if world > 1`.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def sum(self, value: float | int) -> float:
        if not self.active:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor.item())

    def gather(self, value: str) -> list[str]:
        if not self.active:
            return [value]
        out: list = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def wait_for_all(self) -> None:
        """Hold every rank here until all arrive: gloo aborts the process ("terminate called
        without an active exception") when one rank tears the group down while another is
        still talking to it, as rank 0 is while it writes the last checkpoint."""
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            # DDP's reducer sits in reference cycles that hold the group's gloo work
            # objects; left to interpreter shutdown they abort the process, so free them now.
            gc.collect()
            dist.destroy_process_group()


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain process (the one that reports)."""
    return os.environ.get("RANK", "0") == "0"


def setup(device: str = "auto") -> Dist:
    """Start the process group if torchrun asked for several processes; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, chosen)
