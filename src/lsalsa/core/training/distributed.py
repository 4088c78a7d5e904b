"""Data-parallel training under ``torchrun``: process group set-up and mini-batch sharding.

One code path serves one process and many: with ``WORLD_SIZE`` unset or 1 nothing changes;
with ``WORLD_SIZE > 1`` (set by ``torchrun``) the trainer joins the process group (gloo on CPU,
NCCL on GPU), wraps the encoder in ``DistributedDataParallel`` and gives each rank a slice of
every *global* mini-batch, so the result equals one process with the same global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ...errors import InputError
from .._arrays import resolve_device


@dataclass
class Distributed:
    """Where this process sits in the job: ``rank`` of ``world_size`` (1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we initialised the process group, so we tear it down

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> Distributed:
        """Join the process group ``torchrun`` describes in the environment, if any."""
        world = _env_int("WORLD_SIZE", 1)
        if world <= 1:
            return cls()
        import torch.distributed as dist

        owns = False
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
            owns = True
        return cls(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), owns)

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global mini-batch of indices (may be empty)."""
        if not self.active:
            return batch
        return torch.tensor_split(batch, self.world_size)[self.rank]

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``DistributedDataParallel`` around ``module`` when running with several processes."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        device = next(module.parameters()).device
        ids = [device] if device.type == "cuda" else None
        # Buffers (dictionary, fixed thresholds) are equal on every rank; DDP's default
        # buffer sync is cheap and keeps this portable across torch versions.
        return DistributedDataParallel(module, device_ids=ids)

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False


def local_device(name: str | None) -> torch.device:
    """The device for this process: ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun."""
    if name is None or name == "cpu":
        return torch.device("cpu")
    device = resolve_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", _env_int("LOCAL_RANK", 0) % torch.cuda.device_count())
    return device


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise InputError(f"environment variable {name}={value!r} is not an integer") from exc
