"""A long batch runs in sittings: --max-minutes stops starting cells, every table is still rendered, the next run resumes;
fingerprints change only when the computation can (code, not docstrings; library versions); --plan computes nothing."""
import json, shutil, subprocess, sys, time
from functools import partial
from pathlib import Path
import pytest
import deepocc, deepocc.cells
from deepocc.cells import ExperimentCell
from deepocc.engines import LocalEngine, plan_cells, run_cells
from deepocc.records import RecordStore, source_hash, environment
from deepocc.reproduce import run_batch
from conftest import copy_project

LIB = Path(deepocc.__file__).parent
BIN = Path(sys.executable).parent

def _cell(**kw):
    return ExperimentCell(**{**dict(table='t', dataset='digits', category='3', method='rotation', heads=('kde',), preset='smoke',
                                     image_size=16, max_test=100), **kw})

def _lib_copy(tmp_path)->Path:
    dst = tmp_path/'lib'
    shutil.copytree(LIB, dst, ignore=shutil.ignore_patterns('__pycache__'))
    return dst

def test_docstring_and_comment_edits_keep_records_current(tmp_path, monkeypatch):
    st = RecordStore(tmp_path/'rec')
    lib = _lib_copy(tmp_path)
    monkeypatch.setattr(deepocc.cells, 'source_hash', partial(source_hash, lib=lib))
    run_cells([_cell()], st, LocalEngine(1), echo=False)
    f = lib/'detector.py'
    text = f.read_text()
    assert '    "Train stage 1 on normal images' in text
    f.write_text('# a new comment at the top\n' + text.replace('    "Train stage 1 on normal images', '    "Fit stage 1 on normal images')
                 .replace('# %% ', '# %%  '))
    plan = plan_cells([_cell()], st)
    assert len(plan['fresh']) == 1 and not plan['todo'], plan['stale']

@pytest.mark.parametrize('module,old,new', [('heads', 'ShrunkCovariance', 'LedoitWolf'),  # a changed name
                                            ('detector', '\nclass OneClassDetector', '\n_EXTRA = 1\nclass OneClassDetector')])  # a new statement
def test_code_change_makes_records_stale_naming_the_module(tmp_path, monkeypatch, module, old, new):
    st = RecordStore(tmp_path/'rec')
    lib = _lib_copy(tmp_path)
    monkeypatch.setattr(deepocc.cells, 'source_hash', partial(source_hash, lib=lib))
    run_cells([_cell()], st, LocalEngine(1), echo=False)
    f = lib/f'{module}.py'
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new, 1))
    plan = plan_cells([_cell()], st)
    assert len(plan['stale']) == 1, plan
    why = plan['stale'][0][1]
    assert [w.split(':')[0] for w in why] == [f'source.{module}'], why

def test_other_library_versions_make_records_stale(tmp_path, monkeypatch):
    st = RecordStore(tmp_path)
    rec = run_cells([_cell()], st, LocalEngine(1), echo=False)[0]
    assert rec['env'] == environment() and set(rec['env']) == {'python', 'torch', 'torchvision', 'numpy', 'scipy', 'sklearn'}
    monkeypatch.setattr(deepocc.cells, 'environment', lambda: {**environment(), 'torch': '9.9.9', 'numpy': '0.1'})
    why = plan_cells([_cell()], st)['stale'][0][1]
    assert sorted(why) == sorted([f"env.numpy: {environment()['numpy']} -> 0.1", f"env.torch: {environment()['torch']} -> 9.9.9"]), why

def test_running_cells_past_the_grace_period_leave_no_record(tmp_path):
    cells = [_cell(category=str(c), options={'steps': 400, 'batch_size': 16}) for c in range(3)]
    st, got = RecordStore(tmp_path), []
    t0 = time.time()
    left = LocalEngine(2, 1).run(plan_cells(cells, st)['todo'], lambda c, r: got.append(c), stop_at=t0 + 1, kill_at=t0 + 3)
    assert time.time() - t0 < 30, 'the killed workers did not hold the run up'
    assert not got and len(left) == 3, (got, left)
    assert not list(tmp_path.glob('*')), 'nothing written'

def _numbers(fig:Path)->dict:
    out = {}
    for p in sorted(fig.glob('table*.json')):
        js = json.loads(p.read_text())
        out[p.stem] = sorted((c['row'], c['column'], round(c['mean'], 6)) for c in js['cells'])
    return out

def test_time_boxed_sitting_then_resume(smoke_root, tmp_path):
    "A sitting stopped part-way renders every table with dashes; the next run completes it and equals an uninterrupted run."
    ref_root, _ = smoke_root
    root = copy_project(tmp_path)
    r = subprocess.run([str(BIN/'deepocc-reproduce'), '--in-process', '--preset', 'smoke', '--max-minutes', '0.05', '--grace-minutes', '0'],
                       cwd=root, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    last = [l for l in r.stdout.splitlines() if 'cells done' in l][-1]
    k, m = (int(x) for x in last.split('deepocc-reproduce: ')[1].split(' cells done')[0].split(' of '))
    assert k < m and last.endswith('run the same command again to resume'), last
    fig = root/'runs'/'smoke'/'figures'
    for name in ('table1_semantic', 'table2_defect_image', 'table3_defect_pixel', 'fig_uniformity', 'fig_heatmaps'):
        assert list(fig.glob(f'{name}.*')), f'{name} was not rendered in the sitting'
    partial_tables = [p for p in fig.glob('table*.md') if 'Partial:' in p.read_text()]
    assert partial_tables and all('–' in p.read_text() for p in partial_tables)
    recs = list((root/'runs'/'smoke'/'records').glob('*.json'))
    assert all(json.loads(p.read_text()).get('fingerprint') for p in recs), 'no partial record'
    assert not list((root/'runs'/'smoke'/'records').glob('*.tmp*')), 'no temporary file left'
    # the notebooks with records (fig_heatmaps has none: it retrains its figure's model on every computing run)
    with_records = ['--only', 'fig_uniformity', 'table']
    r2 = subprocess.run([str(BIN/'deepocc-reproduce'), '--in-process', '--preset', 'smoke', *with_records], cwd=root, capture_output=True, text=True, timeout=900)
    assert r2.returncode == 0, r2.stdout[-3000:] + r2.stderr[-3000:]
    assert f'{m} of {m} cells done' in r2.stdout, r2.stdout[-2000:]
    assert _numbers(fig) == _numbers(ref_root/'runs'/'smoke'/'figures'), 'the resumed batch renders the uninterrupted numbers'
    assert not any('Partial:' in p.read_text() for p in fig.glob('table*.md'))
    plan = subprocess.run([str(BIN/'deepocc-reproduce'), '--in-process', '--preset', 'smoke', '--plan', *with_records], cwd=root, capture_output=True, text=True, timeout=900)
    assert plan.returncode == 0 and f'total: {m} of {m} cells current' in plan.stdout, plan.stdout[-2000:]
