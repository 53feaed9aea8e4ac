"""Issue 5, "files are never lost": kill a real saving process, fill the disk, deny permission.

The kill tests drive ``save_child.py``: a process that saves 32 MiB through
``paramedit.core.checkpoints.saving`` over an existing good file and is killed with SIGKILL at each phase
of the save (and after several delays with the real writers). After every kill the target loads
with its old content (or the complete new one, once the rename happened), and the next start's
:func:`clean_stale_temp_files` leaves the folder holding exactly the target.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import paramedit
from paramedit.core.checkpoints.formats import load_checkpoint
from paramedit.core.checkpoints.saving import (
    atomic_write,
    clean_stale_temp_files,
    save_tensors,
    stale_temp_files,
)
from paramedit.core.errors import SaveError

from .save_child import make_state

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
OLD, NEW = 1, 2
FORMATS = [".pt", ".safetensors"]
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the saving child forks (POSIX only)")


class Saver:
    """The long-lived child that forks one saving process per job."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, str(HERE / "save_child.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)  # fmt: skip
        assert self._line(60) == "ready"

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line:
                return line.strip()
            if self.proc.poll() is not None:
                raise AssertionError("the saving child died")
        raise AssertionError("the saving child did not answer")

    def start(self, target: Path, phase: str, marker: Path, seed: int = NEW) -> int:
        assert self.proc.stdin is not None
        job = {"target": str(target), "phase": phase, "marker": str(marker), "seed": seed}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        word, pid = self._line(30).split()
        assert word == "pid"
        return int(pid)

    def kill(self, pid: int) -> int:
        """SIGKILL the saving process (if it still runs); its raw wait status."""
        return self.finish(pid, "kill")

    def finish(self, pid: int, command: str = "wait") -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        word, ended, status = self._line(60).split()
        assert (word, int(ended)) == ("exit", pid)
        return int(status)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def saver() -> Iterator[Saver]:
    s = Saver()
    yield s
    s.close()


