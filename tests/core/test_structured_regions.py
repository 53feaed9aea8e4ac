"""Issue 13 in core: several regions at once, attention heads as regions, and a small block
pasted into every input channel of a kernel."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import paramedit
from paramedit.core.editing.regions import parse_regions
from paramedit.core.errors import EditError, RegionError, ValueValidationError


def test_several_regions_are_parsed_and_a_bad_one_is_named():
    regions = parse_regions("[:, 128:192]; [:, 384:448] ;[:, 640:704]", (256, 768))
    assert [r.shape for r in regions] == [(256, 64)] * 3
    with pytest.raises(RegionError, match=r"region 2 of 2 \(\[300, :\]\)"):
        parse_regions("[:, 0:4]; [300, :]", (256, 768))


def gpt2(n_layer=4):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=n_layer, n_embd=256, n_head=4,
                                                                vocab_size=100, n_positions=32))


def test_a_gpt2_head_is_three_column_blocks_and_fills_in_one_commit():
    """The issue's example: head 2 of layer 1's c_attn (256 x 768) is columns 128, 384 and 640."""
    s = paramedit.open_session(gpt2())
    name = "transformer.h.1.attn.c_attn.weight"
    layout = s.head_layout(name)
    assert (layout.dim, layout.parts, layout.heads, layout.head_dim) == (1, ("q", "k", "v"), (4, 4, 4), 64)
    regions = layout.regions(2)
    assert regions == ["[:, 128:192]", "[:, 384:448]", "[:, 640:704]"]
    param = s.tensor(name)
    s.stage_regions(name, "; ".join(regions), 0.0)
    s.commit()
    assert len(s.history.records) == 1 and len(s.edits()) == 3
    w = param.detach()
    for cols in (slice(128, 192), slice(384, 448), slice(640, 704)):
        assert torch.count_nonzero(w[:, cols]) == 0
    assert torch.count_nonzero(w[:, 192:384]) == w[:, 192:384].numel()
    view = layout.view(param.detach())
    assert view.shape == (256, 3, 4, 64) and view.data_ptr() == param.data_ptr()  # the same storage
    out = s.head_layout("transformer.h.1.attn.c_proj.weight")  # Conv1D: heads on the input dim (0)
    assert out.dim == 0 and out.regions(2) == ["[128:192, :]"]


def test_llama_grouped_query_heads():
    transformers = pytest.importorskip("transformers")
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=50, max_position_embeddings=32))
    s = paramedit.open_session(model)
    k = s.head_layout("model.layers.0.self_attn.k_proj.weight")
    assert (k.dim, k.heads, k.head_dim) == (0, (2,), 8) and k.regions(1) == ["[8:16, :]"]
    o = s.head_layout("model.layers.0.self_attn.o_proj.weight")
    assert o.dim == 1 and o.regions(3) == ["[:, 24:32]"]
    with pytest.raises(EditError, match="2 k head"):
        k.regions(2)


def test_pytorch_multihead_attention_and_a_typed_count():
    s = paramedit.open_session(nn.TransformerEncoderLayer(d_model=16, nhead=4, batch_first=True))
    layout = s.head_layout("self_attn.in_proj_weight")
    assert layout.regions(1, "k") == ["[20:24, :]"]
    assert s.head_layout("self_attn.out_proj.weight").regions(0) == ["[:, 0:4]"]
    typed = s.head_layout("linear1.weight", heads=4)  # (2048, 16): a typed count on the first dim it divides
    assert typed.head_dim == 2048 // 4 and typed.regions(0) == ["[0:512, :]"]
    with pytest.raises(EditError, match=r"no dimension of linear1.weight \(2048 x 16\) splits into 3 heads"):
        s.head_layout("linear1.weight", heads=3)


def test_a_3x3_kernel_pasted_into_every_input_channel_of_an_output_channel():
    s = paramedit.open_session(nn.Conv2d(3, 8, 3))
    sobel = torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])
    s.stage("weight", "[2, :, :, :]", sobel)  # one paste, broadcast over the 3 input channels
    s.commit()
    w = s.tensor("weight").detach()
    assert all(torch.equal(w[2, c], sobel) for c in range(3))
    with pytest.raises(ValueValidationError, match="expected values of shape"):
        s.stage("weight", "[2, :, :, :]", torch.ones(3, 3, 2))  # fits no way
    with pytest.raises(ValueValidationError):
        s.stage("weight", "[2, 0, :, :]", torch.ones(1, 3))  # a row over a block: refused, not repeated
