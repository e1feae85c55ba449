"""GPU code paths that a CPU-only CI can still check: tensors that live on the accelerator are
simulated by a tensor type that, like a CUDA tensor, refuses to mix with CPU tensors or to become
numpy before ``.cpu()``; a machine with a GPU is simulated for the backend choice.
(tests/gpu/ runs the real thing on a CUDA machine, under the ``gpu`` marker.)"""

from __future__ import annotations

import pytest
import torch

from st_multitask.errors import InputError
from st_multitask.runtime import BackendChoice, resolve_backend


class OnAccelerator(torch.Tensor):
    """A tensor that behaves as one on a GPU: ops with a CPU tensor fail, ``.numpy()`` fails,
    ``.cpu()`` gives a plain CPU tensor."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.cpu:
            with torch._C.DisableTorchFunctionSubclass():
                return args[0].as_subclass(torch.Tensor).cpu().clone()
        if func is torch.Tensor.numpy:
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() first.")
        flat = [*args, *kwargs.values()]
        flat += [x for a in args if isinstance(a, (list, tuple)) for x in a]
        tensors = [a for a in flat if isinstance(a, torch.Tensor)]
        if any(isinstance(t, cls) for t in tensors) and any(
            not isinstance(t, cls) and t.dim() > 0 for t in tensors
        ):
            raise RuntimeError("Expected all tensors to be on the same device, but found cuda:0 and cpu!")
        return super().__torch_function__(func, types, args, kwargs)


def test_the_simulated_accelerator_tensor_refuses_what_cuda_refuses():
    gpu, cpu = torch.ones(3).as_subclass(OnAccelerator), torch.ones(3)
    with pytest.raises(RuntimeError, match="same device"):
        gpu + cpu
    with pytest.raises(TypeError, match="numpy"):
        gpu.numpy()
    assert type(gpu.cpu() + cpu) is torch.Tensor


def test_embed_tokens_with_the_backbone_on_an_accelerator(monkeypatch):
    """The backbone's outputs (attention mask, ids, token states) are on the GPU; the tokenizer's
    offsets and special-token mask are on the CPU: embed_tokens must bring them together."""
    import st_multitask.embedding as embedding
    from st_multitask.backbone import cached_backbone

    backbone = cached_backbone(None, "cpu")  # on the CPU even where a GPU is, so the simulation holds

    real = embedding.forward_batch

    def on_accelerator(model, texts, grad=False):
        out = real(model, texts, grad)
        for key in ("attention_mask", "input_ids", "token_embeddings", "sentence_embedding"):
            out[key] = out[key].as_subclass(OnAccelerator)
        return out

    expected = embedding.embed_tokens(["Apple is buying a startup.", "Hi"], model=backbone)
    monkeypatch.setattr(embedding, "forward_batch", on_accelerator)
    got = embedding.embed_tokens(["Apple is buying a startup.", "Hi"], model=backbone)
    assert (
        [t.tokens for t in got]
        == [t.tokens for t in expected]
        == [
            ["apple", "is", "buying", "a", "startup", "."],
            ["hi"],
        ]
    )
    assert [t.offsets for t in got] == [t.offsets for t in expected]
    assert all((a.embeddings == b.embeddings).all() for a, b in zip(got, expected))


def test_auto_on_a_gpu_machine(monkeypatch):
    """fp32 runs in torch on the GPU; bf16 / int8 exist on the CPU runtimes only, so auto picks
    those (as on a machine without a GPU) unless a GPU device is named."""
    import st_multitask.runtime as runtime

    monkeypatch.setattr(runtime, "_gpu_requested", lambda device: not (device or "").startswith("cpu"))
    assert resolve_backend("auto", "fp32") == BackendChoice("torch", "fp32")
    assert resolve_backend("auto", "int8") == BackendChoice("onnx", "int8")
    assert resolve_backend("auto", "int8", device="cpu") == BackendChoice("onnx", "int8")
    with pytest.raises(InputError, match="torch backend runs fp32 only"):
        resolve_backend("auto", "int8", device="cuda")
