"""Baseline programs the benchmark compares paramedit against (run as separate processes)."""

import json
import sys
import time
from pathlib import Path


def load_like_torch(ckpt: str, with_qt: bool = False) -> None:
    """Import torch, build the model on meta, load the state dict with assign=True."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from gpt2_small import GPT2Small

    if with_qt:
        import pyqtgraph  # noqa: F401
        import PySide6.QtWidgets  # noqa: F401
    with torch.device("meta"):
        model = GPT2Small()
    if ckpt.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(ckpt, framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    else:
        state = torch.load(ckpt, mmap=True, weights_only=True)
    model.load_state_dict(state, assign=True, strict=False)
    model.lm_head.weight = model.wte.weight


def read_shard_headers(folder: str) -> None:
    """Read every safetensors header of a sharded set (what listing its tensors needs at least)."""
    names = []
    for shard in sorted(Path(folder).glob("*.safetensors")):
        with open(shard, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            names += [k for k in json.loads(f.read(n)) if k != "__metadata__"]
    print(len(names))


if __name__ == "__main__":
    start = time.perf_counter()
    kind, arg = sys.argv[1], sys.argv[2]
    if kind == "load":
        load_like_torch(arg)
    elif kind == "load_qt":
        load_like_torch(arg, with_qt=True)
    elif kind == "headers":
        read_shard_headers(arg)
