"""Write the benchmark inputs: GPT-2-small checkpoint (.pt, .safetensors) and a ~2 GB bf16 shard set."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from gpt2_small import GPT2Small


def main(work: Path) -> None:
    from huggingface_hub import save_torch_state_dict
    from safetensors.torch import save_model

    torch.manual_seed(0)
    model = GPT2Small()
    torch.save(model.state_dict(), work / "gpt2.pt")
    save_model(model, str(work / "gpt2.safetensors"))
    # ~1.07e9 bfloat16 elements = 2 GB, written by the same tool Hugging Face uses, in 500 MB shards.
    state = {f"layers.{i}.weight": torch.randn(8192, 8192, dtype=torch.bfloat16) for i in range(16)}
    folder = work / "sharded"
    folder.mkdir(exist_ok=True)
    save_torch_state_dict(state, folder, max_shard_size="500MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
