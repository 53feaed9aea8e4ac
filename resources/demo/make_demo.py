"""Rebuild ``demo.safetensors``: ``python resources/demo/make_demo.py`` (a few seconds on a CPU)."""

from pathlib import Path

import torch
from demo_model import CONTEXT, VOCAB, DemoNet
from safetensors.torch import save_model


def main() -> None:
    torch.manual_seed(0)
    model = DemoNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(400):
        start = torch.randint(0, VOCAB, (32, 1))
        seq = (start + torch.arange(CONTEXT + 1)) % VOCAB  # counting: next token is +1
        logits = model(seq[:, :-1])
        loss = nn_loss(logits, seq[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.steps_trained += 1
    print(f"final loss {loss.item():.4f}")
    save_model(model, str(Path(__file__).with_name("demo.safetensors")), metadata={"format": "pt"})


def nn_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


if __name__ == "__main__":
    main()
