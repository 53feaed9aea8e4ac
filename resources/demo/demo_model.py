"""The bundled demo: a tiny next-token model, trained for a few seconds on counting mod 64.

It has what a real language model has, small enough to see whole: a token embedding tied to
the output layer, a frozen positional table, a causal 1-D convolution (a 3-D weight), an MLP
block, LayerNorm, and an int64 buffer.
"""

import torch
from torch import nn

VOCAB = 64
WIDTH = 16
CONTEXT = 12


class DemoNet(nn.Module):
    def __init__(self, vocab: int = VOCAB, width: int = WIDTH, context: int = CONTEXT) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.randn(context, width) * 0.02, requires_grad=False)
        self.mix = nn.Conv1d(width, width, kernel_size=3, padding=2)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied, as in GPT-2
        self.register_buffer("steps_trained", torch.zeros((), dtype=torch.int64))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.position[: tokens.shape[1]]
        mixed = self.mix(h.transpose(1, 2))[..., : tokens.shape[1]]  # causal: drop the look-ahead
        h = h + mixed.transpose(1, 2)
        h = h + self.mlp(h)
        return self.head(self.norm(h))


def example_inputs() -> tuple[torch.Tensor]:
    """Two sequences of token ids, for paramedit's backward check."""
    generator = torch.Generator().manual_seed(0)
    return (torch.randint(0, VOCAB, (2, CONTEXT), generator=generator),)
