"""notebooks/adhoc.ipynb runs top to bottom in the venv's kernel (nbclient)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from dunning.config import reload_settings

pytestmark = pytest.mark.prefect
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "adhoc.ipynb"


def _outputs(nb: nbformat.NotebookNode) -> list[Any]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def test_the_notebook_previews_runs_and_plots_the_funnel(
    prefect_server, monkeypatch: pytest.MonkeyPatch
):
    from prefect.settings import PREFECT_API_URL

    # The kernel is a child process: hand it the shared test server through the environment.
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    reload_settings()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()

    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no funnel plot"
    # the plan preview and the outcomes are shown as DataFrames (HTML tables)
    assert sum("text/html" in o.get("data", {}) for o in outputs) >= 4
    line = next(o.text for o in outputs if o.output_type == "stream" and "FUNNEL" in o.text)
    funnel = json.loads(line.split("FUNNEL ", 1)[1])
    assert funnel["considered"] >= funnel["planned"] >= funnel["sent"] > 0
    assert funnel["accepted by provider"] == funnel["sent"]
    assert funnel["delivered"] <= funnel["sent"]
