"""What every command shares: options, model loading, and turning library errors into exit code 2."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from st_multitask.errors import Hint
    from st_multitask.pipeline import Pipeline
    from st_multitask.runtime import EngineSpec


class UserError(click.ClickException):
    """A mistake in the user's input: one line on stderr, exit code 2, no traceback."""

    exit_code = 2


def flag(hint: Hint) -> str:
    """A library hint as this CLI's flag: ``overwrite=True`` is ``--overwrite``, ``backend='torch'``
    is ``--backend torch``, ``model=None`` is ``leave --model out``."""
    name = "--" + hint.name.replace("_", "-")
    if hint.value is None:
        return f"{'Leave' if hint.verb[:1].isupper() else 'leave'} {name} out"
    return " ".join(part for part in (hint.verb, name, "" if hint.value is True else str(hint.value)) if part)


def one_line(message: str) -> str:
    """A message on one line: a parser's multi-line report (YAML's caret diagram) joined with spaces."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


class StmtGroup(click.Group):
    """Runs subcommands, turning st_multitask errors into :class:`UserError` (in CLI terms)."""

    def invoke(self, ctx: click.Context) -> Any:
        from st_multitask.errors import StMultitaskError

        try:
            return super().invoke(ctx)
        except StMultitaskError as exc:
            raise UserError(one_line(exc.render(flag))) from None
        except BrokenPipeError:  # `stmt ... | head`: the reader left, nothing to report
            import os
            import sys

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)


def note(message: str) -> None:
    """A remark for the person at the terminal (stderr, so pipes stay clean)."""
    click.echo(f"note: {message}", err=True)


def backend_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--backend, --precision (with STMT_BACKEND / STMT_PRECISION): the engine and its precision."""
    func = click.option(
        "--precision",
        envvar="STMT_PRECISION",
        show_envvar=True,
        type=click.Choice(["fp32", "bf16", "int8"]),
        default="fp32",
        show_default=True,
        help="fp32 is exact; bf16 (where the CPU has it) and int8 are faster, with vectors that differ "
        "slightly from sentence-transformers'.",
    )(func)
    return click.option(
        "--backend",
        envvar="STMT_BACKEND",
        show_envvar=True,
        type=click.Choice(["auto", "torch", "onnx", "openvino"]),
        default="auto",
        show_default=True,
        help="Inference engine. auto: the fastest installed exact runtime on a CPU (an exported graph, "
        "made once and cached), torch on a GPU.",
    )(func)


@dataclass(frozen=True)
class ModelChoice:
    """What --model, --device, --batch-size, --backend and --precision chose for an embedding command."""

    name: str | None  # None: the packaged all-MiniLM-L6-v2 (or, for an index, its builder)
    device: str | None
    batch_size: int
    backend: str
    precision: str

    def load(self, builder: str | None = None) -> Pipeline:
        """The embedding model: the one asked for, else ``builder`` (an index's), else the packaged one."""
        return load_pipeline(self.name or builder, self.device, self.backend, self.precision, heads=False)


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--model, --device, --batch-size, --backend, --precision, given to the command as one
    :class:`ModelChoice` named ``choice``."""

    @click.option(
        "--model",
        "model_name",
        envvar="STMT_MODEL",
        show_envvar=True,
        metavar="PATH_OR_NAME",
        help="Model directory or cached model name [default: the packaged all-MiniLM-L6-v2].",
    )
    @click.option(
        "--device",
        envvar="STMT_DEVICE",
        show_envvar=True,
        help="cpu, cuda, cuda:N, mps [default: cuda when available, else cpu].",
    )
    @click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=64,
        show_default=True,
        help="Texts per forward pass.",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        model_name: str | None,
        device: str | None,
        batch_size: int,
        backend: str,
        precision: str,
        **kwargs: Any,
    ) -> Any:
        return func(*args, choice=ModelChoice(model_name, device, batch_size, backend, precision), **kwargs)

    return backend_options(wrapper)


multitask_model_option = click.option(
    "--model",
    "model_dir",
    envvar="STMT_MODEL",
    show_envvar=True,
    metavar="DIR",
    help="A model directory saved by st_multitask [default: the bundled default model].",
)


def long_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--long",
        type=click.Choice(["truncate", "chunk"]),
        default="truncate",
        show_default=True,
        help="Texts past the model window: truncate them as the model does, or embed overlapping "
        "windows and average them.",
    )(func)


def errors_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--errors",
        type=click.Choice(["strict", "replace"]),
        default="strict",
        show_default=True,
        help="Invalid UTF-8: stop and name the line, or replace the bad bytes and go on.",
    )(func)


def quiet_libraries(torch: bool = True) -> None:
    """No progress bars or info logs from transformers; the CLI reports what matters itself.
    On the fast path transformers is never imported, so there is nothing to quiet."""
    logging.getLogger("st_multitask").setLevel(logging.ERROR)
    if torch:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()


def load_pipeline(
    model: str | None,
    device: str | None = None,
    backend: str | EngineSpec = "auto",
    precision: str = "fp32",
    heads: bool = True,
) -> Pipeline:
    """``st_multitask.load`` of ``model`` on the chosen engine, quietly (no progress bars; auto's
    fallback to torch is news). Without ``model``: the bundled default model when the command
    uses ``heads``, else the packaged all-MiniLM-L6-v2."""
    from st_multitask.backbone import DEFAULT_MODEL_NAME
    from st_multitask.loader import load
    from st_multitask.runtime import resolve_engine

    spec = resolve_engine(backend, precision, device)
    if heads and model is not None:  # a command that runs heads needs a st_multitask model directory
        from pathlib import Path

        from st_multitask.manifest import MANIFEST_NAME, read_manifest

        if not (Path(model).expanduser() / MANIFEST_NAME).is_file():
            read_manifest(Path(model).expanduser())  # names what the folder is instead; load() reads it
    quiet_libraries(torch=not spec.fast)
    logging.getLogger("st_multitask.runtime").setLevel(logging.WARNING)
    return load(model if model is not None or heads else DEFAULT_MODEL_NAME, backend=spec)


def report_reading(name: str, report: Any) -> None:
    if report.blank:
        note(f"skipped {report.blank} blank line{'s' * (report.blank != 1)} in {name}.")
    if report.replaced:
        note(
            f"replaced invalid UTF-8 bytes on {report.replaced} line{'s' * (report.replaced != 1)} of {name}."
        )


def report_truncation(count: int, model: Pipeline, long: str) -> None:
    if count and long == "truncate":
        note(
            f"{count} text{'s were' if count != 1 else ' was'} longer than the model window "
            f"({model.max_seq_length} tokens) and {'were' if count != 1 else 'was'} truncated; "
            "pass --long chunk to embed them whole."
        )
    elif count:
        note(
            f"{count} text{'s' * (count != 1)} longer than the model window were embedded in overlapping windows."
        )
