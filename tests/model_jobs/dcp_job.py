"""A two-process training job's checkpointing, for tests: run it with torchrun (gloo, CPU).

    torchrun --nproc-per-node 2 dcp_job.py save FOLDER   # DTensor shards of a small model, plus a step
    torchrun --nproc-per-node 2 dcp_job.py load FOLDER OUT.pt   # resume: load sharded, gather on rank 0

The weights are the same on every run (seeded), so a test knows what it saved.
"""

from __future__ import annotations

import sys
import warnings

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Shard, distribute_tensor

warnings.simplefilter("ignore")


def full_weights() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"layer.weight": torch.randn(8, 6, generator=g), "layer.bias": torch.randn(8, generator=g),
            "head.weight": torch.randn(4, 8, generator=g)}


def main() -> None:
    mode, folder = sys.argv[1], sys.argv[2]
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    if mode == "save":
        model = {k: distribute_tensor(v, mesh, [Shard(0)]) for k, v in full_weights().items()}
        dcp.save({"model": model, "step": 7}, checkpoint_id=folder)
    else:
        model = {k: distribute_tensor(torch.zeros_like(v), mesh, [Shard(0)]) for k, v in full_weights().items()}
        state = {"model": model, "step": 0}
        dcp.load(state, checkpoint_id=folder)
        gathered = {k: v.full_tensor() for k, v in model.items()}
        if dist.get_rank() == 0:
            torch.save({"model": gathered, "step": state["step"]}, sys.argv[3])
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
