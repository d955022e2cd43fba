"""Where tensors go: picking a device by name, and bf16 autocast where it helps."""

from __future__ import annotations

import re

import torch

from qdsketch.errors import QdsketchError


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA, then MPS, then the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``;
    one that this machine lacks is an error with the fix."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", name):
        raise QdsketchError(f"unknown device {name!r}", "use auto, cpu, cuda, cuda:N or mps")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise QdsketchError("CUDA is not available on this machine", "use --device cpu (or auto)")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise QdsketchError(f"there is no {name}: this machine has {torch.cuda.device_count()} GPU(s)", "use cuda:0")
    if name == "mps" and not _mps_available():
        raise QdsketchError("MPS is not available on this machine", "use --device cpu (or auto)")
    return torch.device(name)


def visible_devices() -> list[str]:
    """What ``--device`` can name here, each GPU with its model: ``["cpu", "cuda:0 (NVIDIA H100)"]``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    return found


def amp_works(device: torch.device) -> bool:
    """Whether bf16 autocast runs here (CUDA with bf16 support)."""
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def autocast(device: torch.device, amp: bool):
    """bf16 autocast where asked for and supported; a no-op context otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and amp_works(device))
