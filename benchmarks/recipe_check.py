"""The `cpu` recipes on their tuning classes only, in one run: a quick check of a recipe change (under 15 minutes on 2 cores).

    .venv/bin/python benchmarks/recipe_check.py [--seeds 1] [--workers 2]

Runs the cells the `cpu` batch runs (the same settings, read from presets/cpu.yaml) for the tuning classes named
there (Fashion-MNIST tshirt_top and sandal; ELPV poly), prints AUROC per method and head with training seconds and
images/s, and writes benchmarks/recipe_check.json. Held-out classes are never run here. Speeds differ between
machines of one kind by up to 2.5x: compare the images/s of two runs on one machine, not the seconds across machines.
"""
import argparse, json, tempfile, time
from pathlib import Path
from deepocc.cells import ExperimentCell
from deepocc.engines import run_cells
from deepocc.data import atomic_write_json
from deepocc.records import RecordStore, machine_description, git_revision
from deepocc.reproduce import load_preset

ROOT = Path(__file__).resolve().parent.parent

def tuning_cells(seeds:int=1)->list:
    "The cpu batch's cells for the tuning classes of presets/cpu.yaml."
    cfg = load_preset('cpu', ROOT)
    t1, t2, tune = cfg['table1_semantic'], cfg['table2_defect_image'], cfg['tuning']
    cells = []
    for seed in range(seeds):
        for cat in tune['fmnist']:
            cells += [ExperimentCell('recipe_check', 'fmnist', cat, m, hs, seed, 'cpu') for m, hs in t1['methods'].items()]
        for cat in tune['elpv']:
            cells += [ExperimentCell('recipe_check', 'elpv', cat, m, ['kde' if m == 'raw_pixels' else 'gde'], seed, 'cpu',
                                     image_size=t2['image_size'], options={} if m == 'raw_pixels' else dict(t2.get('options') or {}))
                      for m in ('raw_pixels', 'cutpaste_3way')]
    return cells

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seeds', type=int, default=1, help='seeds per cell (the batch uses 3)')
    ap.add_argument('--workers', type=int, default=2, help='local worker processes (1 thread each)')
    a = ap.parse_args()
    cells = tuning_cells(a.seeds)
    t0 = time.time()
    recs = run_cells(cells, RecordStore(tempfile.mkdtemp(prefix='deepocc-recipe-')), 'local', workers=a.workers, threads=1)
    wall = time.time() - t0
    rows = [dict(dataset=r['dataset'], category=r['category'], method=r['method'], head=r['head'], seed=r['seed'],
                 auroc=round(r['auroc'], 2), train_s=r.get('train_s'), images_per_s=round(r['images_per_s'] or 0, 1)) for r in recs]
    print('\n| dataset | class | method | head | seed | AUROC | train s | images/s |\n|---|---|---|---|---|---|---|---|')
    for r in rows: print(f"| {r['dataset']} | {r['category']} | {r['method']} | {r['head']} | {r['seed']} | {r['auroc']:.1f} | {r['train_s']} | {r['images_per_s']} |")
    print(f'\n{len(cells)} cells in {wall:.0f} s on {a.workers} workers; {machine_description()}')
    atomic_write_json(ROOT/'benchmarks'/'recipe_check.json', dict(machine=machine_description(), git=git_revision(), workers=a.workers,
                                                                  seeds=a.seeds, wall_s=round(wall, 1), rows=rows))

if __name__ == '__main__': main()
