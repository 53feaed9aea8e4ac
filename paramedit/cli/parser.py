"""Help texts and the argument parser of the ``paramedit`` command."""

from __future__ import annotations

import argparse

from paramedit import __version__

SUBCOMMANDS = ("open", "inspect", "check", "apply", "scan", "diff", "probe")

USAGE = """paramedit [-h] [--version] [--self-test] {open,inspect,check,apply,scan,diff,probe} ...
       paramedit [MODEL_SPEC] [CHECKPOINT] [open options]   (no command: same as `open`)"""

EPILOG = """examples:
  paramedit                                  open the bundled demo in the window
  paramedit model.py:Net ckpt.pt             open a model and its checkpoint
  paramedit inspect ckpt.safetensors --json  list tensors, shapes and the load report
  paramedit check --model model.py:Net --checkpoint ckpt.pt --input 'randn(2, 5)'
  paramedit apply ckpt.pt edits.json -o edited.safetensors
  paramedit scan ckpt.pt                     find NaN, Inf, outliers, dead rows and where they are
  paramedit diff before.pt after.safetensors what changed between two checkpoints
  paramedit probe my-gpt2/ --prompt 'The capital of France is' --edits ablate.json
                                             the outputs before and after an edit
  paramedit --self-test                      check this installation works, then exit

MODEL_SPEC is path/to/file.py:NAME or package.module:NAME (an nn.Module class or a function
returning one). A checkpoint is a .pt/.pth/.bin/.ckpt state dict, a .safetensors file, a
sharded *.safetensors.index.json or a Hugging Face save_pretrained folder. Pickles load with
weights_only=True unless you pass --trust. `paramedit COMMAND --help` shows each command's options.
"""

OPEN_EPILOG = """examples:
  paramedit open --demo                          the bundled demo model and checkpoint
  paramedit model.py:Net ckpt.pt --device cuda:0
                                                 open on the GPU (the word `open` is optional)
  paramedit ckpt.safetensors                     the tensors alone (no backward check)
  paramedit model.py:Net --model-kwargs '{"width": 8}'
                                                 freshly initialised weights
  paramedit --demo --screenshot shot.png         save a picture of the window and exit
"""

INSPECT_EPILOG = """examples:
  paramedit inspect ckpt.pt                      name, kind, dtype and shape of every tensor
  paramedit inspect ckpt.pt --model model.py:Net missing / unexpected / mismatched tensors
  paramedit inspect ckpt.ckpt --key ema --json   the weights under the 'ema' key, as JSON
"""

CHECK_EPILOG = """inputs: --input expressions first, else --input-shape tensors, else the model's own
example_inputs() function or example_input_array attribute, else (Hugging Face models) token
ids, attention mask, pixels or audio features of the sizes the config gives. Inputs are seeded,
so a check is repeatable. `--input name=EXPR` passes a keyword argument of forward.

exit status: 0 every trainable parameter got a finite gradient (a gradient that is exactly zero
everywhere is reported as ZERO and warned about; --strict makes it exit 1), 1 one did not,
2 bad input, or model tensors were not loaded from the checkpoint (--allow-missing checks anyway).

examples:
  paramedit check --model model.py:Net --input-shape 2,5
  paramedit check --model gpt.py:GPT --checkpoint ckpt.pt --input 'randint(1000, (1, 16))' --json
  paramedit check --model t5.py:make --input 'randint(100, (1, 8))' --input 'attention_mask=int(ones(1, 8))' \\
                  --input 'decoder_input_ids=randint(100, (1, 4))'
  paramedit check --model model.py:Net --checkpoint ckpt.pt --device cuda:0 --train --strict
"""

APPLY_EPILOG = """The edit log is the paramedit.edits JSON the window exports (File > Export Edit Log).
The result keeps the checkpoint's own layout: every tensor it had, under its own names and
prefixes, in its own dtypes, with the edits applied. With --model, a model that does not hold
the same tensors as the checkpoint is refused (exit 2) unless --allow-mismatch; --in-place
refuses files it cannot rewrite whole (TorchScript, a pickled model, a container with other
content such as a Lightning checkpoint's optimizer states): use -o OUT for those.

examples:
  paramedit apply ckpt.pt edits.json -o edited.safetensors
  paramedit apply model.safetensors edits.json --in-place
  paramedit apply ckpt.pt edits.json -o out.pt --model model.py:Net   edit through the model
"""


