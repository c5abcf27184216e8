"""The notebooks run, top to bottom, on the committed sample (so they never go stale)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_notebooks_are_committed_without_outputs():
    assert len(NOTEBOOKS) == 4
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") and cell.get("execution_count") is None for cell in nb.cells if cell.cell_type == "code"), path.name


def test_notebooks_are_exactly_what_their_source_builds(tmp_path):
    """notebooks/_build.py is the source: the committed files are byte for byte a fresh build (cell ids included)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build", REPO / "notebooks" / "_build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.build(tmp_path)
    for name in build.NOTEBOOKS:
        assert (tmp_path / name).read_bytes() == (REPO / "notebooks" / name).read_bytes(), f"{name}: run python notebooks/_build.py"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_on_the_sample(path: Path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    red = [o["text"] for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not red, red  # no warnings shown in red
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name}: no plot rendered inline"
