"""paramedit benchmarks: every figure is a ratio against a baseline measured in the same run.

    python benchmarks/run.py [--work DIR] [--only NAME ...] [--repeat N]

Creates its own inputs in --work (default: a folder in the temp dir, reused between runs):
a GPT-2-small-shaped model (124M parameters) saved as .pt and .safetensors, and a sharded
~2 GB bfloat16 safetensors set. Each whole-program case runs in a fresh process; wall time
is the best of --repeat runs, peak RSS is the child's ru_maxrss.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
PY = sys.executable
GB = 1 << 30


@dataclass
class Run:
    wall: float
    rss: int  # bytes


def run_process(cmd: list[str], env: dict | None = None) -> Run:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err}")
    return Run(wall, usage.ru_maxrss * 1024)


def best_of(cmd: list[str], repeat: int, env: dict | None = None) -> Run:
    runs = [run_process(cmd, env) for _ in range(repeat)]
    return Run(min(r.wall for r in runs), max(r.rss for r in runs))


def prepare(work: Path) -> dict[str, Path]:
    work.mkdir(parents=True, exist_ok=True)
    paths = {"pt": work / "gpt2.pt", "st": work / "gpt2.safetensors", "shards": work / "sharded"}
    if not all(p.exists() for p in paths.values()):
        print(f"preparing inputs in {work} (once)...", flush=True)
        subprocess.run([PY, str(HERE / "make_inputs.py"), str(work)], check=True)
    return paths


def line(figure: str, ratio: float, target: str, ok: bool, extra: str = "") -> bool:
    print(f"{'OK  ' if ok else 'MISS'} {figure:<58} {ratio:6.3f}x  target {target}{'  ' + extra if extra else ''}",
          flush=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "paramedit-bench")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    paths = prepare(args.work)
    spec = f"{HERE / 'gpt2_small.py'}:GPT2Small"
    want = lambda name: args.only is None or name in args.only  # noqa: E731
    results = []
    env_qt = dict(os.environ, QT_QPA_PLATFORM="offscreen")

    for fmt in ("pt", "st"):
        if not want(f"inspect_{fmt}"):
            continue
        ckpt = paths[fmt]
        size = ckpt.stat().st_size
        base = best_of([PY, str(HERE / "baselines.py"), "load", str(ckpt)], args.repeat)
        ours = best_of([PY, "-m", "paramedit", "inspect", str(ckpt), "--model", spec, "--json"], args.repeat)
        extra_rss = (ours.rss - base.rss) / size
        results.append(line(f"inspect with model, 124M params ({ckpt.suffix})", ours.wall / base.wall, "<= 1.3",
                            ours.wall / base.wall <= 1.3 and extra_rss <= 0.10,
                            f"RSS +{extra_rss:.1%} of checkpoint (target <= 10%)"))

    if want("gui_open"):
        ckpt = paths["st"]
        size = ckpt.stat().st_size
        shot = args.work / "shot.png"
        base = best_of([PY, str(HERE / "baselines.py"), "load_qt", str(ckpt)], args.repeat, env_qt)
        ours = best_of([PY, "-m", "paramedit", "open", spec, str(ckpt), "--screenshot", str(shot)],
                       args.repeat, env_qt)
        extra_rss = (ours.rss - base.rss) / size
        results.append(line("GUI open to first paint, tree shown (--screenshot)", ours.wall / base.wall, "<= 1.5",
                            ours.wall / base.wall <= 1.5 and extra_rss <= 0.25,
                            f"RSS +{extra_rss:.1%} of checkpoint (target <= 25%)"))

    if want("sharded"):
        folder = paths["shards"]
        size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
        base = best_of([PY, str(HERE / "baselines.py"), "headers", str(folder)], args.repeat)
        ours = best_of([PY, "-m", "paramedit", "inspect", str(folder), "--json"], args.repeat)
        results.append(line(f"sharded {size / GB:.1f} GB bfloat16 set, open and list", ours.wall / base.wall,
                            "(reported)", ours.rss < 0.25 * size,
                            f"peak RSS {ours.rss / size:.1%} of the set (target < 25%)"))

    for case, figure, target, limit in (
        ("commit", "one-cell commit on the 50257 x 768 embedding", "<= 0.01", 0.01),
        ("backward", "backward check vs bare out.sum().backward()", "<= 1.2", 1.2),
        ("save", "save the edited 124M model (.safetensors)", "<= 1.3", 1.3),
        ("scan", "health scan of the 124M model vs isfinite().all() + abs().amax()", "<= 2", 2.0),
        ("diff", "diff of two 124M checkpoints vs (b - a).abs().max()", "<= 1.5", 1.5),
        ("probe", "one-cell commit + probe vs a bare model(x) under no_grad", "<= 1.2", 1.2),
    ):
        if not want(case):
            continue
        extra_args = [str(paths["st"])] + ([str(args.work)] if case in ("save", "diff") else [])
        out = subprocess.run([PY, str(HERE / "inprocess_cases.py"), case, *extra_args],
                             check=True, capture_output=True, text=True).stdout
        data = json.loads(out.strip().splitlines()[-1])
        ratio = data["ours"] / data["baseline"]
        ok = ratio <= limit
        extra = ""
        if "durable" in data:
            durable = data["ours"] / data["durable"]
            ok = durable <= limit  # see the README: the plain baseline does not flush to the disk
            extra = (f"vs the same write + fsync + rename: {durable:.3f}x (target {target}); "
                     f"the flush alone is {data['durable'] - data['baseline']:.2f} s")
        if "again" in data:
            extra = f"a check right after a check: {data['again'] / data['baseline']:.3f}x"
        if "ours_warm" in data:
            extra = (f"checkpoints opened fresh (as a first scan or diff is); with their pages already "
                     f"resident: {data['ours_warm'] / data['baseline_warm']:.3f}x")
        if "bytes" in data:
            extra += f"; {data['bytes'] / GB:.2f} GB read once"
        if "undo_bytes" in data:
            ok = ok and data["undo_bytes"] < 1024
            extra = f"undo {data['undo_bytes']} bytes (target < 1 KB)"
        results.append(line(figure, ratio, target, ok, extra))

    if want("scan_rss"):
        ckpt = paths["st"]
        size = ckpt.stat().st_size
        base = best_of([PY, "-m", "paramedit", "inspect", str(ckpt), "--json"], args.repeat)
        ours = best_of([PY, "-m", "paramedit", "scan", str(ckpt), "--json"], args.repeat)
        extra_rss = (ours.rss - base.rss) / size
        results.append(line("paramedit scan, whole program, vs the tensors-only inspect", ours.wall / base.wall,
                            "(reported)", extra_rss <= 0.25,
                            f"RSS +{extra_rss:.1%} of the checkpoint (target <= 25%: it is not made resident)"))

    if want("gui_table") or want("gui_heatmap"):
        gui = HERE / "gui_cases.py"
        if gui.exists():
            out = subprocess.run([PY, str(gui), str(paths["st"])], check=True, capture_output=True,
                                 text=True, env=env_qt).stdout
            data = json.loads(out.strip().splitlines()[-1])
            for key, figure, target, limit in (
                ("table", "table: 50257 x 768 embedding, jump to last row vs 3 x 5", "<= 2", 2.0),
                ("table_screen", "table: the same vs a 40 x 12 tensor filling the view", "<= 1.2", 1.2),
                ("heatmap", "heatmap first paint of 50257 x 768 vs setImage(screen)", "<= 3", 3.0),
            ):
                if key in data:
                    ratio = data[key]["ours"] / data[key]["baseline"]
                    results.append(line(figure, ratio, target, ratio <= limit, data[key].get("extra", "")))
            if "montage" in data:  # issue 13's target is absolute: "opens in well under a second"
                m = data["montage"]
                results.append(line("kernel montage of a 512 x 512 x 3 x 3 weight, opened and painted, vs setImage of "
                                    "its size", m["ours"] / m["baseline"], "(reported); < 0.25 s",
                                    m["ours"] < 0.25, m["extra"]))

    print(f"{sum(results)} of {len(results)} figures at or under target")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
