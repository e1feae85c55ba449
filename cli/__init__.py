"""The ``stmt`` command line: a thin layer that turns arguments into st_multitask library calls.

Commands live one per module and are imported only when run, so ``stmt --help`` stays instant
(torch and sentence-transformers are never imported for it).
"""

from __future__ import annotations

import importlib

import click

from st_multitask import __version__

from ._common import StmtGroup

# command name -> (module, function, one-line help shown in `stmt --help`)
COMMANDS = {
    "embed": ("embed", "embed", "Embed texts into vectors (.npy, .parquet, .csv, .jsonl)."),
    "similarity": ("similarity", "similarity", "Compare the lines of two files by cosine similarity."),
    "search": ("search", "search", "Semantic search of a corpus file (or an index) for queries."),
    "index": ("index", "index", "Build, grow and describe a persistent vector index for search --index."),
    "predict": ("predict", "predict", "Predict every task (labels, entities) of a multi-task model."),
    "info": ("info", "info", "Describe a multi-task model: backbone, heads, labels."),
    "train": ("train", "train", "Train heads (and the backbone) from a recipe, jointly or in sequence."),
    "evaluate": ("evaluate", "evaluate", "Score one task of a model on labelled data."),
    "export": ("export", "export", "Export a model to ONNX Runtime or OpenVINO (fp32, bf16, int8)."),
    "serve": ("serve", "serve", "Serve embeddings, predictions, similarity and search over HTTP."),
}


class LazyGroup(StmtGroup):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="stmt")
def main() -> None:
    """Sentence embeddings, similarity and multi-task prediction on sentence-transformers.

    The default model is the packaged all-MiniLM-L6-v2; it loads offline. Pass --model (or set
    STMT_MODEL) to use another local model directory.

    \b
    Examples:
      stmt similarity examples/a.txt examples/b.txt
      stmt embed examples/a.txt -o vectors.npy
      echo "a pet animal" | stmt search --corpus examples/b.txt
    """


__all__ = ["main"]
