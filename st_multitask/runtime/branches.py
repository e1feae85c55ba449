"""Task branches: trainable copies of the backbone's top transformer layers, read by heads.

The backbone's embeddings and lower layers form a frozen *trunk*; the sentence embedding goes on
through the original top layers and pooling, so it stays the backbone's to the bit. A
:class:`Branch` is a copy of the top ``layers`` layers (initialised from them) that some heads
read instead: token heads per token, sentence heads through the backbone's own pooling (and
normalisation) of the branch's output. Fine-tuning a branch moves its heads, never the embeddings.

:func:`trunk_states` runs the backbone layer by layer with the backbone's own modules and its own
attention mask, so the original path is the same computation sentence-transformers runs.

    >>> from st_multitask.backbone import load_backbone
    >>> backbone = load_backbone()
    >>> branch = Branch.from_backbone(backbone, layers=2)
    >>> branch.start, len(branch.layers)
    (4, 2)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from torch import Tensor, nn

from ..errors import InputError, ModelLoadError

__all__ = [
    "BRANCH_CONFIG",
    "BRANCH_WEIGHTS",
    "Branch",
    "attention_mask_4d",
    "branch_records",
    "encoder_layers",
    "pad_states",
    "read_branches",
    "trunk_states",
]

BRANCH_CONFIG = "config.json"
BRANCH_WEIGHTS = "model.safetensors"


def encoder_layers(backbone: Any) -> nn.ModuleList:
    """The transformer layers of a sentence-transformers backbone, bottom first."""
    auto = backbone[0].auto_model
    for path in ("encoder.layer", "layers", "transformer.layer", "encoder.layers"):
        module: Any = auto
        for part in path.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if isinstance(module, nn.ModuleList):
            return module
    raise InputError("Cannot find the backbone's transformer layers (branches and unfreezing need them).")


def _layer(layer: nn.Module, states: Tensor, mask: Tensor | None) -> Tensor:
    out = layer(states, mask)
    return out[0] if isinstance(out, tuple) else out  # transformers < 5 returns a tuple


def attention_mask_4d(backbone: Any, mask: Tensor, states: Tensor) -> Tensor | None:
    """The layers' attention mask for ``mask`` (batch, seq), made by the backbone itself."""
    auto = backbone[0].auto_model
    if hasattr(auto, "_create_attention_masks"):  # transformers 5
        extended, _ = auto._create_attention_masks(
            attention_mask=mask,
            encoder_attention_mask=None,
            embedding_output=states,
            encoder_hidden_states=None,
            cache=None,
            position_ids=None,
        )
        return cast("Tensor | None", extended)
    return cast("Tensor", auto.get_extended_attention_mask(mask, mask.shape))  # pragma: no cover - 4.x


def trunk_states(backbone: Any, feeds: dict[str, Tensor], upto: int) -> tuple[list[Tensor], Tensor | None]:
    """The embeddings' output and that of each of the first ``upto`` layers (``upto + 1`` states,
    as ``hidden_states`` counts them), and the layers' attention mask, from the backbone's modules."""
    auto = backbone[0].auto_model
    states = auto.embeddings(input_ids=feeds["input_ids"], token_type_ids=feeds.get("token_type_ids"))
    extended = attention_mask_4d(backbone, feeds["attention_mask"], states)
    out = [states]
    for layer in list(encoder_layers(backbone))[:upto]:
        out.append(_layer(layer, out[-1], extended))
    return out, extended


