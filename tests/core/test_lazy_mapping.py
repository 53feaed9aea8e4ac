"""Safetensors files open as lazily mapped, copy-on-write tensors (issue 4, "Scale and speed").

Costs are asserted in machine-independent terms: resident memory as a fraction of the file's
size, pages copied by a write, bytes of the file on disk. Memory is read from ``/proc`` (Linux).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import struct
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from safetensors.torch import save as safetensors_save

from paramedit.core.checkpoints.formats import load_checkpoint
from paramedit.core.checkpoints.safetensors_mapping import (
    SAFETENSORS_DTYPES,
    map_safetensors,
    read_safetensors_header,
)
from paramedit.core.checkpoints.saving import save_tensors
from paramedit.core.errors import CheckpointError

linux_only = pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads memory use from /proc")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


def mappings_of(path: Path) -> list[tuple[int, int, str, int]]:
    """(start, end, permissions, anonymous bytes) of each mapping of ``path`` in this process."""
    found: list[tuple[int, int, str, int]] = []
    current: list | None = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            current = [start, end, fields[1], 0] if line.endswith(str(path)) else None
            if current is not None:
                found.append(current)  # type: ignore[arg-type]
        elif current is not None and fields[0] == "Anonymous:":
            current[3] = int(fields[1]) * 1024
    return [tuple(m) for m in found]  # type: ignore[misc]


def inside(ptr: int, maps: list[tuple[int, int, str, int]]) -> bool:
    return any(start <= ptr < end for start, end, _, _ in maps)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def same_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)
    )


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 200 MB: four 50 MB float32 tensors and two small ones."""
    path = tmp_path_factory.mktemp("big") / "big.safetensors"
    tensors = {f"layer{i}.weight": torch.arange(6400 * 2048, dtype=torch.float32).reshape(6400, 2048) + i
               for i in range(4)}  # fmt: skip
    tensors["small.bias"] = torch.arange(7, dtype=torch.float32)
    tensors["small.count"] = torch.tensor(3, dtype=torch.int64)
    save_file(tensors, str(path))
    del tensors
    gc.collect()
    return path


# ---------------------------------------------------------------- values


def library_dtypes() -> dict[str, torch.dtype]:
    """The dtypes both this torch and the installed safetensors can store."""
    supported = {}
    for code, dtype in SAFETENSORS_DTYPES.items():
        try:
            safetensors_save({"x": torch.zeros(1, dtype=dtype)})
        except Exception:
            continue
        supported[code] = dtype
    return supported


def test_every_dtype_matches_the_safetensors_library(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tensors: dict[str, torch.Tensor] = {}
    dtypes = library_dtypes()
    assert {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"} <= set(dtypes)
    for code, dtype in dtypes.items():
        raw = torch.randint(0, 256, (3, 5, 8 * dtype.itemsize), dtype=torch.uint8)
        if dtype == torch.bool:
            raw = raw % 2
        tensors[f"{code}.matrix"] = raw.view(dtype)
        tensors[f"{code}.scalar"] = raw.reshape(-1)[: dtype.itemsize].view(dtype).reshape(()).clone()
        tensors[f"{code}.empty"] = torch.empty(0, 4, dtype=dtype)
    path = tmp_path / "dtypes.safetensors"
    save_file(tensors, str(path), metadata={"note": "all dtypes"})
    reference = load_file(str(path))

    ckpt = load_checkpoint(path)

    assert ckpt.mmapped and ckpt.metadata == {"note": "all dtypes"}
    assert sorted(ckpt.tensors) == sorted(reference)
    for name, expected in reference.items():
        assert same_bytes(ckpt.tensors[name], expected), name


def test_unaligned_tensor_is_copied_with_a_note(tmp_path: Path) -> None:
    # Valid by the format, though safetensors itself never writes it: a float32 at an odd offset.
    header = json.dumps({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [1, 9]}}).encode()  # fmt: skip
    header += b" " * (-len(header) % 8)
    path = tmp_path / "odd.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x07" + struct.pack("<2f", 1.5, -2.0))

    mapped = map_safetensors(path)

    assert mapped.mapped and mapped.tensors["b"].tolist() == [1.5, -2.0] and mapped.tensors["a"].tolist() == [7]
    assert any("not aligned" in n and "b" in n for n in mapped.notes)


# ---------------------------------------------------------------- memory and copy-on-write


@linux_only
def test_opening_a_big_file_maps_it_instead_of_reading_it(big_file: Path) -> None:
    gc.collect()
    before = rss()
    ckpt = load_checkpoint(big_file)
    grew = rss() - before

    size = big_file.stat().st_size
    assert grew < 0.25 * size, f"opening grew RSS by {grew / size:.1%} of the file"
    maps = mappings_of(big_file)
    assert maps and all(perms[3] == "p" for _, _, perms, _ in maps)  # private: copy-on-write
    assert ckpt.mmapped
    for name, t in ckpt.tensors.items():
        assert inside(t.untyped_storage().data_ptr(), maps), name


