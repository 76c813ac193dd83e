"""Data-parallel training with torch.distributed: one process per device, launched by ``torchrun``.

Every process builds the same model from the same seed and draws the same global batch; each trains
on its own slice of it, and DistributedDataParallel averages the gradients (NCCL on GPUs, Gloo on
CPU), so the processes stay identical and the update equals one process's update on the whole batch.
Only rank 0 writes the run directory (checkpoints, metrics, model).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from kgrec.train.objectives import Batch

__all__ = ["Distributed", "from_environment"]


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel group (``world == 1``: a single process, nothing to do)."""

    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @property
    def active(self) -> bool:
        """Whether several processes train together."""
        return self.world > 1

    @property
    def writer(self) -> bool:
        """Whether this process writes files (rank 0 only)."""
        return self.rank == 0

    def shard(self, batch: Batch) -> tuple[Batch, float]:
        """This process's slice of a global batch, and the factor that makes the averaged gradient the whole batch's.

        Losses are means over a slice; DDP averages gradients over processes. Scaling each slice's
        loss by ``len(slice) * world / len(batch)`` makes that average the gradient of the mean over
        the whole batch, whatever the slice sizes (a process with an empty slice trains on one row at weight 0).
        """
        if not self.active:
            return batch, 1.0
        rows = torch.arange(self.rank, len(batch.users), self.world, device=batch.users.device)
        scale = len(rows) * self.world / len(batch.users)
        if len(rows) == 0:
            rows, scale = rows.new_zeros(1), 0.0
        return Batch(batch.users[rows], batch.positives[rows], batch.negatives[rows], batch.rows[rows]), scale

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` wrapped in DistributedDataParallel when several processes train, else as it is."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        # Buffers (frozen KG/text embeddings) never change, so they are not re-broadcast every step.
        return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False, find_unused_parameters=True)

    def barrier(self) -> None:
        """Wait for every process (a no-op for one)."""
        if self.active:
            torch.distributed.barrier()

    def close(self) -> None:
        """Leave the process group, if this module joined it."""
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def from_environment(device: torch.device) -> tuple[Distributed, torch.device]:
    """Join the group ``torchrun`` describes in ``RANK``/``WORLD_SIZE`` (if any) and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    owns = not torch.distributed.is_initialized()
    if owns:
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world, owns), device
