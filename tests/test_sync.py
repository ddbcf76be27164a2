"""Notebooks are the source: nbdev_clean then nbdev_export must leave the library and notebooks unchanged;
README.md must be what tools/make_readme.py generates from nbs/index.ipynb."""
import filecmp, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def _tree(d:Path)->dict:
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob('*')) if p.is_file() and '__pycache__' not in p.parts}

def test_clean_and_export_change_nothing(tmp_path):
    "Run nbdev_clean and nbdev_export on a copy of the project and compare every notebook and module."
    for name in ('settings.ini', 'setup.py', 'pyproject.toml'): shutil.copy(ROOT/name, tmp_path/name)
    for d in ('nbs', 'deepocc'): shutil.copytree(ROOT/d, tmp_path/d, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
    before = {d: _tree(tmp_path/d) for d in ('nbs', 'deepocc')}
    for cmd in ('nbdev_clean', 'nbdev_export'):
        r = subprocess.run([str(BIN/cmd)], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, f'{cmd} failed:\n{r.stdout}\n{r.stderr}'
    for d in ('nbs', 'deepocc'):
        after = _tree(tmp_path/d)
        changed = sorted(str(k) for k in set(before[d]) | set(after) if before[d].get(k) != after.get(k))
        assert not changed, f'{cmd}: these files change under nbdev_clean + nbdev_export (run them and commit): {changed}'

def test_readme_is_generated_from_index():
    sys.path.insert(0, str(ROOT/'tools'))
    from make_readme import render_readme
    assert (ROOT/'README.md').read_text() == render_readme(ROOT), 'README.md is stale: run `make readme`'
