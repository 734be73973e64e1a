"""Everything rank- and collective-related (spec §3.3, §9 items 17 and 29): the only module that touches ``torch.distributed``.

Every helper works unchanged in a single process without a process group (it is then the
identity, or returns the local value), so models, losses and evaluation code call them
unconditionally. Launch multi-process runs with ``torchrun``; :func:`init_distributed` reads the
environment it sets (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``).

Gathers concatenate along dim 0 in rank order and accept per-rank tensors whose sizes differ in
any dimension: the sizes are exchanged first, every tensor is zero-padded to the largest size,
gathered, and dim 0 is trimmed back to each rank's own length (other dims stay padded to the
maximum, which is what padded sentence tensors want).
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in the job.

    Attributes:
        rank: global rank (0 in a single process).
        local_rank: rank on this node (selects the CUDA device).
        world_size: number of processes.
        device: the device this process computes on.
        backend: ``"nccl"``, ``"gloo"``, or ``None`` without a process group.
    """

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """Whether this process is rank 0 (the one that logs and writes files)."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(f"environment variable {name}={value!r} is not an integer (set by torchrun)") from err


def is_distributed() -> bool:
    """Whether a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """Global rank, 0 without a process group."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes, 1 without a process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def init_distributed(*, device: str | None = None) -> DistEnv:
    """Join the ``torchrun`` job described by the environment, or describe the single process.

    With ``WORLD_SIZE`` > 1 the process group is initialised (NCCL when CUDA is available, gloo
    otherwise) and, on CUDA, the device ``cuda:LOCAL_RANK`` is selected. Calling it again
    returns the same description without re-initialising.

    Args:
        device: ``"cpu"`` or ``"cuda"`` to force a device type; ``None`` picks CUDA when available.

    Returns:
        The process's :class:`DistEnv`.
    """
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be None, 'cpu' or 'cuda', got {device!r}")
    use_cuda = torch.cuda.is_available() if device is None else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but CUDA is not available")
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world_size}")
    torch_device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(torch_device)
    if world_size == 1:
        return DistEnv(rank=0, local_rank=0, world_size=1, device=torch_device, backend=None)
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        logger.info(
            "process group initialised: rank %d/%d, backend %s, device %s", rank, world_size, backend, torch_device
        )
    return DistEnv(
        rank=dist.get_rank(),
        local_rank=local_rank,
        world_size=dist.get_world_size(),
        device=torch_device,
        backend=dist.get_backend(),
    )


def is_main_process() -> bool:
    """Whether this process is rank 0 (always true without a process group)."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank; a no-op without a process group."""
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    """Destroy the process group, if one was initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) with ``seed``.

    Call it once at the start of a run; data order and augmentation should still take their own
    generators. Pass ``seed + rank`` where ranks must draw different random numbers.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def all_reduce_mean(value: float | torch.Tensor) -> float:
    """The mean of a scalar over all ranks (the value itself in a single process)."""
    tensor = torch.as_tensor(value, dtype=torch.float64).detach().reshape(())
    if not is_distributed():
        return float(tensor)
    tensor = tensor.to(_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor) / dist.get_world_size()


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum of ``x`` over all ranks, as a new tensor without gradient (``x`` itself in a single process)."""
    if not is_distributed():
        return x.detach()
    total = x.detach().clone().to(_collective_device())
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(x.device)


def any_flag(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank, so that every rank takes the same stop/skip decision."""
    if not is_distributed():
        return bool(flag)
    tensor = torch.tensor(1 if flag else 0, dtype=torch.int32, device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def _collective_device() -> torch.device:
    """The device collectives of the current backend run on (CUDA for NCCL, CPU for gloo)."""
    if dist.get_backend() == dist.Backend.NCCL:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _gather_shapes(x: torch.Tensor) -> list[torch.Size]:
    """The shape of ``x`` on every rank, in rank order (one small collective)."""
    local = torch.tensor(x.shape, dtype=torch.int64, device=_collective_device())
    shapes = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(shapes, local)
    ranks_dims = {int(s.numel()) for s in shapes}
    if ranks_dims != {x.dim()}:
        raise ValueError(f"ranks gather tensors of different numbers of dimensions: {sorted(ranks_dims)}")
    return [torch.Size(s.tolist()) for s in shapes]


def _pad_to(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Zero-pad ``x`` at the end of every dimension up to ``shape``."""
    pad: list[int] = []
    for have, want in zip(reversed(x.shape), reversed(shape), strict=True):
        pad.extend((0, want - have))
    return F.pad(x, pad) if any(pad) else x


def _autograd_all_gather(x: torch.Tensor) -> torch.Tensor:
    """All-gather along dim 0 whose backward sums gradients over ranks (newest torch API available)."""
    from torch.distributed import _functional_collectives as funcol

    world = dist.group.WORLD
    if world is None:
        raise RuntimeError("no default process group; call init_distributed() first")
    for name in ("all_gather_single_autograd", "all_gather_tensor_autograd"):
        gather = getattr(funcol, name, None)
        if gather is not None:
            return gather(x, 0, world)
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x, group=world), dim=0)