def wait_for(marker: Path, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and (text := marker.read_text()):
            return text
        time.sleep(0.002)
    raise AssertionError(f"the saving process never reached {marker.name}")


def content_seed(path: Path) -> int:
    """Which complete state the file holds (OLD or NEW); fails on anything else."""
    tensors = load_checkpoint(path).tensors
    for seed in (OLD, NEW):
        expected = make_state(seed)
        if set(tensors) == set(expected) and all(torch.equal(tensors[k], v) for k, v in expected.items()):
            return seed
    raise AssertionError(f"{path.name} holds neither the old nor the new content")


def good_old_file(folder: Path, suffix: str) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / f"model{suffix}"
    save_tensors(make_state(OLD), target)
    os.chmod(target, 0o640)
    return target


def after_the_next_start(folder: Path, target: Path) -> None:
    clean_stale_temp_files(folder)
    assert sorted(p.name for p in folder.iterdir()) == [target.name], "only the target is left"


# ---------------------------------------------------------------- killed with SIGKILL


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize(
    ("phase", "expected"),
    [("before_write", OLD), ("mid_write", OLD), ("before_replace", OLD), ("after_replace", NEW)],
)
def test_killed_at_each_phase_the_file_is_old_or_complete_new(saver, tmp_path, suffix, phase, expected) -> None:
    target = good_old_file(tmp_path / "out", suffix)
    marker = tmp_path / "marker"
    pid = saver.start(target, phase, marker)
    reached = wait_for(marker)
    temps = stale_temp_files(target.parent)
    if phase == "mid_write":  # the temporary file exists and holds part of the bytes
        (inner,) = [p for t in temps for p in t.iterdir()]
        assert 0 < inner.stat().st_size < int(reached.split()[1])
    assert saver.kill(pid) == signal.SIGKILL

    assert content_seed(target) == expected
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    if phase != "after_replace":
        assert temps, "the kill left a temporary behind (what the next start must clean)"
    after_the_next_start(target.parent, target)
    assert content_seed(target) == expected


@pytest.mark.parametrize("suffix", FORMATS)
def test_killed_after_random_delays_with_the_real_writers(saver, tmp_path, suffix) -> None:
    seen = set()
    for n, delay in enumerate([0.0, 0.005, 0.02, 0.06, 0.2]):
        target = good_old_file(tmp_path / f"run{n}", suffix)
        marker = tmp_path / f"marker{n}"
        pid = saver.start(target, "timed", marker)
        wait_for(marker)
        time.sleep(delay)
        status = saver.kill(pid)
        assert status in (signal.SIGKILL, 0)  # 0: it finished before the kill
        seen.add(content_seed(target))
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
        after_the_next_start(target.parent, target)
    assert seen <= {OLD, NEW}


@pytest.mark.parametrize("suffix", FORMATS)
def test_the_next_save_of_the_same_file_cleans_up_too(saver, tmp_path, suffix) -> None:
    target = good_old_file(tmp_path / "out", suffix)
    bystander = target.parent / f".{target.name}.bak.abcd1234.paramedit-tmp"
    bystander.mkdir()  # the leftover of another file ("model.pt.bak"): left for the start-up cleanup
    marker = tmp_path / "marker"
    pid = saver.start(target, "mid_write", marker)
    wait_for(marker)
    assert saver.kill(pid) == signal.SIGKILL
    save_tensors(make_state(NEW), target)
    assert content_seed(target) == NEW
    assert sorted(p.name for p in target.parent.iterdir()) == sorted([target.name, bystander.name])


def test_cleanup_never_touches_a_save_that_is_still_running(saver, tmp_path) -> None:
    target = good_old_file(tmp_path / "out", ".safetensors")
    marker = tmp_path / "marker"
    pid = saver.start(target, "mid_write", marker)
    wait_for(marker)
    running = stale_temp_files(target.parent)
    assert running
    assert clean_stale_temp_files(target.parent) == []  # its lock is held
    assert stale_temp_files(target.parent) == running
    assert saver.kill(pid) == signal.SIGKILL
    assert clean_stale_temp_files(target.parent) == running
    assert content_seed(target) == OLD


def test_cleanup_removes_only_what_saves_leave(tmp_path) -> None:
    precious = tmp_path / "precious.pt"
    precious.write_bytes(b"weeks of training")
    (tmp_path / ".model.pt.abcd1234.paramedit-tmp").write_bytes(b"an older paramedit's temporary file")
    (tmp_path / ".link.pt.abcd1234.paramedit-tmp").symlink_to(precious)
    nested = tmp_path / ".x.pt.zzzz9999.paramedit-tmp"
    (nested / "sub").mkdir(parents=True)  # a save never makes subfolders: not ours to delete
    (tmp_path / ".model.pt.tmp").write_bytes(b"not ours")
    (tmp_path / "notes.paramedit-tmp").write_bytes(b"not ours either")

    removed = clean_stale_temp_files(tmp_path)

    assert [p.name for p in removed] == [".model.pt.abcd1234.paramedit-tmp"]
    assert precious.read_bytes() == b"weeks of training"
    assert (tmp_path / ".link.pt.abcd1234.paramedit-tmp").is_symlink()
    assert nested.is_dir()
    assert clean_stale_temp_files(tmp_path / "does-not-exist") == []


def test_cleanup_waits_for_min_age(tmp_path) -> None:
    stale = tmp_path / ".m.pt.abcdefgh.paramedit-tmp"
    stale.write_bytes(b"x")
    assert clean_stale_temp_files(tmp_path, min_age_s=3600) == []
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert clean_stale_temp_files(tmp_path, min_age_s=3600) == [stale]


# ---------------------------------------------------------------- disk full, permission denied


@pytest.mark.parametrize("suffix", FORMATS)
def test_disk_full_mid_write_keeps_the_old_file(tmp_path, monkeypatch, suffix) -> None:
    import safetensors.torch

    target = good_old_file(tmp_path / "out", suffix)

    def full_disk(obj, filename, *args, **kwargs):
        with open(filename, "wb") as f:
            f.write(b"\0" * 4096)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(SaveError, match="No space left on device") as info:
        save_tensors(make_state(NEW), target)
    assert "previous file is unchanged" in info.value.message
    monkeypatch.undo()
    assert content_seed(target) == OLD
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


@pytest.mark.parametrize("failing", ["fsync", "replace-eacces", "replace-erofs", "mkdtemp-eacces", "chmod-eperm"])
def test_failures_after_writing_keep_the_old_file(tmp_path, monkeypatch, failing) -> None:
    import tempfile

    target = good_old_file(tmp_path / "out", ".pt")
    name, _, code = failing.partition("-")
    err = {"": errno.EIO, "eacces": errno.EACCES, "erofs": errno.EROFS, "eperm": errno.EPERM}[code]

    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    module = {"mkdtemp": tempfile}.get(name, os)
    monkeypatch.setattr(module, {"replace": "replace", "mkdtemp": "mkdtemp", "fsync": "fsync", "chmod": "chmod"}[name], fail)
    with pytest.raises(SaveError, match=os.strerror(err)):
        save_tensors(make_state(NEW), target)
    monkeypatch.undo()
    assert content_seed(target) == OLD
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="runs as root, where a read-only mode does not stop writes (the simulated "
                           "EACCES/EROFS cases above and the /sys case below cover it)")  # fmt: skip
