"""What the CPU can do natively: the kernel's /proc/cpuinfo on Linux, PyTorch's CPU probe elsewhere."""

from __future__ import annotations

import platform
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty off Linux)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the end of the first processor's block
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def _torch_capabilities() -> dict[str, Any]:
    """PyTorch's own CPU probe (``torch.cpu.get_capabilities``, any OS; empty where it is missing)."""
    import torch

    probe = getattr(torch.cpu, "get_capabilities", None)
    try:
        return dict(probe()) if probe is not None else {}
    except Exception:  # a probe that fails only loses the bf16 fast path
        return {}


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags: the kernel's where it reports them (Linux), else PyTorch's probe
    (Windows, macOS; it names ``amx_bf16`` and ``avx512_bf16`` as Linux does)."""
    flags = _cpuinfo().get("flags")
    if flags is not None:
        return frozenset(flags.split())
    return frozenset(name for name, value in _torch_capabilities().items() if value is True)


@lru_cache(maxsize=1)
def cpu_vendor() -> str:
    """"GenuineIntel", "AuthenticAMD", ... ("" where unknown)."""
    vendor = _cpuinfo().get("vendor_id")
    if vendor:
        return vendor
    described = f"{platform.processor()} {_torch_capabilities().get('cpu_name', '')}"  # Windows: "... AuthenticAMD"
    for name, words in (("AuthenticAMD", ("AuthenticAMD", "AMD ")), ("GenuineIntel", ("GenuineIntel", "Intel"))):
        if any(word in described for word in words):
            return name
    return ""


def cpu_has_amx() -> bool:
    """True when the CPU has AMX bfloat16 tiles: PyTorch's fused CPU attention kernel then runs on them."""
    return "amx_bf16" in cpu_flags()


def bf16_beats_fp32(flags: "frozenset[str] | set[str]", vendor: str) -> bool:
    """Whether bfloat16 matmuls run faster than float32 on a CPU with these flags and vendor.

    Measured on 2-core machines (benchmarks/RESULTS.md): with AMX, bf16 matmuls ran 4-9x faster
    than float32; with AVX512-BF16 on an AMD EPYC, 4x, and tracking 2.2-2.8x. On an Intel Xeon
    (Emerald Rapids) whose AMX a hypervisor hides, leaving AVX512-BF16, bf16 matmuls ran at 0.69x
    float32 and tracking with hiera-tiny at 1024 took 6.84 s a frame in bf16 against 4.66 in
    float32: Intel CPUs without AMX keep float32.
    """
    if "amx_bf16" in flags:
        return True
    return "avx512_bf16" in flags and vendor == "AuthenticAMD"


def cpu_prefers_bf16() -> bool:
    """True on this CPU when bfloat16 is the faster compute dtype (see :func:`bf16_beats_fp32`)."""
    return bf16_beats_fp32(cpu_flags(), cpu_vendor())