@linux_only
def test_writing_one_element_copies_a_page_and_never_reaches_the_file(big_file: Path) -> None:
    before_hash = digest(big_file)
    ckpt = load_checkpoint(big_file)
    weight = ckpt.tensors["layer1.weight"]
    float(weight[100, 0])  # warm up the indexing path so its allocations are not counted
    gc.collect()
    before = rss()

    weight[100, 0].fill_(-7.0)
    weight[200].fill_(0.5)  # one row: 8 KiB

    grew = rss() - before
    maps = mappings_of(big_file)
    copied = sum(anon for _, _, _, anon in maps)
    assert copied <= 64 * PAGE, f"{copied} bytes of the mapping were copied for a 8 KiB write"
    assert grew < 8 * 2**20
    assert digest(big_file) == before_hash
    for name, t in ckpt.tensors.items():
        assert inside(t.untyped_storage().data_ptr(), maps), f"{name} is no longer mapped"
    assert float(weight[100, 0]) == -7.0
    assert float(load_checkpoint(big_file).tensors["layer1.weight"][100, 0]) == 100 * 2048 + 1


@linux_only
def test_the_mapping_lives_as_long_as_any_tensor(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"a": torch.ones(1024), "b": torch.arange(1024.0)}, str(path))
    ckpt = load_checkpoint(path)
    kept = ckpt.tensors["b"]
    del ckpt
    gc.collect()
    assert mappings_of(path) and float(kept[10]) == 10.0
    del kept
    gc.collect()
    assert not mappings_of(path)


def test_saving_over_the_mapped_file_replaces_it_and_keeps_the_old_values(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(4, 4), "b": torch.ones(4)}, str(path))
    ckpt = load_checkpoint(path)
    untouched = ckpt.tensors["b"]
    ckpt.tensors["w"][0, 0].fill_(3.0)

    save_tensors(ckpt.tensors, path)

    assert load_file(str(path))["w"][0, 0] == 3.0
    assert torch.equal(untouched, torch.ones(4))  # the old inode stays mapped


# ---------------------------------------------------------------- damaged headers


def write_raw(path: Path, header: bytes, data: bytes = b"", *, length: int | None = None) -> Path:
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data)
    return path


def entry(dtype: str = "F32", shape: list | None = None, offsets: list | None = None) -> dict:
    return {"dtype": dtype, "shape": [2] if shape is None else shape, "data_offsets": offsets or [0, 8]}


@pytest.mark.parametrize(
    ("header", "data", "length", "problem"),
    [
        (b'{"a": 1}', b"", 1000, "points past the end of the file"),
        (b"[1, 2, 3]", b"", None, "not an object"),
        (b'{"a": ' + json.dumps(entry()).encode() + b', "a": ' + json.dumps(entry()).encode() + b"}",
         b"\0" * 8, None, "lists 'a' twice"),
        (json.dumps({"a": entry("F12")}).encode(), b"\0" * 8, None, "dtype 'F12'"),
        (json.dumps({"a": entry(offsets=[0, 16], shape=[4])}).encode(), b"\0" * 8, None, "past its end"),
        (json.dumps({"a": entry(), "b": entry(offsets=[4, 12])}).encode(), b"\0" * 12, None, "overlap"),
        (json.dumps({"a": entry(shape=[3])}).encode(), b"\0" * 8, None, "12 bytes"),
        (json.dumps({"a": entry(shape=[-2])}).encode(), b"\0" * 8, None, "non-negative"),
        (json.dumps({"a": entry(offsets=[8, 0])}).encode(), b"\0" * 8, None, "before the beginning"),
        (json.dumps({"__metadata__": {"n": 1}}).encode(), b"", None, "__metadata__"),
        (b"\xff\xfe{", b"", None, "not valid JSON"),
    ],
    ids=["length-past-eof", "not-a-dict", "duplicate-key", "unknown-dtype", "offsets-past-end", "overlapping",
         "size-mismatch", "negative-shape", "reversed-offsets", "bad-metadata", "not-utf8"],
)  # fmt: skip
def test_damaged_headers_are_checkpoint_errors(
    tmp_path: Path, header: bytes, data: bytes, length: int | None, problem: str
) -> None:
    path = write_raw(tmp_path / "bad.safetensors", header, data, length=length)
    with pytest.raises(CheckpointError, match=r"bad\.safetensors") as error:
        read_safetensors_header(path)
    assert problem in str(error.value)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_file_shorter_than_its_length_field_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(b"\x02\x00")
    with pytest.raises(CheckpointError, match="only 2 bytes"):
        read_safetensors_header(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), max_size=4))
def test_any_damage_is_a_checkpoint_error_or_a_readable_file(tmp_path: Path, cut: int, flips: list) -> None:
    """Truncated or bit-flipped files never crash the reader or map bytes past the end."""
    good = tmp_path / "good.safetensors"
    if not good.exists():
        save_file({"w": torch.arange(12.0).reshape(3, 4), "i": torch.arange(5), "h": torch.ones(2, dtype=torch.float16)},
                  str(good), metadata={"k": "v"})  # fmt: skip
    raw = bytearray(good.read_bytes())
    for position, value in flips:
        raw[position % len(raw)] = value
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(bytes(raw[: max(cut, 1)] if cut < len(raw) else raw))
    try:
        mapped = map_safetensors(path)
    except CheckpointError:
        return
    for t in mapped.tensors.values():
        t.clone()  # every byte of every tensor lies inside the file
