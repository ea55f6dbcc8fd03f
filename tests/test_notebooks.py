"""The notebooks execute: the exercise walkthrough on a fresh and on a solved workspace, and examples/notebooks/.

Each notebook runs in a fresh kernel of *this* interpreter (a kernelspec written
to a temporary JUPYTER_PATH, so a user's own "python3" kernel cannot be picked
up), with PYTHONPATH pointing at the package under test; a first injected cell
asserts that the kernel imports minivgg from this checkout. Skips cleanly
without nbformat, nbclient or ipykernel (the ``notebook`` extra).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

from minivgg.exercises import new_workspace  # noqa: E402

from test_exercises import SOLUTION  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
KERNEL = "minivgg-pytest"
#: The example notebooks that train (a few seconds each on a quiet machine, much more on a busy one).
SLOW_EXAMPLES = {"02_training_and_ensembles.ipynb", "03_fc7_transfer.ipynb"}


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """Environment for the kernel: our kernelspec first on JUPYTER_PATH, this checkout first on PYTHONPATH."""
    spec_dir = tmp_path_factory.mktemp("jupyter") / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "minivgg tests", "language": "python"}))
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join([str(spec_dir.parents[1])] + [p for p in [env.get("JUPYTER_PATH")] if p])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.pop("MPLBACKEND", None)  # the kernel's inline backend is what puts the plots in the notebook
    return env


def execute(path: Path, env: dict, cwd: Path) -> list[dict]:
    """Run the notebook at ``path`` in ``cwd``; return its code cells (outputs included). Fails on a cell error."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    probe = nbformat.v4.new_code_cell(
        "import minivgg, pathlib\n"
        f"assert pathlib.Path(minivgg.__file__).resolve().is_relative_to({str(ROOT)!r}), minivgg.__file__\n"
        "print('minivgg from', minivgg.__file__)")
    nb.cells.insert(0, probe)
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]  # the kernelspec lookup happens in this process
    try:
        client = nbclient.NotebookClient(nb, timeout=600, kernel_name=KERNEL, allow_errors=False,
                                         resources={"metadata": {"path": str(cwd)}})
        client.execute(env=env)
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert str(ROOT) in _text(cells[0])
    return cells[1:]


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _images(cells) -> int:
    return sum("image/png" in o.get("data", {}) for c in cells for o in c.outputs if o.output_type == "display_data")


def _statuses(text: str) -> dict[str, str]:
    """``{exercise: status}`` from the grade tables printed in the notebook."""
    return dict(re.findall(r"^(affine|relu|conv|max_pool|softmax) +(PASS|FAIL|NOT IMPLEMENTED)$", text, re.M))


def test_walkthrough_is_valid_nbformat_without_outputs(tmp_path):
    new_workspace(tmp_path / "ws")
    nb = nbformat.read(tmp_path / "ws" / "walkthrough.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    sources = "\n".join(c.source for c in code)
    for name in ("affine", "relu", "conv", "max_pool", "softmax"):
        assert f'check("{name}")' in sources


def test_walkthrough_on_a_fresh_workspace_says_not_implemented(tmp_path, kernel_env):
    ws = tmp_path / "ws"
    new_workspace(ws)
    cells = execute(ws / "walkthrough.ipynb", kernel_env, ws)
    text = "\n".join(_text(c) for c in cells)
    assert _statuses(text) == dict.fromkeys(["affine", "relu", "conv", "max_pool", "softmax"], "NOT IMPLEMENTED")
    assert "nothing to plot yet" in text and "training needs every exercise to PASS first" in text
    assert _images(cells) == 0


def test_walkthrough_on_the_correct_solution_passes_and_plots(tmp_path, kernel_env):
    ws = tmp_path / "ws"
    new_workspace(ws)
    (ws / "layers.py").write_text(SOLUTION)
    cells = execute(ws / "walkthrough.ipynb", kernel_env, ws)
    text = "\n".join(_text(c) for c in cells)
    assert _statuses(text) == dict.fromkeys(["affine", "relu", "conv", "max_pool", "softmax"], "PASS")
    assert "NOT IMPLEMENTED" not in text and "FAIL" not in text
    assert re.search(r"300 steps in [0-9.]+ s: validation accuracy [0-9.]+%", text)
    assert _images(cells) == 6  # five gradient-check plots and the training figure


@pytest.mark.slow
def test_walkthrough_shows_a_planted_bug_as_fail(tmp_path, kernel_env):
    ws = tmp_path / "ws"
    new_workspace(ws)
    (ws / "layers.py").write_text(SOLUTION.replace("dx /= N", "dx /= 1"))
    cells = execute(ws / "walkthrough.ipynb", kernel_env, ws)
    text = "\n".join(_text(c) for c in cells)
    assert _statuses(text)["softmax"] == "FAIL" and "constant factor" in text
    assert "training needs every exercise to PASS first" in text and "softmax FAIL" in text


def test_example_notebooks_are_stored_without_outputs():
    assert len(EXAMPLES) >= 3
    for path in EXAMPLES:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for c in nb.cells:
            if c.cell_type == "code":
                assert c.outputs == [] and c.execution_count is None, f"{path.name}: clear the outputs before committing"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name, marks=[pytest.mark.slow] if p.name in SLOW_EXAMPLES else [])
                                  for p in EXAMPLES])
def test_example_notebook_executes(path, kernel_env, tmp_path):
    cells = execute(path, kernel_env, path.parent)
    assert _images(cells) >= 1
    text = "\n".join(_text(c) for c in cells)
    if path.name.startswith("01"):
        assert "138,357,544" in text and "measured by backprop (7, 7), analytic 7" in text
    if path.name.startswith("02"):
        assert "ensemble (mean softmax)" in text
    if path.name.startswith("03"):
        assert "features of the trained network" in text


def test_a_cell_error_fails_the_run(tmp_path, kernel_env):
    """Negative control for ``execute``: a raising cell is a test failure, not a silently stored traceback."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('before')"),
                                         nbformat.v4.new_code_cell("raise ValueError('planted cell error')")])
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="planted cell error"):
        execute(path, kernel_env, tmp_path)