class Branch(nn.Module):
    """A trainable copy of the backbone's top ``len(layers)`` layers, starting at layer ``start``.

    Args:
        layers: the copied layers (bottom first).
        start: the index of the first copied layer in the backbone (its input is the trunk's
            state after ``start`` layers).
    """

    def __init__(self, layers: nn.ModuleList, start: int):
        super().__init__()
        self.blocks = layers  # not "layers": exported node names must not look like the backbone's
        self.start = start

    @property
    def layers(self) -> nn.ModuleList:
        """The copied layers, bottom first."""
        return self.blocks

    @classmethod
    def from_backbone(cls, backbone: Any, layers: int) -> Branch:
        """A branch initialised from the backbone's top ``layers`` layers."""
        original = encoder_layers(backbone)
        if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= len(original):
            raise InputError(
                f"A branch copies 1 to {len(original)} top layers of the backbone; got layers={layers!r}."
            )
        start = len(original) - layers
        copies = nn.ModuleList(copy.deepcopy(original[i]) for i in range(start, len(original)))
        branch = cls(copies, start)
        branch.requires_grad_(True)  # a copy of frozen layers is still a new, trainable part
        return branch.to(next(backbone.parameters()).device)

    def check_fits(self, backbone: Any, name: str) -> Branch:
        """This branch, if it copies the top layers of a backbone as deep as ``backbone``."""
        top, depth = self.start + len(self.layers), len(encoder_layers(backbone))
        if top != depth:
            raise InputError(
                f"Branch {name!r} copies layers {self.start}..{top - 1} of a backbone with {top} layers; "
                f"this backbone has {depth}."
            )
        return self

    @property
    def depth(self) -> int:
        return len(self.layers)

    def forward(self, states: Tensor, mask: Tensor | None) -> list[Tensor]:
        """Each copied layer's output, from the trunk's state after :attr:`start` layers."""
        out = []
        for layer in self.layers:
            states = _layer(layer, states, mask)
            out.append(states)
        return out

    def config(self) -> dict[str, Any]:
        return {"layers": self.depth, "start": self.start}

    def save(self, folder: Path) -> None:
        """``config.json`` and ``model.safetensors`` (never a pickle)."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        (folder / BRANCH_CONFIG).write_text(json.dumps(self.config(), indent=2) + "\n", encoding="utf-8")
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(folder / BRANCH_WEIGHTS))

    @classmethod
    def read(cls, folder: Path, backbone: Any) -> Branch:
        """A branch saved by :meth:`save`, on ``backbone`` (whose layers give its architecture)."""
        from safetensors.torch import load_file

        try:
            config = json.loads((folder / BRANCH_CONFIG).read_text(encoding="utf-8"))
            layers, start = int(config["layers"]), int(config["start"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{folder / BRANCH_CONFIG} is not a valid branch config ({exc}).") from None
        branch = cls.from_backbone(backbone, layers)
        if branch.start != start:
            raise ModelLoadError(
                f"{folder}: the branch starts at layer {start}, but {layers} top layers of this backbone "
                f"start at {branch.start}; it was saved with another backbone."
            )
        try:
            state = load_file(str(folder / BRANCH_WEIGHTS))
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise ModelLoadError(
                f"{folder / BRANCH_WEIGHTS} is not a readable safetensors file ({exc})."
            ) from None
        missing, unexpected = branch.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelLoadError(
                f"{folder / BRANCH_WEIGHTS} does not fit the backbone's layers "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})."
            )
        return branch


def read_branches(
    path: Path, manifest: dict[str, Any], backbone: Any
) -> tuple[dict[str, Branch], dict[str, str]]:
    """The branches a model directory's manifest lists, each file checked against its sha256, and
    which branch each head is on (``{task: branch}``)."""
    from ..manifest import check_branch_files

    branches: dict[str, Branch] = {}
    branch_of: dict[str, str] = {}
    for name, info in manifest.get("branches", {}).items():
        folder = check_branch_files(Path(path), name, info)
        branch = Branch.read(folder, backbone)
        if branch.config() != {"layers": info["layers"], "start": info["start"]}:
            raise ModelLoadError(f"{folder / BRANCH_CONFIG}: layers or start differ from the manifest.")
        branches[name] = branch.eval()
        branch_of.update({task: name for task in info["heads"]})
    return branches, branch_of


def branch_records(folder: Path, branches: dict[str, Branch], branch_of: dict[str, str]) -> dict[str, Any]:
    """Save each branch under ``folder/branches/<name>/``; their manifest entries."""
    from ..manifest import sha256_file

    records: dict[str, Any] = {}
    for name, branch in branches.items():
        branch_dir = folder / "branches" / name
        branch.save(branch_dir)
        records[name] = {
            **branch.config(),
            "heads": sorted(task for task, owner in branch_of.items() if owner == name),
            "files": {f.name: sha256_file(f) for f in sorted(branch_dir.iterdir()) if f.is_file()},
        }
    return records


def pad_states(trunk: Sequence[Mapping[int, Tensor]], width: int) -> dict[int, Tensor]:
    """Per-item trunk states, each (tokens, dim), as (batch, width, dim) per layer (zeros past a
    text's tokens: the attention mask hides them)."""
    out = {}
    for layer in trunk[0]:
        rows = [states[layer] for states in trunk]
        batch = rows[0].new_zeros((len(rows), width, rows[0].shape[-1]))
        for row, value in enumerate(rows):
            batch[row, : value.shape[0]] = value
        out[layer] = batch
    return out
