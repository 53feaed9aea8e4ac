"""Issue 5, "no code from data": refuse pickles on a torch whose safe loader is known bypassable.

CVE-2025-32434 (GHSA-53q9-r3pm-6pq6): torch < 2.6.0 runs code from a crafted file even with
``weights_only=True``. CVE-2026-24747 (GHSA-63cw-57p8-fm3p, fixed in 2.10.0): memory corruption
in the weights-only unpickler, including storages smaller than they claim, which
:func:`verify_zip_storage_records` checks for itself.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from paramedit.core.checkpoints.torch_safety import (
    parse_torch_version,
    require_safe_torch_for_pickles,
    verify_zip_storage_records,
    weights_only_is_safe,
)
from paramedit.core.errors import CheckpointError, UntrustedCheckpointError


@pytest.mark.parametrize(
    ("version", "parsed"),
    [
        ("2.13.0+cpu", ((2, 13, 0), False)),
        ("2.6.0", ((2, 6, 0), False)),
        ("2.6", ((2, 6, 0), False)),
        ("2.6.0a0+ecf3bae40a", ((2, 6, 0), True)),
        ("2.6.0.dev20241112+cu124", ((2, 6, 0), True)),
        ("2.6.0rc1", ((2, 6, 0), True)),
        ("1.13.1", ((1, 13, 1), False)),
        ("nightly", None),
        ("", None),
    ],
)
def test_parse_torch_version(version, parsed) -> None:
    assert parse_torch_version(version) == parsed


@pytest.mark.parametrize("version", ["2.5.1", "2.5.1+cu121", "2.4.0", "1.13.1", "2.6.0a0+git1234", "2.6.0rc3",
                                     "2.6.0.dev20241201", "garbage"])  # fmt: skip
def test_torch_before_2_6_is_refused_for_pickles(monkeypatch, version) -> None:
    monkeypatch.setattr(torch, "__version__", version)
    safe, reason = weights_only_is_safe()
    assert not safe
    assert "CVE-2025-32434" in reason
    with pytest.raises(UntrustedCheckpointError) as info:
        require_safe_torch_for_pickles(Path("/data/model.pt"))
    err = info.value
    assert isinstance(err, CheckpointError) and err.globals == []
    assert "/data/model.pt" in err.message and "CVE-2025-32434" in err.message
    assert "--trust" in err.message and "Safetensors files are not affected" in err.message


def test_trusting_the_file_loads_it_anyway_and_says_so(monkeypatch) -> None:
    monkeypatch.setattr(torch, "__version__", "2.5.1")
    note = require_safe_torch_for_pickles("m.pt", trusted=True)
    assert note is not None and "CVE-2025-32434" in note and "trusted" in note


@pytest.mark.parametrize("version", ["2.6.0", "2.7.1+cu126", "2.9.1"])
def test_torch_2_6_to_2_9_loads_with_a_loud_warning(monkeypatch, version) -> None:
    monkeypatch.setattr(torch, "__version__", version)
    safe, warning = weights_only_is_safe()
    assert safe and "CVE-2026-24747" in warning and "2.10.0" in warning
    assert require_safe_torch_for_pickles("m.pt") == warning


@pytest.mark.parametrize("version", ["2.10.0", "2.13.0+cpu", "3.0.0"])
def test_current_torch_is_trusted_silently(monkeypatch, version) -> None:
    monkeypatch.setattr(torch, "__version__", version)
    assert weights_only_is_safe() == (True, "")
    assert require_safe_torch_for_pickles("m.pt") is None


def test_the_installed_torch_is_judged_by_its_version() -> None:
    safe, _ = weights_only_is_safe()
    assert safe == (parse_torch_version(torch.__version__)[0] >= (2, 6, 0))  # type: ignore[index]


# ---------------------------------------------------------------- storage records


def _rewrite(src: bytes, dst: Path, change) -> Path:
    with zipfile.ZipFile(io.BytesIO(src)) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data, compress = change(info.filename, zin.read(info.filename))
            zout.writestr(info.filename, data, compress_type=compress)
    return dst


@pytest.mark.parametrize("protocol", [2, 4])
def test_honest_files_pass(tmp_path, protocol) -> None:
    state = {"a": torch.ones(3, 4), "b": torch.arange(5), "c": torch.ones(2, dtype=torch.bfloat16),
             "d": torch.tensor([True]), "nested": {"e": [torch.zeros(2, dtype=torch.float16)]},
             "u": torch.UntypedStorage(7), "empty": torch.ones(0)}  # fmt: skip
    path = tmp_path / "ok.pt"
    torch.save(state, path, pickle_protocol=protocol)
    assert verify_zip_storage_records(path) is True


def test_a_short_storage_record_is_damage_not_weights(tmp_path) -> None:
    """torch's mmap loader would read the bytes after the record (the zip directory) as weights."""
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buffer)
    path = _rewrite(buffer.getvalue(), tmp_path / "short.pt",
                    lambda name, data: (data[:4] if "/data/" in name and name[-1].isdigit() else data,
                                        zipfile.ZIP_STORED))  # fmt: skip
    mapped = torch.load(path, weights_only=True, mmap=True)["w"]  # the torch behaviour guarded against
    assert mapped.shape == (3,)
    with pytest.raises(CheckpointError, match=r"storage data/0 should hold 12 bytes .* only 4"):
        verify_zip_storage_records(path)


def test_a_missing_storage_record_is_damage(tmp_path) -> None:
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as zin, zipfile.ZipFile(tmp_path / "m.pt", "w") as zout:
        for name in zin.namelist():
            if not name.endswith("/data/0"):
                zout.writestr(name, zin.read(name))
    with pytest.raises(CheckpointError, match="data/0 that is not in the archive"):
        verify_zip_storage_records(tmp_path / "m.pt")


def test_a_storage_that_claims_more_elements_than_it_has(tmp_path) -> None:
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buffer)

    def inflate(name: str, data: bytes):
        if name.endswith("data.pkl"):  # numel 3 (BININT1) -> 1000 (BININT)
            data = data.replace(b"cpuq\x06K\x03t", b"cpuq\x06J" + struct.pack("<i", 1000) + b"t")
        return data, zipfile.ZIP_STORED

    path = _rewrite(buffer.getvalue(), tmp_path / "inflated.pt", inflate)
    with pytest.raises(CheckpointError, match="should hold 4000 bytes"):
        verify_zip_storage_records(path)


def test_a_recompressed_archive_is_reported_as_not_mappable(tmp_path) -> None:
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(1000.0)}, buffer)
    path = _rewrite(buffer.getvalue(), tmp_path / "deflated.pt", lambda n, d: (d, zipfile.ZIP_DEFLATED))
    assert verify_zip_storage_records(path) is False
    assert torch.equal(torch.load(path, weights_only=True, mmap=False)["w"], torch.arange(1000.0))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"not a zip at all"])
def test_unreadable_archives_are_left_to_the_loader(tmp_path, content) -> None:
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    assert verify_zip_storage_records(path) is True  # claims nothing; the loader's own error says more
