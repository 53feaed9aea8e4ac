"""Figures measured inside one process: commit, backward, save (and GUI ones when Qt is here).

Prints one JSON object: {"ours": seconds, "baseline": seconds, ...extra}.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
SPEC = f"{HERE / 'gpt2_small.py'}:GPT2Small"


def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def case_commit(ckpt: str) -> dict:
    import paramedit

    s = paramedit.open_session(SPEC, ckpt)
    emb = s.tensor("wte.weight")
    values = iter(range(1, 10_000))

    def one_cell():
        s.stage("wte.weight", "[50256, 767]", float(next(values)))
        s.commit()

    one_cell()  # first commit maps nothing new, but warm the code paths
    ours = statistics.median([best(one_cell, 1) for _ in range(20)])
    full = torch.empty_like(emb)
    with torch.no_grad():
        baseline = best(lambda: emb.copy_(full), 5)
    return {"ours": ours, "baseline": baseline, "undo_bytes": s.history.records[-1].nbytes}


def case_backward(ckpt: str) -> dict:
    import paramedit

    s = paramedit.open_session(SPEC, ckpt)
    (tokens,) = s.example_inputs
    model = s.model
    model.eval()

    def bare():
        model(tokens).sum().backward()

    def clear():
        # Both start from no gradients (untimed): neither pays for memory the other left behind.
        for p in model.parameters():
            p.grad = None

    bare()
    ours_times, base_times = [], []
    for _ in range(5):  # interleave so both see the same machine state
        clear()
        base_times.append(best(bare, 1))
        clear()
        ours_times.append(best(lambda: s.run_backward(inputs=(tokens,)), 1))
    # The window's case: a check right after the previous one, whose gradients it may drop.
    again = [best(lambda: s.run_backward(inputs=(tokens,)), 1) for _ in range(3)]
    return {"ours": min(ours_times), "baseline": min(base_times), "again": min(again)}


def case_save(ckpt: str, out_dir: str) -> dict:
    from safetensors.torch import save_file

    import paramedit

    s = paramedit.open_session(SPEC, ckpt)
    s.stage("wte.weight", "[0, 0]", 1.0)
    s.commit()
    out = Path(out_dir)
    tensors, _ = s.state_dict()
    plain = {k: v.detach().contiguous() for k, v in tensors.items()}
    suffix = ".safetensors" if ckpt.endswith(".safetensors") else ".pt"

    def baseline_fn_to(path: Path) -> None:
        if suffix == ".safetensors":
            save_file(plain, str(path))
        else:
            torch.save(plain, path)

    def baseline_fn() -> None:
        baseline_fn_to(out / f"baseline{suffix}")

    def durable_fn() -> None:
        # What "never lose the file" costs at least: the same write, flushed to the disk, renamed.
        tmp, final = out / f"durable.tmp{suffix}", out / f"durable{suffix}"
        baseline_fn_to(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)

    times: dict[str, list[float]] = {"baseline": [], "durable": [], "ours": []}
    for _ in range(3):
        for key, fn in (("baseline", baseline_fn), ("durable", durable_fn),
                        ("ours", lambda: s.save(out / f"ours{suffix}"))):
            os.sync()  # each run starts with nothing left to write back from the one before
            times[key].append(best(fn, 1))
    return {key: min(values) for key, values in times.items()}


def case_probe(ckpt: str) -> dict:
    """A probe after a one-cell commit, against a bare ``model(x)`` under no_grad (eval mode)."""
    import paramedit

    s = paramedit.open_session(SPEC, ckpt)
    (tokens,) = s.example_inputs
    model = s.model
    first = s.probe((tokens,))
    values = iter(range(1, 1000))

    def ours():
        s.stage("wte.weight", "[0, 0]", float(next(values)))
        s.commit()
        s.probe(first.inputs)

    def bare():
        model.eval()
        with torch.no_grad():
            model(tokens)

    ours_times, base_times = [], []
    for _ in range(5):
        base_times.append(best(bare, 1))
        ours_times.append(best(ours, 1))
    return {"ours": min(ours_times), "baseline": min(base_times)}


def _interleaved(ours, baseline, rounds: int = 3) -> dict:
    """Best of ``rounds`` each, interleaved so both see the same machine state.

    ``ours`` and ``baseline`` take a flag ``fresh``: when true they open their checkpoints anew
    (nothing of them in this process's memory yet, the page cache warm), as a user's first
    scan or diff does; when false they reuse what earlier rounds made resident.
    """
    times: dict[str, list[float]] = {"ours": [], "baseline": [], "ours_warm": [], "baseline_warm": []}
    for _ in range(rounds):
        times["baseline"].append(best(baseline(True), 1))
        times["ours"].append(best(ours(True), 1))
    for _ in range(rounds):
        times["baseline_warm"].append(best(baseline(False), 1))
        times["ours_warm"].append(best(ours(False), 1))
    return {key: min(values) for key, values in times.items()}


def _opener(path: str):
    import paramedit

    kept = {}

    def session(fresh: bool):
        if fresh or "s" not in kept:
            kept["s"] = paramedit.open_session(None, path)
        return kept["s"]

    return session


def case_scan(ckpt: str) -> dict:
    ours_session, base_session = _opener(ckpt), _opener(ckpt)

    def baseline(fresh: bool):
        s = base_session(fresh)  # opened outside the timed part
        tensors = [s.tensor(n) for n in s.names()]

        def run():
            for t in tensors:
                if t.is_floating_point():
                    torch.isfinite(t).all()
                    t.abs().amax()

        return run

    def ours(fresh: bool):
        s = ours_session(fresh)
        return lambda: s.scan()

    result = _interleaved(ours, baseline)
    result["bytes"] = ours_session(False).scan().bytes_read
    return result


def case_diff(ckpt: str, out_dir: str) -> dict:
    """A against B, a copy with every tensor nudged (as after a few training steps)."""
    from safetensors.torch import load_file, save_file

    import paramedit

    other = Path(out_dir) / "gpt2_b.safetensors"
    if not other.exists():
        torch.manual_seed(1)
        save_file({k: (v + 1e-3 * torch.randn_like(v)).contiguous() for k, v in load_file(ckpt).items()}, str(other))
    base_a, base_b, ours_b = _opener(ckpt), _opener(str(other)), _opener(str(other))

    def baseline(fresh: bool):
        a, b = base_a(fresh), base_b(fresh)
        pairs = [(a.tensor(n), b.tensor(n)) for n in b.names()]

        def run():
            for ta, tb in pairs:
                (tb - ta).abs().max()

        return run

    def ours(fresh: bool):
        b = ours_b(fresh)
        reference = paramedit.core.checkpoints.formats.load_checkpoint(ckpt)
        return lambda: b.compare(reference)

    return _interleaved(ours, baseline)


if __name__ == "__main__":
    name, *args = sys.argv[1:]
    print(json.dumps(globals()[f"case_{name}"](*args)))