SCAN_EPILOG = """findings: nan, inf (errors), outlier, dead_row, dead_column (warnings), constant (info),
each with the region that holds it ([31337, 17], [777, :], [:, 5]; the first when there are more).
An outlier is a value more than 20 robust sigmas (1.4826 x the median absolute deviation) from
its tensor's median.

examples:
  paramedit scan model.safetensors
  paramedit scan ckpt.pt --only 'h.*.mlp.*' --json
  paramedit scan ckpt.pt --model model.py:Net
"""


DIFF_EPILOG = """per tensor: status (same, changed, only_a, only_b, shape, dtype), max |B - A|, relative
change ||B - A|| / ||A|| and the number of changed cells. A and B may be in different formats
(.pt against .safetensors, a folder against a file); prefixes and containers are resolved as
when opening.

examples:
  paramedit diff before.pt after.pt
  paramedit diff base.safetensors finetuned/ --atol 1e-6 --json
"""


PROBE_EPILOG = """One forward pass in eval mode under no_grad, summarised: the top-k classes (or next tokens)
with their probabilities per sample, or the output's shape and stats. With --edits, the edit log
is applied in memory (nothing is written) and the model probed again on the same input; the
change is the KL divergence, the largest |change of a logit| and how many top-1 predictions moved.

examples:
  paramedit probe model.py:Net ckpt.pt --input 'randn(4, 784)' --edits zero_classes.json
  paramedit probe my-gpt2/ --prompt 'The capital of France is' --generate 8 --json
"""


def version_text() -> str:
    """``paramedit X.Y.Z (torch A.B.C, Python D.E.F)`` without importing torch (that takes seconds)."""
    import platform
    from importlib import metadata

    try:
        torch_version = f"torch {metadata.version('torch')}, "
    except metadata.PackageNotFoundError:  # a frozen app may ship torch without its metadata
        torch_version = ""
    return f"paramedit {__version__} ({torch_version}Python {platform.python_version()})"


