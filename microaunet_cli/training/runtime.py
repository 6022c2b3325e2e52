"""Where and how a run executes: device, mixed precision, distributed processes, seeding."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from microaunet_cli.config import TrainSettings
from microaunet_cli.cpu_memory import keep_freed_memory
from microaunet_cli.cpu_threads import use_threads
from microaunet_cli.devices import autocast, pick_amp, pick_device
from microaunet_cli.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        return autocast(self.device, self.amp_dtype)


def launch_ranks(environ: Mapping[str, str] = os.environ) -> tuple[int, int, int]:
    """(rank, world size, local rank), as torchrun sets them, or as srun sets them for the tasks it starts.

    Under srun the ranks are the tasks themselves, so Slurm's signals reach each one. Only a task of an
    srun step (SLURM_STEP_ID) counts: the batch shell also sees SLURM_NTASKS, and a single process started
    there must not wait for partners that never come."""
    if "WORLD_SIZE" in environ:
        return int(environ.get("RANK", "0")), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", "0"))
    if "SLURM_STEP_ID" in environ and "SLURM_NTASKS" in environ:
        world = int(environ["SLURM_NTASKS"])
        if world > 1 and not ("MASTER_ADDR" in environ and "MASTER_PORT" in environ):
            raise ConfigError(
                f"srun started {world} tasks but MASTER_ADDR and MASTER_PORT are not set: export "
                f"them before srun (the address and a free port of the first node), as "
                f"examples/slurm/*.sbatch do"
            )
        return int(environ["SLURM_PROCID"]), world, int(environ.get("SLURM_LOCALID", "0"))
    return 0, 1, 0


def setup_runtime(train: TrainSettings) -> Runtime:
    """Join the process group when launched by torchrun or srun; pick device and precision."""
    rank, world, local_rank = launch_ranks()
    device = pick_device(train.device, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        log.info("distributed: rank %d of %d (%s)", rank, world, backend)
    use_threads(train.num_threads)
    if device.type == "cpu":
        keep_freed_memory()
    return Runtime(device, pick_amp(train.amp, device), rank, world, local_rank)


def barrier(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        dist.barrier()


def shutdown_runtime(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def step_generator(
    seed: int, epoch: int, step: int, device: torch.device | str = "cpu", rank: int = 0
) -> torch.Generator:
    """A generator fixed by (seed, epoch, step, rank): augmentations and anchor draws repeat exactly
    on resume, even in the middle of an epoch, without replaying earlier random draws. The rank
    enters so that processes holding different images do not draw the same flips and rotations."""
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + epoch * 10_007 + step + rank * 998_244_353) % (2**63 - 1))
    return g


def share_buffers_from_rank0(model: torch.nn.Module, rt: Runtime) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    DDP already sends rank 0's buffers to the others before each training forward, so rank 0's
    statistics are the run's; only the last forward leaves each rank with its own. Sending them once
    more before validation makes every rank score the network its checkpoint holds (rank 0 writes
    it). SyncBatchNorm was not chosen: it changes what training computes (statistics of the global
    batch), costs a collective per norm layer per step and does not run on CPU processes (gloo).
    """
    if not rt.distributed:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)
