"""What every command shares: options, model loading, and turning library errors into exit code 2."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class UserError(click.ClickException):
    """A mistake in the user's input: one line on stderr, exit code 2, no traceback."""

    exit_code = 2


class StmtGroup(click.Group):
    """Runs subcommands, turning st_multitask errors into :class:`UserError`."""

    def invoke(self, ctx: click.Context) -> Any:
        from st_multitask.errors import StMultitaskError

        try:
            return super().invoke(ctx)
        except StMultitaskError as exc:
            raise UserError(str(exc)) from None
        except BrokenPipeError:  # `stmt ... | head`: the reader left, nothing to report
            import os
            import sys

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)


def note(message: str) -> None:
    """A remark for the person at the terminal (stderr, so pipes stay clean)."""
    click.echo(f"note: {message}", err=True)


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--model, --device, --batch-size."""

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
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


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


def quiet_libraries() -> None:
    """No progress bars or info logs from transformers; the CLI reports what matters itself."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("st_multitask").setLevel(logging.ERROR)


def load_model(model_name: str | None, device: str | None) -> SentenceTransformer:
    """Load the backbone quietly (no download, no progress bars from transformers)."""
    from st_multitask.backbone import cached_backbone

    quiet_libraries()  # the CLI reports truncation itself
    return cached_backbone(model_name, device)


def load_multitask(model_dir: str | None, device: str | None) -> Any:
    """The multi-task model in ``model_dir``, or the bundled default one."""
    from st_multitask.model import MultiTaskModel

    quiet_libraries()
    if model_dir is None:
        return MultiTaskModel.default(device)
    return MultiTaskModel.load(model_dir, device)


def report_reading(name: str, report: Any) -> None:
    if report.blank:
        note(f"skipped {report.blank} blank line{'s' * (report.blank != 1)} in {name}.")
    if report.replaced:
        note(
            f"replaced invalid UTF-8 bytes on {report.replaced} line{'s' * (report.replaced != 1)} of {name}."
        )


def report_truncation(count: int, model: SentenceTransformer, long: str) -> None:
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
