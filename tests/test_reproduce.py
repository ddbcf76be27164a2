"""The smoke preset runs every paper notebook end to end through papermill (the one batch of the suite that does: the
others run the notebooks in-process with execnb, `in_process=True`, which differs only in how a notebook is executed);
records resume; a failed notebook leaves earlier tables untouched."""
import json, shutil
from pathlib import Path
import pytest
from deepocc.reproduce import run_batch, load_preset
from deepocc.records import RecordStore
from conftest import copy_project

ROOT = Path(__file__).resolve().parent.parent

def test_smoke_batch_regenerates_everything(smoke_root):
    root, res = smoke_root
    assert all(r['ok'] for r in res), [r.get('error') for r in res if not r['ok']]
    figs = root/'runs'/'smoke'/'figures'
    for name in ('table1_semantic', 'table2_defect_image', 'table3_defect_pixel'):
        md = (figs/f'{name}.md').read_text()
        js = json.loads((figs/f'{name}.json').read_text())
        assert js['cells'] and all(0 <= c['mean'] <= 100 for c in js['cells']), name
        assert 'not available' in md, f'{name}: the missing datasets (cifar10 / mvtec) must say so'
    for png in ('fig_uniformity.png', 'fig_sphere_embeddings.png', 'fig_heatmaps.png'):
        assert (figs/png).stat().st_size > 10_000, png
    t1 = json.loads((figs/'table1_semantic.json').read_text())
    assert {c['dataset'] for c in t1['cells']} == {'digits', 'fmnist'}
    for r in res:  # each executed by papermill in its own kernel, two at a time, with the preset's parameters injected
        nb = json.loads(Path(r['output']).read_text())
        assert nb['metadata']['papermill']['parameters']['preset'] == 'smoke', r['notebook']
        sitting = nb['metadata']['papermill']['parameters']['sitting']  # the batch's stop time and status file: parameters, not environment
        assert set(sitting) == {'stop_at', 'kill_at', 'status_file', 'later_s'}, sitting
        own = r['notebook'].split('_')[0] if r['notebook'].startswith('table') else r['notebook']  # its status lines, no other's
        assert all(s['table'] == own for s in r['status']) and (r['status'] or r['notebook'] == 'fig_heatmaps'), (r['notebook'], r['status'])
        assert any('injected-parameters' in c['metadata'].get('tags', []) for c in nb['cells']), r['notebook']

def test_rerun_resumes_without_recomputing(smoke_root):
    root, _ = smoke_root
    recs = sorted((root/'runs'/'smoke'/'records').glob('*.json'))
    stamps = {p: p.stat().st_mtime_ns for p in recs}
    removed = next(p for p in recs if p.name.startswith('table1__')); removed.unlink()  # as if the batch had been killed before this record
    res = run_batch('smoke', only=['table1', 'table2', 'table3'], root=root, in_process=True)
    assert all(r['ok'] for r in res)
    assert removed.is_file(), 'the missing record is computed again'
    unchanged = [p for p in recs if p != removed and p.stat().st_mtime_ns == stamps[p]]
    assert len(unchanged) == len(recs) - 1, 'finished records are not recomputed'

def test_failed_notebook_keeps_earlier_tables(smoke_root):
    root, _ = smoke_root
    table = root/'runs'/'smoke'/'figures'/'table2_defect_image.md'
    before = table.read_text()
    bad = root/'presets'/'broken.yaml'
    bad.write_text('common: {preset: smoke, out_dir: runs/smoke/figures}\ntable2_defect_image: {datasets: [elpv], methods: {jigsaw: [gde]}}\n')
    res = run_batch('broken', only=['table2'], root=root, in_process=True)
    assert not res[0]['ok'] and 'jigsaw' in res[0]['error']
    assert table.read_text() == before

def test_unknown_preset_and_parameter(smoke_root):
    root, _ = smoke_root
    with pytest.raises(ValueError, match='valid: .*smoke'): load_preset('fast', root)
    (root/'presets'/'typo.yaml').write_text('table1_semantic: {clases: 3}\n')
    res = run_batch('typo', only=['table1'], root=root, in_process=True)
    assert not res[0]['ok'] and 'clases' in res[0]['error']

