"""``stmt export``: write a model directory with an exported ONNX Runtime or OpenVINO graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._common import UserError, errors_option, note, quiet_libraries, report_reading

if TYPE_CHECKING:
    from st_multitask.readers import DecodeErrors


@click.command()
@click.option(
    "--model",
    "model_dir",
    envvar="STMT_MODEL",
    show_envvar=True,
    metavar="DIR",
    help="A st_multitask or sentence-transformers model directory [default: the bundled default model].",
)
@click.option(
    "--backend", required=True, type=click.Choice(["onnx", "openvino"]), help="Runtime of the graph."
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "int8"]),
    default="fp32",
    show_default=True,
    help="fp32: exact. int8: onnx quantises weights (dynamic), openvino calibrates on texts (static). "
    "bf16: the fp32 OpenVINO graph, run in bf16 where the CPU supports it.",
)
@click.option(
    "--calibration",
    type=click.Path(allow_dash=True),
    help="Texts, one a line, to calibrate OpenVINO int8 on [default: st_multitask's own calibration set].",
)
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="The model directory to write."
)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@errors_option
def export(
    model_dir: str | None,
    backend: str,
    precision: str,
    calibration: str | None,
    output: str,
    overwrite: bool,
    errors: DecodeErrors,
) -> None:
    """Export a model to ONNX Runtime or OpenVINO, in fp32, bf16 or int8.

    The output is a complete model directory (the backbone, the heads, and the graph in
    sentence-transformers' layout: onnx/... or openvino/...), with every graph file's sha256 in its
    manifest. Use it with --model OUTPUT --backend onnx|openvino on any command.

    \b
    Examples:
      stmt export --backend onnx --precision int8 -o default-int8
      stmt predict --model default-int8 --backend onnx --precision int8 "Apple is buying a startup."
      stmt export --model my-model --backend openvino --precision int8 --calibration texts.txt -o my-model-ov
    """
    from st_multitask.runtime import backend_installed, bf16_support, not_installed
    from st_multitask.runtime.export import export_model

    if not backend_installed(backend):
        raise not_installed(backend)
    if backend == "onnx" and precision == "bf16":
        raise UserError(
            "ONNX Runtime's CPU provider has no bf16 kernels; export bf16 with --backend openvino."
        )
    texts = None
    if calibration is not None:
        if backend != "openvino" or precision != "int8":
            raise UserError("--calibration applies to --backend openvino --precision int8 only.")
        from st_multitask.data import ReadReport, iter_texts

        report = ReadReport()
        texts = [text for _, text in iter_texts(calibration, errors=errors, fmt="lines", report=report)]
        report_reading(click.format_filename(calibration), report)
        if not texts:
            raise UserError(f"The calibration file {calibration} has no text; give one text a line.")
    if precision == "bf16":
        supported, reason = bf16_support()
        if not supported:
            note(f"{reason.split(':')[0]}: the graph will run in bf16 on CPUs that have it.")
    quiet_libraries()
    note(f"exporting to {backend} {precision} (a minute or so)...")
    path = export_model(model_dir, output, backend, precision, texts, overwrite)
    click.echo(
        f"Wrote {path} ({backend} {precision}). Use it with: --model {path} --backend {backend} --precision {precision}",
        err=True,
    )
