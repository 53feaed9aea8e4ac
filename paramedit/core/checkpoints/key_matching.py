"""Matching a model's tensor names to a checkpoint's, across one wrapping prefix either way."""

from __future__ import annotations

__all__ = ["match_keys"]


def match_keys(model_keys: list[str], ckpt_keys: list[str]) -> tuple[dict[str, str], str | None]:
    """Map model names to checkpoint names, trying one extra wrapping prefix either way.

    Lightning saves ``model.layer.weight`` for a LightningModule holding ``self.model``; some
    tools save the inner model's keys for an outer wrapper. The mapping that matches the most
    keys wins; the note says which prefix was used.
    """
    ckpt_set = set(ckpt_keys)
    best = ({k: k for k in model_keys if k in ckpt_set}, None)
    prefixes = {k.split(".", 1)[0] + "." for k in ckpt_keys if "." in k}
    for prefix in prefixes:
        # checkpoint has an extra prefix
        cand = {k: prefix + k for k in model_keys if prefix + k in ckpt_set}
        if len(cand) > len(best[0]):
            best = (cand, f"stripped prefix {prefix!r} from checkpoint keys")
    model_prefixes = {k.split(".", 1)[0] + "." for k in model_keys if "." in k}
    for prefix in model_prefixes:
        cand = {k: k[len(prefix):] for k in model_keys if k.startswith(prefix) and k[len(prefix):] in ckpt_set}
        if len(cand) > len(best[0]):
            best = (cand, f"added prefix {prefix!r} to checkpoint keys")
    return best
