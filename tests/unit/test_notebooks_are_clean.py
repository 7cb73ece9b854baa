"""Notebooks are committed without outputs, and each one explains and declares its parameters."""
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_explains_its_parameters_then_declares_them(path):
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "markdown" and "parameter" in cells[0].source.lower()
    tagged = [index for index, cell in enumerate(cells)
              if "parameters" in cell.metadata.get("tags", [])]
    assert tagged == [1], "the second cell, and only it, is tagged `parameters`"
