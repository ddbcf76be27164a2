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

def _module_numbers()->dict:
    "Each library module and the number of the notebook it is exported from (its `#| default_exp` cell)."
    import json
    out = {}
    for nb in sorted((ROOT/'nbs').glob('[0-9][0-9]_*.ipynb')):
        src = next(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if ''.join(c['source']).startswith('#| default_exp'))
        out[src.split()[2]] = int(nb.name[:2])
    return out

def _deepocc_imports(tree)->list:
    "(imported deepocc module, line, inside a function) for each import of one in a module's syntax tree."
    import ast
    inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import): names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ([f'deepocc.{node.module}'] if node.module else [f'deepocc.{a.name}' for a in node.names]) if node.level else [node.module or '']
        else: continue
        out += [(n.split('.')[1], node.lineno, id(node) in inner) for n in names if n.startswith('deepocc.')]
    return out

def test_modules_import_only_earlier_modules_at_the_top():
    "Notebooks are numbered in import order: a module imports only modules numbered before it, and at the top, never inside a function."
    import ast
    nums, bad, seen = _module_numbers(), [], 0
    assert len(nums) >= 14 and nums['localize'] < nums['detector'], nums
    for mod, n in nums.items():
        for dep, line, in_function in _deepocc_imports(ast.parse((ROOT/'deepocc'/f'{mod}.py').read_text())):
            seen += 1
            if nums.get(dep, -1) >= n: bad.append(f'{mod} ({n:02d}) imports {dep} ({nums.get(dep)}), not numbered before it (line {line})')
            elif in_function: bad.append(f'{mod} imports {dep} inside a function (line {line}): import it at the top')
    assert seen > 20 and not bad, '\n'.join(bad)

def test_import_order_check_catches_a_late_or_hidden_import():
    "The check above is not vacuous: an import of a later module, or one inside a function, is reported."
    import ast
    tree = ast.parse('from .cells import run_cell\ndef f():\n    from deepocc.data import subset\n    import deepocc.heads\n')
    assert _deepocc_imports(tree) == [('cells', 1, False), ('data', 3, True), ('heads', 4, True)]