def _common(parser: argparse.ArgumentParser, *, model: bool = True) -> None:
    if model:
        parser.add_argument("--model-kwargs", metavar="JSON", help="keyword arguments for the model, e.g. '{\"width\": 8}'")
    parser.add_argument("--trust", action="store_true",
                        help="load a pickled checkpoint that needs more than tensors (runs code from the file: "
                             "only for files you trust)")
    parser.add_argument("--key", dest="container_key", metavar="KEY",
                        help="which nested dict of the checkpoint holds the weights (e.g. ema)")
    if model:
        parser.add_argument("--dtype", default=None, metavar="DTYPE",
                            help="the model's parameters: 'file' (the checkpoint's stored dtype, no copy; the default "
                                 "for a Hugging Face folder's own architecture), 'model' (as the constructor made them; "
                                 "the default for a spec), or float32, bfloat16, float16")
    parser.add_argument("--tensors-only", action="store_true",
                        help="open a Hugging Face folder as its tensors alone, without building the architecture "
                             "its config.json names")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="build a Hugging Face folder whose config needs code shipped with the folder (auto_map): "
                             "runs that code, only for folders you trust")
    parser.add_argument("--verbose", action="store_true", help="show the original traceback of an error")


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="paramedit",
        usage=USAGE,
        description="Edit the parameters of PyTorch models in place, and prove gradients still flow.",
        epilog=EPILOG,
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=version_text(),
                        help="print the versions of paramedit, torch and Python, then exit")
    parser.add_argument("--self-test", action="store_true",
                        help="open the demo offscreen, commit an edit, run the backward check; "
                             "print PASS and exit 0, or the reason and exit 1")
    sub = parser.add_subparsers(dest="command", metavar="{open,inspect,check,apply,scan,diff,probe}", title="commands")

    p = sub.add_parser("open", prog="paramedit open", help="open the window (the default command)",
                       epilog=OPEN_EPILOG, formatter_class=raw,
                       description="Open a model and/or checkpoint in the window; with nothing, the bundled demo.")
    p.add_argument("model", nargs="?", metavar="MODEL_SPEC", help="file.py:NAME or package.module:NAME")
    p.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT", help="a checkpoint file or folder")
    p.add_argument("--device", default="cpu", help="cpu, cuda:0, mps (default: cpu)")
    p.add_argument("--demo", action="store_true", help="open the bundled demo model and checkpoint")
    p.add_argument("--screenshot", metavar="PNG",
                   help="save a picture of the window after loading, then exit (works offscreen)")
    _common(p)
    parser.set_defaults(open_parser=p)

    p = sub.add_parser("inspect", prog="paramedit inspect",
                       help="list a checkpoint's tensors and how it fits a model",
                       epilog=INSPECT_EPILOG, formatter_class=raw,
                       description="List a checkpoint's tensors; with --model, also the load report.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint file or folder")
    p.add_argument("--model", metavar="SPEC", help="file.py:NAME or package.module:NAME to load the checkpoint into")
    p.add_argument("--json", action="store_true", help="print JSON: every tensor's name, kind, shape, dtype, device and aliases, and the load report")
    _common(p)

    p = sub.add_parser("check", prog="paramedit check",
                       help="run a backward pass and report which parameters got gradients",
                       epilog=CHECK_EPILOG, formatter_class=raw,
                       description="Run one forward and backward pass. Exit 0 when every trainable parameter\n"
                                   "received a finite gradient, 1 when one did not, 2 for bad input.")
    p.add_argument("--model", metavar="SPEC",
                   help="file.py:NAME or package.module:NAME (default: the architecture a Hugging Face folder's "
                        "config.json names)")
    p.add_argument("--checkpoint", metavar="CKPT", help="weights to load first (default: the model's own init)")
    p.add_argument("--input", dest="inputs", action="append", metavar="[NAME=]EXPR",
                   help="an input as a formula, e.g. 'randn(2, 5)' or 'randint(1000, (1, 16))'; repeat for more; "
                        "NAME=EXPR passes a keyword argument, e.g. 'attention_mask=int(ones(1, 16))'")
    p.add_argument("--input-shape", dest="input_shapes", action="append", metavar="SHAPE",
                   help="a standard-normal input of this shape, e.g. 2,5; repeat for more")
    p.add_argument("--device", default="cpu", help="cpu, cuda:0, mps (default: cpu)")
    p.add_argument("--reduction", choices=("sum", "mean"), default="sum",
                   help="with --loss sum/mean: the sum (default) or mean of every floating output")
    p.add_argument("--loss", default=None, metavar="LOSS",
                   help="auto (default: next-token cross-entropy for a causal language model given token ids, "
                        "else the outputs' sum), sum, mean, next-token, or class:K (cross-entropy against class K)")
    p.add_argument("--train", action="store_true", help="run in train mode (buffers are restored afterwards)")
    p.add_argument("--only", action="append", metavar="GLOB",
                   help="check only the parameters matching GLOB (repeatable), e.g. 'model.layers.31.*': the others "
                        "are frozen for the check and restored after, and need no gradient memory")
    p.add_argument("--no-memory-check", dest="memory_check", action="store_false",
                   help="start even when the estimate says the check will not fit in free memory")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 also when a gradient is exactly zero everywhere (connected, but no signal)")
    p.add_argument("--allow-missing", action="store_true",
                   help="check even when model tensors were not loaded from the checkpoint (they keep random values)")
    p.add_argument("--json", action="store_true", help="print the per-parameter report as JSON")
    _common(p)

    p = sub.add_parser("apply", prog="paramedit apply", help="replay an edit log on a checkpoint and save the result",
                       epilog=APPLY_EPILOG, formatter_class=raw,
                       description="Replay a paramedit.edits log on a checkpoint and save the result;\n"
                                   "nothing is written if any edit fails.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the checkpoint to edit")
    p.add_argument("edits", metavar="EDITS.json", help="a paramedit.edits log (version 1)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", metavar="OUT", help="where to save (.safetensors or .pt)")
    out.add_argument("--in-place", action="store_true", help="overwrite CHECKPOINT (atomically)")
    p.add_argument("--model", metavar="SPEC",
                   help="file.py:NAME or package.module:NAME to load the checkpoint into first "
                        "(default: the checkpoint's tensors alone)")
    p.add_argument("--device", default="cpu", help="where the edits are computed (default: cpu)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="save even when the model and the checkpoint do not hold the same tensors (the file's own "
                        "tensors are written back unchanged)")
    p.add_argument("--add-missing", action="store_true",
                   help="also write the tensors the model has and the checkpoint lacks")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    _common(p)

    p = sub.add_parser("scan", prog="paramedit scan", help="find NaN, Inf, outliers, dead rows and columns",
                       epilog=SCAN_EPILOG, formatter_class=raw,
                       description="Read every value of every floating-point tensor once and report what is wrong,\n"
                                   "with where. Exit 1 when a NaN or Inf is found, else 0; 2 for bad input.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint file or folder")
    p.add_argument("--model", metavar="SPEC", help="scan the model's tensors as loaded from the checkpoint "
                                                   "(knows its embeddings' padding rows)")
    p.add_argument("--only", action="append", metavar="GLOB", help="scan only tensors matching GLOB (repeatable)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    _common(p)

    p = sub.add_parser("probe", prog="paramedit probe", help="the model's outputs, before and after an edit log",
                       epilog=PROBE_EPILOG, formatter_class=raw,
                       description="Probe a model's outputs on one input; with --edits, before and after applying an\n"
                                   "edit log in memory. Exit 0, or 2 for bad input.")
    p.add_argument("spec", nargs="?", metavar="MODEL_SPEC", help="file.py:NAME or package.module:NAME (or a checkpoint)")
    p.add_argument("checkpoint_pos", nargs="?", metavar="CHECKPOINT", help="a checkpoint file or folder")
    p.add_argument("--model", metavar="SPEC", help="the model (default: a Hugging Face folder's own architecture)")
    p.add_argument("--checkpoint", metavar="CKPT", help="weights to load")
    p.add_argument("--input", dest="inputs", action="append", metavar="[NAME=]EXPR",
                   help="an input as a formula, e.g. 'randn(4, 784)'; repeat for more")
    p.add_argument("--prompt", metavar="TEXT", help="a text prompt (needs a tokenizer in the checkpoint folder)")
    p.add_argument("--edits", metavar="EDITS.json", help="an edit log to apply in memory between the two probes")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="classes or tokens to list (default 5)")
    p.add_argument("--generate", type=int, default=0, metavar="N", help="a greedy continuation of N tokens")
    p.add_argument("--device", default="cpu", help="cpu, cuda:0, mps (default: cpu)")
    p.add_argument("--json", action="store_true", help="print the probe as JSON")
    _common(p)

    p = sub.add_parser("diff", prog="paramedit diff", help="compare two checkpoints tensor by tensor",
                       epilog=DIFF_EPILOG, formatter_class=raw,
                       description="Compare checkpoint B with checkpoint A, tensor by tensor. Exit 0 when they are\n"
                                   "identical (within --atol), 1 when they differ, 2 for bad input, like cmp.")
    p.add_argument("a", metavar="A", help="the reference checkpoint (file or folder)")
    p.add_argument("b", metavar="B", help="the checkpoint to compare with it")
    p.add_argument("--model", metavar="SPEC", help="load B into this model first (names as the model has them)")
    p.add_argument("--atol", type=float, default=0.0, metavar="X",
                   help="cells that differ by at most X count as the same (default 0: any difference)")
    p.add_argument("--all", action="store_true", help="also list the tensors that are the same")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    _common(p)
    return parser
