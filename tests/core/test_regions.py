"""Regions: index strings select exactly what NumPy selects, always as a view."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paramedit.core.editing.regions import MAX_REGION_TEXT, Region, format_region, parse_region
from paramedit.core.errors import ParameditError, RegionError

# (text, tensor shape, the NumPy index it means)
SELECTIONS = [
    ("[...]", (5, 4), (Ellipsis,)),
    ("...", (5, 4), (Ellipsis,)),
    ("", (5, 4), ()),
    ("[]", (5, 4), ()),
    ("[:]", (5, 4), (slice(None),)),
    ("[:, :]", (5, 4), (slice(None), slice(None))),
    ("[0, :]", (5, 4), (0, slice(None))),
    ("[0]", (5, 4), (0,)),
    ("[2:5, 1]", (6, 4), (slice(2, 5), 1)),
    ("[:, ::2]", (5, 4), (slice(None), slice(None, None, 2))),
    ("[-1]", (5, 4), (-1,)),
    ("[-1, -4]", (5, 4), (-1, -4)),
    ("[:, -3:]", (5, 10), (slice(None), slice(-3, None))),
    ("[1, ..., 2]", (3, 4, 5), (1, Ellipsis, 2)),
    ("[..., 0]", (3, 4, 5), (Ellipsis, 0)),
    ("[0, ...]", (3, 4, 5), (0, Ellipsis)),
    ("[1, 2, 3, ...]", (3, 4, 5), (1, 2, 3, Ellipsis)),
    ("0, :", (3, 4), (0, slice(None))),
    ("  [ 1 :  3 ,\t: ]  ", (4, 4), (slice(1, 3), slice(None))),
    ("[1:100]", (5,), (slice(1, 100),)),
    ("[-100:2]", (5,), (slice(-100, 2),)),
    ("[5:2]", (6,), (slice(5, 2),)),
    ("[7:9]", (6,), (slice(7, 9),)),
    ("[::3]", (7,), (slice(None, None, 3),)),
    ("[1::2, 2::5]", (6, 6), (slice(1, None, 2), slice(2, None, 5))),
    ("[0,]", (3, 4), (0,)),
    ("[(1, 2)]", (3, 4), (1, 2)),  # NumPy reads a parenthesised tuple as the index tuple
    ("[+1, -(2)]", (3, 4), (1, -2)),
    ("[:, :, 1:2, 0]", (2, 3, 4, 5), (slice(None), slice(None), slice(1, 2), 0)),
    ("[...]", (0, 3), (Ellipsis,)),
    ("[:, 1]", (0, 3), (slice(None), 1)),
]


@pytest.mark.parametrize(("text", "shape", "np_index"), SELECTIONS)
def test_region_selects_what_numpy_selects(text, shape, np_index):
    region = parse_region(text, shape)
    reference = np.arange(math.prod(shape)).reshape(shape)[np_index]
    selected = torch.arange(math.prod(shape)).reshape(shape)[region.index].numpy()
    assert region.shape == reference.shape
    np.testing.assert_array_equal(selected, reference)
    np.testing.assert_array_equal(region.flat_positions().numpy(), reference)
    assert region.numel == reference.size
    assert region.tensor_shape == shape


@pytest.mark.parametrize(("text", "shape", "np_index"), SELECTIONS)
def test_index_is_normalised_to_one_view_entry_per_dimension(text, shape, np_index):
    region = parse_region(text, shape)
    assert len(region.index) == len(shape)
    for part in region.index:
        if isinstance(part, slice):
            assert part.start >= 0 and part.stop >= 0 and part.step >= 1
        else:
            assert type(part) is int and part >= 0


@pytest.mark.parametrize(("text", "shape"), [("[0, :]", (3, 4)), ("[:, ::2]", (5, 4)), ("[1, ..., 2]", (3, 4, 5))])
def test_region_is_a_view_that_copy_writes_in_place(text, shape):
    tensor = torch.zeros(shape)
    region = parse_region(text, shape)
    view = tensor[region.index]
    assert view.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr()
    view.copy_(torch.ones(region.shape))
    assert int(tensor.sum()) == region.numel
    flat = tensor.reshape(-1)
    assert bool((flat[region.flat_positions().reshape(-1)] == 1).all())


@pytest.mark.parametrize("text", ["[...]", "[]", "", "...", "  [ ... ] "])
def test_zero_dim_tensor_whole(text):
    tensor = torch.tensor(3.0)
    region = parse_region(text, ())
    assert region.shape == () and region.index == () and region.text == "[...]"
    tensor[region.index].copy_(torch.tensor(7.0))
    assert tensor.item() == 7.0
    assert region.flat_positions().shape == () and region.flat_positions().item() == 0


def test_flat_positions_cost_the_region_not_the_tensor():
    # 10**12 elements could never be materialised; the region's 4 positions can.
    region = parse_region("[5, 3:7]", (10**6, 10**6))
    assert region.flat_positions().tolist() == [5 * 10**6 + j for j in range(3, 7)]
    assert region.flat_positions().dtype == torch.int64


@pytest.mark.parametrize(
    ("text", "shape", "canonical"),
    [
        ("[0:3, :]", (5, 4), "[0:3, :]"),
        ("[:3, 0:4]", (5, 4), "[0:3, :]"),
        ("[...]", (5, 4), "[...]"),
        ("[:]", (5, 4), "[...]"),
        ("[:, ::2]", (5, 4), "[:, ::2]"),
        ("[-1]", (5, 4), "[4, :]"),
        ("[:, -3:]", (5, 10), "[:, 7:]"),
        ("[1, ..., 2]", (3, 4, 5), "[1, :, 2]"),
        ("[1:6:2]", (6,), "[1::2]"),
        ("[1:4:2]", (6,), "[1:4:2]"),
        ("[1:5:2]", (7,), "[1:4:2]"),
        ("[5:2]", (6,), "[5:5]"),
        ("[0:6:2]", (5,), "[::2]"),
    ],
)
def test_canonical_text(text, shape, canonical):
    region = parse_region(text, shape)
    assert region.text == canonical
    again = parse_region(canonical, shape)
    assert again == region
    assert hash(again) == hash(region)


def test_equal_selections_give_equal_regions():
    assert parse_region("[1:4:2]", (6,)) == parse_region("[1:5:2]", (6,))
    assert parse_region("[0, :]", (3, 4)) == parse_region("0", (3, 4))
    assert parse_region("[0, :]", (3, 4)) != parse_region("[0, :]", (3, 5))


def test_region_is_frozen():
    region = parse_region("[0]", (3,))
    with pytest.raises(AttributeError):
        region.text = "[1]"  # type: ignore[misc]
    assert isinstance(region, Region)


@pytest.mark.parametrize(
    ("index", "text"),
    [
        ((0, slice(None)), "[0, :]"),
        ((slice(2, 5), 1), "[2:5, 1]"),
        ((slice(None), slice(None, None, 2)), "[:, ::2]"),
        ((-1,), "[-1]"),
        ((1, Ellipsis, 2), "[1, ..., 2]"),
        ((), "[...]"),
        ((Ellipsis,), "[...]"),
        (3, "[3]"),
        ((np.int64(2), slice(np.int32(1), None)), "[2, 1:]"),
    ],
)
def test_format_region_without_shape(index, text):
    assert format_region(index) == text


def test_format_region_with_shape_and_roundtrip():
    index = (slice(0, 5), slice(1, 4, 2))
    text = format_region(index, shape=(5, 4))
    assert text == "[:, 1::2]"
    assert parse_region(text, (5, 4)).index == parse_region("[0:5, 1:4:2]", (5, 4)).index


@pytest.mark.parametrize(
    "index", [(1.5,), (None,), (True,), ([0, 1],), (slice(None, None, 0),), (slice(None, None, -1),), (Ellipsis, Ellipsis), (slice(0.5, 2),)]
)
def test_format_region_rejects_non_basic_indices(index):
    with pytest.raises(RegionError):
        format_region(index)


REJECTIONS = [
    ("[7]", (5,), "index 7 is out of range for dim 0 of size 5"),
    ("[-6]", (5,), "index -6 is out of range for dim 0 of size 5"),
    ("[0, 4]", (5, 4), "index 4 is out of range for dim 1 of size 4"),
    ("[0]", (0,), "out of range for dim 0 of size 0"),
    ("[::0]", (5,), "step must be at least 1"),
    ("[::-1]", (5,), "step must be at least 1"),
    ("[0, 0]", (5,), "too many indices"),
    ("[0, ..., 0]", (5,), "too many indices"),
    ("[:]", (), "too many indices"),
    ("[..., ...]", (5, 4), "one ellipsis"),
    ("[1.5]", (5,), "not an integer"),
    ("[0:2.0]", (5,), "not an integer"),
    ("[a]", (5,), "names"),
    ("[x.data]", (5,), "only integers, slices"),
    ("[[0, 1]]", (5,), "advanced indexing"),
    ("[(0, 1), 1]", (5, 5), "advanced indexing"),
    ("[None]", (5,), "newaxis"),
    ("[True]", (5,), "boolean"),
    ("['a']", (5,), "not an index"),
    ("[%%]", (5,), "not a valid index"),
    ("[0", (5,), "unbalanced"),
    ("0]", (5,), "unbalanced"),
    ("[0][1]", (5, 5), "unbalanced"),
    ("[0]]", (5,), "not a valid index"),
    ("[1:2:3:4]", (5,), "not a valid index"),
    ("[99999999999999999999999]", (5,), "too large"),
    ("[:99999999999999999999999]", (5,), "too large"),
    ("[f(1)]", (5,), "only integers"),
    ("[1+1]", (5,), "only integers"),
    ("[__import__('os')]", (5,), "only integers"),
    ("[0]" + " " * MAX_REGION_TEXT, (5,), "longer than"),
]


@pytest.mark.parametrize(("text", "shape", "fragment"), REJECTIONS)
def test_rejections_name_text_shape_and_reason(text, shape, fragment):
    with pytest.raises(RegionError) as info:
        parse_region(text, shape)
    message = str(info.value)
    assert fragment in message
    assert f"shape ({', '.join(map(str, shape))}{',' if len(shape) == 1 else ''})" in message
    assert repr(text[:20])[:-1] in message  # the start of the text is quoted


def test_rejection_is_a_parameditor_error_and_never_evaluates():
    with pytest.raises(ParameditError):
        parse_region("[__import__('os').system('false')]", (5,))


def test_non_text_and_bad_shapes_are_region_errors():
    with pytest.raises(RegionError):
        parse_region(3, (5,))  # type: ignore[arg-type]
    with pytest.raises(RegionError):
        parse_region("[0]", (-1,))
    with pytest.raises(RegionError):
        parse_region("[0]", (2.5,))  # type: ignore[arg-type]


def test_torch_size_is_accepted_as_shape():
    tensor = torch.zeros(3, 4)
    region = parse_region("[1]", tensor.shape)
    assert region.tensor_shape == (3, 4) and region.shape == (4,)