def test_killed_runner_resumes(tmp_path):
    "Kill a real batch after its first record, rerun it: it finishes the rest and keeps the finished records."
    import os, signal, subprocess, sys, time
    root = copy_project(tmp_path)
    (root/'presets'/'kill.yaml').write_text('common: {preset: smoke, out_dir: runs/kill/figures}\n'
                                            'table1_semantic: {datasets: [digits], classes: 3, max_test: 200}\n')
    code = f"from deepocc.reproduce import run_batch; run_batch('kill', only=['table1'], root={str(root)!r}, in_process=True)"
    p = subprocess.Popen([sys.executable, '-c', code], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    recs_dir = root/'runs'/'kill'/'records'
    t0 = time.time()
    while time.time() - t0 < 240 and len(list(recs_dir.glob('*.json'))) < 2: time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    first = {q.name: q.read_bytes() for q in recs_dir.glob('*.json')}
    assert first, 'the batch wrote records before it was killed'
    assert not (root/'runs'/'kill'/'figures'/'table1_semantic.md').exists(), 'killed before the table was written'
    res = run_batch('kill', only=['table1'], root=root, in_process=True)
    assert res[0]['ok']
    after = {q.name: q.read_bytes() for q in recs_dir.glob('*.json')}
    assert all(after[k] == v for k, v in first.items()), 'finished records were not recomputed'
    assert len(after) == 3 * 5, 'every (class, method, head) record of the 3 classes exists'  # 5 heads in table1's default methods
    md = (root/'runs'/'kill'/'figures'/'table1_semantic.md').read_text()
    rows = [l for l in md.splitlines() if l.startswith('| ') and not l.startswith(('| method', '| ---'))]
    assert len(rows) == 5 and not any('–' in r for r in rows), md

def test_render_only_rebuilds_tables_without_computing(smoke_root, tmp_path):
    "--render-only rebuilds every table from the stored records and computes nothing, not even a missing record."
    src, _ = smoke_root
    root = copy_project(tmp_path)
    shutil.copytree(src/'runs'/'smoke'/'records', root/'runs'/'smoke'/'records')
    recs = sorted((root/'runs'/'smoke'/'records').glob('table2__*.json'))
    recs[0].unlink()
    stamps = {p: p.stat().st_mtime_ns for p in (root/'runs'/'smoke'/'records').glob('*.json')}
    res = run_batch('smoke', only=['table'], root=root, render_only=True, in_process=True)
    assert all(r['ok'] for r in res), [r.get('error') for r in res]
    assert not recs[0].exists(), 'render-only computed a missing record'
    assert {p: p.stat().st_mtime_ns for p in (root/'runs'/'smoke'/'records').glob('*.json')} == stamps
    t1_new = (root/'runs'/'smoke'/'figures'/'table1_semantic.md').read_text()
    t1_old = (src/'runs'/'smoke'/'figures'/'table1_semantic.md').read_text()
    assert t1_new == t1_old, 'the same records render the same table (in-process here, by papermill in the smoke batch)'
    nb = json.loads(Path(res[0]['output']).read_text())  # the executed copy: injected parameters and the table as output
    assert any('injected-parameters' in c['metadata'].get('tags', []) for c in nb['cells'])
    assert any(o.get('output_type') in ('display_data', 'execute_result') for c in nb['cells'] for o in c.get('outputs', []))
    t2 = (root/'runs'/'smoke'/'figures'/'table2_defect_image.md').read_text()
    assert '–' in t2, 'the missing record shows as a dash'

def test_committed_cpu_tables_match_committed_records(tmp_path):
    "The committed cpu tables are what the committed records render (every number is auditable)."
    if not (ROOT/'records'/'cpu').is_dir(): pytest.skip('no committed cpu records yet')
    root = copy_project(tmp_path)
    shutil.copytree(ROOT/'records', root/'records')
    names = sorted({p.name.split('__')[0] for p in (ROOT/'records'/'cpu').glob('*.json')} & {'table2', 'table3'})
    assert names, 'records for table2 or table3 are committed'
    res = run_batch('cpu', only=names, root=root, render_only=True, in_process=True)
    assert all(r['ok'] for r in res), [r.get('error') for r in res]
    for n in names:  # every number and the records behind it (the notes follow the current preset, the numbers the records)
        stem = {'table2': 'table2_defect_image', 'table3': 'table3_defect_pixel'}[n]
        new, old = (json.loads((r/'figures'/f'{stem}.json').read_text()) for r in (root, ROOT))
        nums = lambda js: sorted((c['row'], c['column'], round(c['mean'], 6), None if c['std'] is None else round(c['std'], 6)) for c in js['cells'])
        assert nums(new) == nums(old), stem
        assert sorted(r['fingerprint'] for r in new['records']) == sorted(r['fingerprint'] for r in old['records']), stem