def test_read_only_folder_for_real(tmp_path) -> None:
    target = good_old_file(tmp_path / "out", ".pt")
    os.chmod(target.parent, 0o555)
    try:
        with pytest.raises(SaveError, match="Permission denied"):
            save_tensors(make_state(NEW), target)
    finally:
        os.chmod(target.parent, 0o755)
    assert content_seed(target) == OLD


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs")
def test_a_folder_the_kernel_refuses_even_to_root() -> None:
    with pytest.raises(SaveError, match="cannot save") as info:
        save_tensors({"w": torch.ones(2)}, "/sys/kernel/paramedit-test.pt")
    assert "Traceback" not in info.value.message


def test_a_writer_that_writes_nothing_is_an_error(tmp_path) -> None:
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(SaveError, match="nothing was written"):
        atomic_write(target, lambda tmp: None)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]


ODD_TENSORS = {
    "meta": lambda: torch.empty(3, device="meta"),
    "sparse": lambda: torch.eye(3).to_sparse(),
    "complex32": lambda: torch.ones(2, dtype=torch.complex32),
}


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental:UserWarning")
@pytest.mark.parametrize(("kind", "suffix", "problem"), [
    ("meta", ".pt", "meta tensor"),
    ("meta", ".safetensors", "meta tensor"),
    ("sparse", ".safetensors", "not a dense tensor"),
    ("complex32", ".safetensors", "complex32"),
])  # fmt: skip
def test_tensors_the_format_cannot_hold_are_refused_before_writing(tmp_path, kind, suffix, problem) -> None:
    tensor = ODD_TENSORS[kind]()
    target = good_old_file(tmp_path / "out", suffix)
    with pytest.raises(SaveError, match=problem) as info:
        save_tensors({**make_state(NEW), "odd": tensor}, target)
    assert "odd" in info.value.message
    assert content_seed(target) == OLD
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


# ---------------------------------------------------------------- saving over the mapped file


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("with_model", [False, True])
def test_saving_over_the_mapped_file_twice_gives_the_right_content(tmp_path, suffix, with_model) -> None:
    path = tmp_path / f"big{suffix}"
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.Linear(512, 256))
    save_tensors(net.state_dict(), path)
    os.chmod(path, 0o600)
    original = {k: v.detach().clone() for k, v in net.state_dict().items()}
    model_py = tmp_path / "seq.py"
    model_py.write_text("import torch\n\ndef build():\n    return torch.nn.Sequential(torch.nn.Linear(512, 512), "
                        "torch.nn.Linear(512, 256))\n")  # fmt: skip
    s = paramedit.open_session(f"{model_py}:build" if with_model else None, path)

    s.stage("0.weight", "[0, :]", 7.0)
    s.commit()
    s.save(path)
    s.stage("1.bias", "[-1]", -3.0)
    s.commit()
    s.save(path)  # over a file that is no longer the mapped one

    expected = {k: v.clone() for k, v in original.items()}
    expected["0.weight"][0, :] = 7.0
    expected["1.bias"][-1] = -3.0
    on_disk = load_checkpoint(path).tensors
    for name, value in expected.items():
        assert torch.equal(on_disk[name], value), name
        assert torch.equal(s.tensor(name).detach(), value), name  # every page of the old mapping still reads right
    assert s.changed_count("0.weight") == 512 and s.changed_count("1.bias") == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, model_py.name])
    s.undo()
    s.undo()
    for name, value in original.items():
        assert torch.equal(s.tensor(name).detach(), value), name


def test_a_new_file_gets_the_default_permissions_not_the_temporary_ones(tmp_path) -> None:
    umask = os.umask(0o022)
    try:
        for suffix in FORMATS:
            path = save_tensors({"w": torch.ones(2)}, tmp_path / f"new{suffix}")
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, suffix
    finally:
        os.umask(umask)
