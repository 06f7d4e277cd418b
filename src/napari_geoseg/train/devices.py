"""The torch devices of this machine, and the user's choice of one checked against them.

torch is imported when a function runs, not with the module, so the napari plugin can
import it without slowing napari's start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["available_devices", "resolve_device"]


def available_devices() -> list[str]:
    """The torch devices of this machine: ``cpu`` first, then CUDA GPUs and Apple's MPS."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(device: str | torch.device | None) -> torch.device:
    """A torch device from 'cpu', 'cuda', 'cuda:1' or 'mps', checked to exist."""
    import torch

    try:
        device = torch.device(device or "cpu")
    except (RuntimeError, TypeError):
        raise InputError(f"device {device!r}: not a device; choose cpu, cuda (or cuda:N) or mps",
                         option="device") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device {str(device)!r}: not supported; choose cpu, cuda (or cuda:N) or mps",
                         option="device")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda: no CUDA GPU is available here; use the CPU", option="device")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InputError(f"device {device}: there are {torch.cuda.device_count()} CUDA GPUs here "
                         f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})", option="device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device mps: Apple's Metal backend is not available here; use the CPU", option="device")
    return device
