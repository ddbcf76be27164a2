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
