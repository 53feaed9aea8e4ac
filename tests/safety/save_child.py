"""A real saving process for ``test_kill_during_save.py``, killed with SIGKILL at chosen points.

Run as a script, it imports torch and paramedit once (seconds), prints ``ready``, then for each
JSON job on stdin forks a child that saves through ``paramedit.core.checkpoints.saving`` and prints
``pid N``; the next line, ``kill`` or ``wait``, says whether to SIGKILL the child, and when it
has ended the script prints ``exit N STATUS`` (the raw wait status). A job's ``phase`` says where the
child stops and waits to be killed, after writing ``marker`` so the test knows it got there:

* ``timed``: no stop; ``marker`` is written just before the save starts.
* ``before_write``: the temporary folder exists, the writer has not started.
* ``mid_write``: the temporary file holds the first half of the real serialised bytes.
* ``before_replace``: the temporary file is complete and fsynced; ``os.replace`` not yet run.
* ``after_replace``: ``os.replace`` ran; the folder is not yet fsynced.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import time
from pathlib import Path

import torch

from paramedit.core.checkpoints import saving

NUMEL = 1 << 20  # one MiB of float32 per tensor
TENSORS = 8  # 32 MiB per file


def make_state(seed: int) -> dict[str, torch.Tensor]:
    """Distinct, cheap, position-dependent content for each seed."""
    return {f"w{i}": torch.arange(NUMEL, dtype=torch.float32).reshape(1024, 1024) + (seed * 100 + i)
            for i in range(TENSORS)}  # fmt: skip


def _stop(marker: str, text: str) -> None:
    Path(marker).write_text(text)
    while True:
        time.sleep(60)


_REAL_TORCH_SAVE = torch.save


def _serialised(fmt: str, tensors: dict[str, torch.Tensor], metadata: dict | None) -> bytes:
    if fmt == "safetensors":
        from safetensors.torch import save

        return save(tensors, metadata=metadata)
    buffer = io.BytesIO()
    _REAL_TORCH_SAVE(tensors, buffer)
    return buffer.getvalue()


def _install(phase: str, fmt: str, marker: str) -> None:
    import safetensors.torch

    real_replace = os.replace

    def writer(tensors, filename, metadata=None):
        if phase == "before_write":
            _stop(marker, "before_write")
        data = _serialised(fmt, tensors, metadata)
        with open(filename, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
        _stop(marker, f"mid_write {len(data)}")

    if phase in ("before_write", "mid_write"):
        if fmt == "safetensors":
            safetensors.torch.save_file = writer
        else:
            torch.save = lambda obj, f, *a, **k: writer(obj, f)
    elif phase == "before_replace":
        os.replace = lambda src, dst: _stop(marker, "before_replace")
    elif phase == "after_replace":

        def replace_then_stop(src, dst):
            real_replace(src, dst)
            _stop(marker, "after_replace")

        os.replace = replace_then_stop


def run_job(job: dict) -> None:
    fmt = "safetensors" if job["target"].endswith(".safetensors") else "torch"
    tensors = make_state(job["seed"])
    _install(job["phase"], fmt, job["marker"])
    if job["phase"] == "timed":
        Path(job["marker"]).write_text("saving")
    saving.save_tensors(tensors, job["target"])
    Path(job["marker"]).write_text("done")


def main() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run_job(job)
            except BaseException as exc:  # reported to the test through the exit status and stderr
                print(f"child failed: {exc!r}", file=sys.stderr, flush=True)
                code = 1
            finally:
                os._exit(code)
        print(f"pid {pid}", flush=True)
        # The test says when to kill; the child is not reaped before that, so its pid cannot
        # have been reused by another process when the signal is sent.
        if sys.stdin.readline().strip() == "kill":
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {status}", flush=True)


if __name__ == "__main__":
    main()
