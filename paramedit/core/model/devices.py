"""Which devices this machine offers, and moving a model between them."""

from __future__ import annotations

import torch
from torch import nn

from paramedit.core.errors import DeviceError


def available_devices() -> list[str]:
    """``cpu``, then each ``cuda:N``, then ``mps`` when present."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def device_label(device: str) -> str:
    """A human label for the device box: ``cuda:0 (NVIDIA H200)``."""
    if device.startswith("cuda"):
        try:
            return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
        except Exception:
            return device
    return device


def parse_device(device: str | torch.device | None) -> torch.device:
    """Validate a device name against what this machine has."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"{device!r} is not a device name (try one of: {', '.join(available_devices())})") from exc
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", 0)
    name = str(dev)
    if name not in available_devices():
        raise DeviceError(f"device {name!r} is not available here; available: {', '.join(available_devices())}")
    return dev


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (cpu for an empty model)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def move_model(model: nn.Module, device: torch.device) -> None:
    """Move in place; ``Module.to`` keeps each Parameter object (it swaps ``.data``)."""
    try:
        model.to(device)
    except Exception as exc:
        raise DeviceError(f"moving the model to {device} failed: {exc}") from exc
