"""Training on several devices and nodes: Lightning's data-parallel strategies, and which process writes.

A model's training config names a ``strategy`` (``auto``, ``ddp`` or ``ddp_spawn``),
``devices`` per node and ``num_nodes``; the defaults (one device, one node) train in
the calling process as before. With more than one device the Trainer runs one process
per device (the *ranks*); each rank trains on its own share of the batches (Lightning
gives a map-style training set a ``DistributedSampler``) and the gradients are averaged
across ranks after every step, so the ranks keep the same weights.

Who writes: only global rank 0 saves a model or writes to the catalog.

- ``ddp`` starts the other ranks of a node by running the same command again (with
  ``LOCAL_RANK`` set); on several nodes the command is started once per node with
  ``NODE_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. :func:`is_global_zero` reads
  those variables, so a job can tell before and after training whether it is the writer.
- ``ddp_spawn`` starts the ranks from inside the training call and hands rank 0's
  weights and logged metrics back to the calling process, which then saves: the workers
  write nothing of their own.

Metrics a model logs for the epoch are averaged across ranks (``sync_dist=True``), so
every rank reads the same value and any decision taken on one (stopping on time or on a
metric) is the same everywhere.
"""

from __future__ import annotations

import os
from typing import Any

STRATEGIES = ("auto", "ddp", "ddp_spawn")

# Environment variables that carry a process's rank under Lightning's ``ddp`` launcher,
# torchrun and SLURM; all unset or 0 in the process that writes.
_RANK_VARIABLES = ("RANK", "NODE_RANK", "LOCAL_RANK", "SLURM_PROCID")

# What rank 0 of a ``ddp_spawn`` run hands back to the calling process: the callback
# metrics travel, callbacks' own attributes do not.
EPOCH_LOSSES = "epoch_losses"


def check_distribution(strategy: str, devices: int, num_nodes: int) -> None:
    """A ``ValueError`` naming the first option out of range."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if devices < 1:
        raise ValueError(f"devices must be at least 1, got {devices}")
    if num_nodes < 1:
        raise ValueError(f"num_nodes must be at least 1, got {num_nodes}")


def trainer_options(strategy: str, devices: int, num_nodes: int) -> dict[str, Any]:
    """The Trainer's arguments for a run on ``devices`` × ``num_nodes`` processes."""
    check_distribution(strategy, devices, num_nodes)
    return {"strategy": strategy, "devices": devices, "num_nodes": num_nodes}


def distribution_record(strategy: str, devices: int, num_nodes: int) -> dict[str, Any]:
    """What a model version records of how it was trained."""
    return {
        "strategy": strategy,
        "devices": devices,
        "num_nodes": num_nodes,
        "world_size": devices * num_nodes,
    }


def is_global_zero() -> bool:
    """Whether this process is global rank 0 (or the only process): the one that saves and records."""
    for name in _RANK_VARIABLES:
        value = os.environ.get(name, "0").strip() or "0"
        try:
            if int(value) != 0:
                return False
        except ValueError:
            continue
    return True
