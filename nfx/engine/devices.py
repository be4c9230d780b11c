"""Which device and precision a run uses."""

from __future__ import annotations

import contextlib

import torch

from nfx.errors import InputError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' prefers CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda asked for, but no CUDA GPU is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device mps asked for, but MPS is not available")
    return device


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs at hardware speed here (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(requested: str, device: torch.device) -> str:
    if requested == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if requested == "bf16" and device.type == "mps":
        raise InputError("bf16 is not supported on MPS; use precision fp32 or auto")
    return requested


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The network's passes in bf16 where the run's precision says so."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
