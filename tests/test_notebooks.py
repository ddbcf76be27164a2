"""Every notebook runs through nbdev's test runner (cells flagged slow, gpu or notest are skipped)."""
import os
from pathlib import Path
import pytest
import nbdev.test  # the module, not `test_nb`, so pytest does not collect nbdev's function as a test

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT/'nbs')))
def test_notebook(nb, monkeypatch):
    monkeypatch.chdir(nb.parent)
    ok, secs = nbdev.test.test_nb(nb, skip_flags=['notest', 'slow', 'gpu'], showerr=True)
    assert ok, f'{nb.name} failed (traceback above)'

LIBRARY = sorted((ROOT/'nbs').glob('[0-9][0-9]_*.ipynb'))

@pytest.mark.parametrize('nb', LIBRARY, ids=lambda p: p.name)
def test_library_notebook_is_committed_with_outputs(nb):
    "The notebooks are the documentation: each is committed executed (tools/run_notebooks.py), with no error output."
    import json
    cells = [c for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
    errors = [c['source'][:1] for c in cells for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert not errors, f'{nb.name} is committed with error outputs in cells starting {errors}'
    assert any(c.get('outputs') for c in cells), f'{nb.name} is committed without outputs: run `make notebooks` and commit'
