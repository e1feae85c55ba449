"""Defects the fuzzers found, each pinned by its minimal failing input."""

from __future__ import annotations

import pytest

from st_multitask.errors import InputError
from st_multitask.recipe import load_recipe


def test_recipe_not_utf8_names_the_file(tmp_path):
    """`stmt train --config` on a recipe starting with byte 0xff raised UnicodeDecodeError."""
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"\xff")
    with pytest.raises(InputError, match=r"recipe\.yaml is not valid UTF-8 \(byte 0xff at offset 0\)"):
        load_recipe(path)


def test_cli_train_recipe_not_utf8_is_one_line(run, tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"\xff")
    result = run("train", "--config", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {path} is not valid UTF-8 (byte 0xff at offset 0); save the recipe as UTF-8."
    ]