def _gather_padded(x: torch.Tensor, shapes: list[torch.Size], *, with_grad: bool) -> torch.Tensor:
    max_shape = torch.Size(max(s[d] for s in shapes) for d in range(x.dim()))
    padded = _pad_to(x, max_shape).contiguous()
    if max_shape[0] == 0:
        return padded
    if with_grad:
        gathered = _autograd_all_gather(padded)
    else:
        parts = [torch.empty_like(padded) for _ in shapes]
        dist.all_gather(parts, padded)
        gathered = torch.cat(parts, dim=0)
    pieces = gathered.split(max_shape[0], dim=0)
    return torch.cat([piece[: shape[0]] for piece, shape in zip(pieces, shapes, strict=True)], dim=0)


def all_gather_with_sizes(x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """:func:`all_gather_with_grad`, also returning every rank's length along dim 0 (rank order)."""
    if not is_distributed():
        return x, [x.shape[0]]
    shapes = _gather_shapes(x)
    return _gather_padded(x, shapes, with_grad=True), [s[0] for s in shapes]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, with gradients flowing back to each rank.

    The backward pass sums, over ranks, the gradients with respect to this rank's slice. With
    DDP averaging parameter gradients, a loss computed from the gathered tensors therefore must
    **not** be multiplied by the world size (environment-notes §5, measured). Per-rank sizes
    may differ (see the module docstring). The identity without a process group.

    Args:
        x: ``(n_r, ...)`` tensor on this rank.

    Returns:
        ``(sum_r n_r, ...)`` tensor, rank 0's rows first.
    """
    return all_gather_with_sizes(x)[0]


def gather_sizes(n: int) -> list[int]:
    """Every rank's value of ``n`` (e.g. its local batch size), in rank order."""
    if not is_distributed():
        return [n]
    local = torch.tensor([n], dtype=torch.int64, device=_collective_device())
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local)
    return [int(p.item()) for p in parts]


@torch.no_grad()
def gather_tensors_for_eval(x: torch.Tensor) -> torch.Tensor:
    """Concatenate evaluation outputs of every rank along dim 0 (no gradient).

    Each rank's rows appear exactly once, whatever the per-rank sizes; bool tensors are
    supported. Combine with :func:`drop_duplicate_indices` to undo a sampler's padding.

    Args:
        x: ``(n_r, ...)`` predictions (or labels, indices) of this rank.

    Returns:
        ``(sum_r n_r, ...)`` tensor on ``x``'s device, rank 0's rows first.
    """
    if not is_distributed():
        return x
    is_bool = x.dtype == torch.bool
    payload = x.to(torch.uint8) if is_bool else x
    payload = payload.to(_collective_device())
    gathered = _gather_padded(payload, _gather_shapes(payload), with_grad=False).to(x.device)
    return gathered.bool() if is_bool else gathered


def drop_duplicate_indices(index: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Keep one row per sample index, sorted by index (undoes ``DistributedSampler`` padding).

    Args:
        index: ``(N,)`` integer dataset index of each row.
        tensors: ``(N, ...)`` tensors aligned with ``index``.

    Returns:
        ``(unique_index, *tensors)`` restricted to the first row of each index, in index order.
    """
    if index.dim() != 1 or index.dtype.is_floating_point or index.dtype == torch.bool:
        raise ValueError(f"index must be a 1-D integer tensor, got dtype {index.dtype} and shape {tuple(index.shape)}")
    for t in tensors:
        if t.shape[0] != index.shape[0]:
            raise ValueError(f"tensor with {t.shape[0]} rows does not match {index.shape[0]} indices")
    order = torch.argsort(index, stable=True)
    sorted_index = index[order]
    first = torch.ones_like(sorted_index, dtype=torch.bool)
    first[1:] = sorted_index[1:] != sorted_index[:-1]
    keep = order[first]
    return (index[keep], *(t[keep.to(t.device)] for t in tensors))


def gather_predictions(index: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Gather per-rank evaluation outputs and keep every dataset sample exactly once.

    Args:
        index: ``(n_r,)`` dataset index of each local row.
        tensors: ``(n_r, ...)`` local predictions/labels aligned with ``index``.

    Returns:
        ``(index, *tensors)`` over the whole dataset, one row per index, sorted by index, on
        every rank.
    """
    gathered_index = gather_tensors_for_eval(index)
    gathered = [gather_tensors_for_eval(t) for t in tensors]
    return drop_duplicate_indices(gathered_index, *gathered)
