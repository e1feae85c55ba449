"""Choosing the engine: auto, explicit backends, precisions, and what is missing or unsupported."""

from __future__ import annotations

import pytest

from st_multitask.errors import InputError, RuntimeUnavailableError
from st_multitask.runtime import BackendChoice, bf16_support, resolve_backend


def test_auto_is_the_fastest_installed_exact_runtime_on_cpu():
    assert resolve_backend("auto", "fp32", device="cpu") == BackendChoice("onnx", "fp32")
    assert resolve_backend(None, None, device="cpu") == BackendChoice("onnx", "fp32")
    assert resolve_backend("auto", "int8", device="cpu") == BackendChoice("onnx", "int8")


def test_auto_is_torch_on_a_gpu_device():
    assert resolve_backend("auto", "fp32", device="cuda") == BackendChoice("torch", "fp32", "cuda")


def test_environment_variables_choose(monkeypatch):
    monkeypatch.setenv("STMT_BACKEND", "openvino")
    monkeypatch.setenv("STMT_PRECISION", "int8")
    assert resolve_backend(None, None, device="cpu") == BackendChoice("openvino", "int8")
    assert resolve_backend("torch", "fp32") == BackendChoice("torch", "fp32")  # arguments win


@pytest.mark.parametrize(
    ("backend", "precision", "message"),
    [
        ("tensorrt", "fp32", "Unknown backend 'tensorrt'. Valid: auto, torch, onnx, openvino."),
        ("onnx", "fp8", "Unknown precision 'fp8'. Valid: fp32, bf16, int8."),
        ("torch", "int8", "torch backend runs fp32 only"),
        ("onnx", "bf16", "no bf16 kernels; use backend='openvino'"),
    ],
)
def test_bad_choices_name_the_valid_ones(backend, precision, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolve_backend(backend, precision, device="cpu")


def test_bf16_names_what_the_cpu_lacks():
    supported, reason = bf16_support()
    if supported:
        assert resolve_backend("openvino", "bf16") == BackendChoice("openvino", "bf16")
        return
    assert "AVX512_BF16" in reason and "AMX" in reason
    with pytest.raises(InputError, match="bf16 is not available: this CPU .* lacks AVX512_BF16 and AMX"):
        resolve_backend("openvino", "bf16", device="cpu")


def test_a_backend_that_is_not_installed_gives_the_pip_command(monkeypatch):
    import st_multitask.runtime as runtime

    monkeypatch.setattr(runtime, "backend_installed", lambda backend: backend == "torch")
    with pytest.raises(RuntimeUnavailableError, match=r"pip install 'st-multitask\[openvino\]'"):
        resolve_backend("openvino", "fp32")
    assert resolve_backend("auto", "fp32", device="cpu") == BackendChoice("torch", "fp32", "cpu")
    with pytest.raises(RuntimeUnavailableError, match="int8 needs a fast runtime"):
        resolve_backend("auto", "int8", device="cpu")


def test_fast_backends_refuse_a_gpu_device():
    with pytest.raises(InputError, match="runs on the CPU here; pass device='cpu'"):
        resolve_backend("onnx", "fp32", device="cuda")
