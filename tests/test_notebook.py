"""examples/quickstart.ipynb runs from top to bottom in a real Jupyter kernel, and its answers are right."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[1] / "examples" / "quickstart.ipynb"

#: Run after the notebook's own cells, in its kernel: what a reader should have seen, checked.
CHECKS = """
answers = article.predict("addition", "linear", [[9, 90], [3, 4]])
assert len(answers) == 6 and ((answers["y_pred"] - answers["y_true"]).abs() < 1e-2).all(), answers
assert sorted(answers["y_true"].unique()) == [7.0, 99.0]
assert set(families.results["model"]) == {"linear", "mlp", "mlp_tanh", "nalu", "poly_ridge"}
assert (families.path / "index.html").is_file() and again.results.equals(families.results)
assert (mine.probes["y_true"] == 2 * 5.0 - 3.0 + 1).all()
"""


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_the_quickstart_notebook_runs_and_answers_right(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(CHECKS))
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors, errors
    shown = {cell.source.strip(): cell.outputs for cell in notebook.cells if cell.cell_type == "code"}
    # The progress bar reached the reader: a kernel's stderr is no terminal, yet tqdm's bar is drawn there.
    [article] = [outputs for source, outputs in shown.items() if source.startswith("article = ")]
    progress = "".join(o.text for o in article if o.output_type == "stream")
    assert "training (3 seeds per cell)" in progress and "1/1" in progress, progress
    inline = [o for o in shown["families"] if o.output_type == "execute_result"]
    assert inline and "<svg" in inline[0].data["text/html"] and "<table" in inline[0].data["text/html"]
    assert (tmp_path / "reports" / "notebook").is_dir()  # where the notebook said its runs go
