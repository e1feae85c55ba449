"""Inference engines: one runner contract, several runtimes (torch, ONNX Runtime, OpenVINO).

The engine settings travel as one frozen :class:`EngineSpec` (backend, precision, device,
threads), resolved once by :func:`resolve_engine` (``auto`` included, and logged) and passed
down; each runtime is one runner module (:mod:`st_multitask.runtime.runners`). The fast path
(``onnx`` and ``openvino``) runs an exported graph with ``tokenizers`` and numpy around it, and
never imports torch, transformers or sentence-transformers. This module imports no runtime itself.

    >>> spec = resolve_engine("auto", "fp32", device="cpu", threads=1)
    >>> spec.backend in BACKENDS, spec.precision, spec.threads
    (True, 'fp32', 1)
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ..errors import ExportError, Hint, InputError, ModelLoadError, RuntimeUnavailableError

T = TypeVar("T")
logger = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "BACKEND_CHOICES",
    "FAST_BACKENDS",
    "PRECISIONS",
    "BackendChoice",
    "EngineSpec",
    "backend_installed",
    "bf16_support",
    "load_on",
    "not_installed",
    "resolve_backend",
    "resolve_engine",
    "runtime_threads",
    "set_threads",
]

BACKENDS = ("torch", "onnx", "openvino")
FAST_BACKENDS = ("onnx", "openvino")
BACKEND_CHOICES = ("auto", *BACKENDS)
PRECISIONS = ("fp32", "bf16", "int8")

# the module each backend imports, and the pip command that installs it
_MODULES = {"torch": "torch", "onnx": "onnxruntime", "openvino": "openvino"}
_PIP = {
    "torch": "pip install torch==2.13.0 sentence-transformers",
    "onnx": "pip install 'st-multitask[onnx]' (onnxruntime; exporting also needs torch and onnx)",
    "openvino": "pip install 'st-multitask[openvino]' (openvino and nncf)",
}
# auto's order among the fast runtimes, per precision. Measured by benchmarks/backend_speed.py on a
# 2-core AVX2 CPU: ONNX Runtime and OpenVINO run fp32 at the same speed, ONNX Runtime starts faster
# and runs int8 faster; bf16 runs on OpenVINO only (ONNX Runtime's CPU provider has no bf16 kernels).
_AUTO_ORDER = {"fp32": ("onnx", "openvino"), "int8": ("onnx", "openvino"), "bf16": ("openvino",)}


_THREADS = {"count": 0}  # deprecated process default, read only where a spec names no threads


def set_threads(count: int | None) -> None:
    """Deprecated: pass ``threads=`` to :func:`st_multitask.load` (part of the
    :class:`EngineSpec`). Sets the thread count of specs resolved without one from now on."""
    warnings.warn(
        "set_threads() is deprecated: pass threads= to st_multitask.load() (part of the EngineSpec).",
        DeprecationWarning,
        stacklevel=2,
    )
    _check_threads(count)
    _THREADS["count"] = count or 0


def runtime_threads() -> int:
    """Deprecated: the thread count :func:`set_threads` set (0: the runtime's default)."""
    return _THREADS["count"]


def _check_threads(count: object) -> None:
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise InputError(f"threads must be a positive integer or None, got {count!r}.")


@dataclass(frozen=True)
class EngineSpec:
    """A resolved engine: ``backend`` in :data:`BACKENDS`, ``precision`` in :data:`PRECISIONS`,
    the torch ``device`` (``None``: cuda when available; the fast runtimes run on the CPU) and the
    runtime's ``threads`` (0: its default, one a physical core). Made by :func:`resolve_engine`.

    >>> EngineSpec("onnx", "int8", threads=2).describe()
    'onnx int8, 2 threads'
    """

    backend: str
    precision: str
    device: str | None = None
    threads: int = 0
    auto: bool = field(default=False, compare=False)  # chosen by "auto" rather than named
    # whether the runtime's idle threads spin (busy-wait) for the next op: fastest for one caller
    # that owns the cores; a server turns it off so its waiting threads leave the event loop a core
    spin: bool = True

    @property
    def fast(self) -> bool:
        return self.backend in FAST_BACKENDS

    def describe(self) -> str:
        """How logs and ``info()`` name the engine."""
        threads = f", {self.threads} thread{'s' * (self.threads != 1)}" if self.threads else ""
        device = f" on {self.device}" if self.device and self.backend == "torch" else ""
        spin = "" if self.spin or self.backend == "torch" else ", no spinning"
        return f"{self.backend} {self.precision}{device}{threads}{spin}{' (auto)' if self.auto else ''}"


BackendChoice = EngineSpec  # the earlier name of the spec


def backend_installed(backend: str) -> bool:
    """Whether the runtime of ``backend`` can be imported (checked without importing it)."""
    return importlib.util.find_spec(_MODULES[backend]) is not None


def not_installed(backend: str) -> RuntimeUnavailableError:
    """The error for a runtime that is not installed, with the pip command that installs it."""
    return RuntimeUnavailableError(f"The {backend} backend is not installed: {_PIP[backend]}.")


def bf16_support() -> tuple[bool, str]:
    """(supported, reason): whether OpenVINO can run bf16 on this CPU, and what it lacks if not."""
    if not backend_installed("openvino"):
        return False, f"OpenVINO is not installed: {_PIP['openvino']}"
    import openvino

    capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" in capabilities:
        return True, ""
    name = openvino.Core().get_property("CPU", "FULL_DEVICE_NAME")
    return False, (
        f"this CPU ({name}) has no bf16 support: it lacks AVX512_BF16 and AMX "
        f"(OpenVINO reports {', '.join(capabilities)})."
    )


def _gpu_requested(device: str | None) -> bool:
    """True for an explicit cuda/mps device, or no device on a machine that shows an NVIDIA GPU."""
    if device:
        return not device.startswith("cpu")
    if not (Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir()):
        return False
    if not backend_installed("torch"):
        return False
    import torch  # only on a machine that has a GPU

    return bool(torch.cuda.is_available())


def resolve_engine(
    backend: str | EngineSpec | None = None,
    precision: str | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> EngineSpec:
    """Pick the engine, once. ``None`` reads ``STMT_BACKEND`` / ``STMT_PRECISION`` (default auto,
    fp32); a resolved :class:`EngineSpec` is returned as it is.

    ``auto`` is torch on a GPU (fp32; bf16 and int8 without a named GPU device go to the CPU
    runtimes), else the fastest installed fast runtime for the precision, else torch. An explicit
    backend that is not installed, an unknown name, bf16 where the hardware lacks it, or a
    precision the backend cannot run raise :class:`InputError` / :class:`RuntimeUnavailableError`
    naming the fix.
    """
    if isinstance(backend, EngineSpec):
        return backend
    _check_threads(threads)
    threads = threads if threads is not None else _THREADS["count"]
    backend = (backend or os.environ.get("STMT_BACKEND") or "auto").strip().lower()
    precision = (precision or os.environ.get("STMT_PRECISION") or "fp32").strip().lower()
    if backend not in BACKEND_CHOICES:
        raise InputError(f"Unknown backend {backend!r}. Valid: {', '.join(BACKEND_CHOICES)}.")
    if precision not in PRECISIONS:
        raise InputError(f"Unknown precision {precision!r}. Valid: {', '.join(PRECISIONS)}.")
    auto = backend == "auto"
    if auto:
        # torch on a GPU runs fp32; bf16 and int8 exist on the CPU runtimes only, so for those auto
        # picks a CPU runtime (as on a machine without a GPU) unless a GPU device was named
        if _gpu_requested(device) and (precision == "fp32" or device):
            backend = "torch"
        else:
            installed = [b for b in _AUTO_ORDER[precision] if backend_installed(b)]
            if precision == "fp32" and not installed:
                backend = "torch"
            elif not installed:
                raise RuntimeUnavailableError(
                    f"Precision {precision} needs a fast runtime and none is installed: "
                    + " or ".join(_PIP[b] for b in _AUTO_ORDER[precision])
                    + "."
                )
            else:
                backend = installed[0]
    elif not backend_installed(backend):
        raise not_installed(backend)
    if backend == "torch" and precision != "fp32":
        raise InputError(
            f"The torch backend runs fp32 only; for {precision} pass ",
            Hint("backend", "onnx"),
            " or ",
            Hint("backend", "openvino"),
            " (or ",
            Hint("backend", "auto"),
            ").",
        )
    if backend == "onnx" and precision == "bf16":
        raise InputError(
            "ONNX Runtime's CPU provider has no bf16 kernels; use ", Hint("backend", "openvino"), " for bf16."
        )
    if backend in FAST_BACKENDS and device and not device.startswith("cpu"):
        raise InputError(
            f"The {backend} backend runs on the CPU here; pass ",
            Hint("device", "cpu"),
            ", or ",
            Hint("backend", "torch"),
            f" for {device}.",
        )
    if backend == "openvino" and precision == "bf16":
        supported, reason = bf16_support()
        if not supported:
            use = (" Use ", Hint("precision", "fp32"), " or ", Hint("precision", "int8"), ".")
            raise InputError(f"bf16 is not available: {reason}", *use)
    spec = EngineSpec(backend, precision, device or None if backend == "torch" else None, threads or 0, auto)
    if auto:
        logger.info("backend auto: %s", spec.describe())
    return spec


def resolve_backend(
    backend: str | None = None, precision: str | None = None, device: str | None = None
) -> EngineSpec:
    """:func:`resolve_engine` without threads (the earlier name)."""
    return resolve_engine(backend, precision, device)


def load_on(
    choice: EngineSpec,
    what: str,
    fast: Callable[[], T],
    torch: Callable[[], T],
    check: Callable[[], object] | None = None,
) -> T:
    """The auto policy, in one place: load ``what`` on the engine ``choice`` names.

    A named fast backend runs ``fast()`` and its errors stand. Under auto, a model the fast
    runtimes cannot read (``check()`` raises :class:`ModelLoadError`: a backbone module they lack,
    a name that is not a local directory) or that does not export (:class:`ExportError`: an
    operator or head without an ONNX form) runs in torch, and a logged warning says why. Damaged
    graph files are never a reason to fall back: their error names the file.

    >>> load_on(EngineSpec("torch", "fp32"), "model", fast=lambda: "fast", torch=lambda: "torch")
    'torch'
    """
    if not choice.fast:
        return torch()
    if not choice.auto:
        return fast()
    try:
        if check is not None:
            check()
    except ModelLoadError as exc:
        logger.warning("Running %s in torch: the fast runtimes cannot read it (%s).", what, exc)
        return torch()
    try:
        return fast()
    except ExportError as exc:
        logger.warning("Running %s in torch: %s", what, exc)
        return torch()
