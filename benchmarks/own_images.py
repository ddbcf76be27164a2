"""The default detector on folders nobody tuned on: semantic and defect tasks written as image files, vs raw-pixel KDE.

Each task is a folder a user could have: `train/` (normal images), `test/normal/` and `test/abnormal/`, written as
PNG files from data on this machine. Semantic tasks (Fashion-MNIST and scikit-learn's digits, one class vs the rest)
get a few hundred training images of **mixed sizes and modes** (each image resized to its own random height and width,
saved as grayscale or RGB); defect tasks are ELPV cells (300 px) of one module type. The tasks are split in two
halves before anything is run: the defaults are chosen on the `tuning` half and the `reported` half is reported apart.

For each task and seed the script fits `OneClassDetector(seed=s, **variant)` (the defaults unless a variant is given)
and `OneClassDetector('raw_pixels', 'kde')` on the folder, and reports the AUROC on the test folders, the fit
seconds and the false-alarm rate on the test normals (images the detector never saw) at thresholds calibrated for
1 %, 5 % and 10 % (`calibration_scores_` with `conformal_threshold`).

    python benchmarks/own_images.py [--half tuning|reported|all] [--seeds 0 1 2] [--max-minutes 25] [--variant '{"feature": "pool"}' --name pool]

Every result is stored in the JSON as it finishes (benchmarks/own_images.json for the defaults) and a rerun skips stored ones.
"""
import argparse, json, time, warnings
from pathlib import Path
import numpy as np
import torch
from PIL import Image

from deepocc.data import load_one_class, subset, atomic_write_json
from deepocc.detector import OneClassDetector, conformal_threshold
from deepocc.metrics import image_auroc, mean_std
from deepocc.records import machine_description, git_revision

ROOT = Path(__file__).resolve().parents[1]
# (dataset, category, training images, test normals, test anomalies); chosen before any run, tuning half first
TASKS = {'tuning': [('fmnist', 'pullover', 300, 200, 200), ('fmnist', 'bag', 300, 200, 200), ('digits', '3', 120, 60, 150),
                    ('elpv', 'poly', 300, 200, 200)],
         'reported': [('fmnist', 'coat', 300, 200, 200), ('fmnist', 'sneaker', 300, 200, 200), ('digits', '8', 120, 60, 150),
                      ('elpv', 'mono', 300, 176, 176)]}
RATES = (0.01, 0.05, 0.10)


def _write(x, folder, rng, mixed):
    "uint8 (N,1,H,W) images as PNG files; `mixed`: each one at its own random size, grayscale or RGB."
    folder.mkdir(parents=True, exist_ok=True)
    H = x.shape[-1]
    lo, hi = (int(H * 0.85) if H > 16 else 16), (int(H * 1.7) if H > 16 else 32)
    for i, im in enumerate(x[:, 0].numpy()):
        p = Image.fromarray(im, 'L')
        if mixed:
            p = p.resize((int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))), Image.BILINEAR)
            if rng.random() < 0.5: p = p.convert('RGB')
        p.save(folder/f'{i:04d}.png')


def build(task, root:Path)->Path:
    "The task's folder (written once)."
    ds, cat, n_tr, n_norm, n_anom = task
    d = root/f'{ds}_{cat}'
    if (d/'done').is_file(): return d
    data = load_one_class(ds, cat)
    g = torch.Generator().manual_seed(0)
    tr = data.train[torch.randperm(len(data.train), generator=g)[:n_tr]]
    norm, anom = data.test[data.test_labels == 0], data.test[data.test_labels == 1]
    norm, anom = norm[torch.randperm(len(norm), generator=g)[:n_norm]], anom[torch.randperm(len(anom), generator=g)[:n_anom]]
    rng = np.random.default_rng(0)
    mixed = ds != 'elpv'
    for x, sub in ((tr, 'train'), (norm, 'test/normal'), (anom, 'test/abnormal')): _write(x, d/sub, rng, mixed)
    (d/'done').write_text('ok')
    return d


def evaluate(folder:Path, params:dict, seed:int)->dict:
    "Fit on train/, score test/; AUROC, fit seconds, false-alarm rates on the test normals."
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        det = OneClassDetector(**{'seed': seed, 'progress': False, **params}).fit(folder/'train')
    fit_s = time.perf_counter() - t0
    sn, sa = det.anomaly_score(folder/'test'/'normal'), det.anomaly_score(folder/'test'/'abnormal')
    auroc = image_auroc(np.r_[np.zeros(len(sn)), np.ones(len(sa))], np.r_[sn, sa])
    cal = det.calibration_scores_
    fa = {f'fa{int(r * 100)}': float(100 * np.mean(sn > conformal_threshold(cal, r))) for r in RATES} if cal is not None else {}
    ips = round(float(det.history_.images_per_s)) if det.history_ is not None and len(det.history_) else None  # training images/s
    return dict(auroc=auroc, fit_s=round(fit_s, 1), images_per_s=ips, size='x'.join(map(str, det.input_shape_[1:])), **fa)


def run(halves=('tuning', 'reported'), seeds=(0, 1, 2), variant=None, name='default', root=Path('/tmp/deepocc_own_images'), raw=True,
        only=None, out=None, max_minutes=0):
    "Every (task, method, seed) result, each stored in `out` as it finishes; results already in `out` are skipped."
    res = json.loads(Path(out).read_text()) if out and Path(out).is_file() else dict(rows=[])
    rows, t0 = res['rows'], time.perf_counter()
    done = {(r['task'], r['method'], r['seed']) for r in rows}
    for half in halves:
        for task in TASKS[half]:
            label = f'{task[0]} {task[1]}'
            if only and label not in only: continue
            todo = [(name, variant or {}, s) for s in seeds] + ([('raw_pixels', dict(pretext='raw_pixels', head='kde'), 0)] if raw else [])
            for method, params, s in todo:
                if (label, method, s) in done: continue
                if max_minutes and time.perf_counter() - t0 > 60 * max_minutes: print('time box reached: rerun to resume'); return rows
                r = dict(half=half, task=label, method=method, seed=s, **evaluate(build(task, root), params, s))
                rows.append(r); done.add((label, method, s)); print(json.dumps(r), flush=True)
                if out: atomic_write_json(out, dict(res, machine=machine_description(), git=git_revision(), threads=torch.get_num_threads(),
                                                    variant=variant, rows=rows, markdown=table(rows)))
    return rows


def table(rows)->str:
    "Markdown: per task, the detector's AUROC per seed, mean ± std, raw-pixel KDE, fit s, false alarms; then half means."
    out = ['| half | task | method | AUROC per seed | mean ± std | raw-pixel KDE | Δ vs raw | fit s (mean) | training images/s | false alarms at 1 / 5 / 10 % |',
           '|' + ' --- |' * 10]
    by = {}
    for r in rows: by.setdefault((r['half'], r['task'], r['method']), []).append(r)
    halves = {}
    for (half, task, m), rs in by.items():
        if m == 'raw_pixels': continue
        raw = by.get((half, task, 'raw_pixels'), [{}])[0]
        mu, sd = mean_std([r['auroc'] for r in rs])
        fa = ' / '.join(f"{np.mean([r[k] for r in rs]):.1f}" for k in ('fa1', 'fa5', 'fa10')) if 'fa5' in rs[0] else '–'
        d = mu - raw['auroc'] if raw else float('nan')
        halves.setdefault((half, m), []).append((mu, raw.get('auroc', float('nan')), sd, [r.get('fa5', np.nan) for r in rs]))
        ips = f"{np.mean([r['images_per_s'] for r in rs]):,.0f}" if all(r.get('images_per_s') for r in rs) else '–'
        per_seed = ', '.join(f"{r['auroc']:.1f}" for r in rs)
        out.append(f"| {half} | {task} | {m} | {per_seed} | {mu:.1f} ± {sd:.1f} | "
                   f"{raw.get('auroc', float('nan')):.1f} | {d:+.1f} | {np.mean([r['fit_s'] for r in rs]):.0f} (raw {raw.get('fit_s', 0):.0f}) | {ips} | {fa} |")
    out.append('')
    for (half, m), v in halves.items():
        mu, raw = np.mean([a for a, *_ in v]), np.mean([b for _, b, *_ in v])
        fa5 = [np.mean(f) for *_, f in v]
        out.append(f"- **{half}** half, {m}: mean AUROC {mu:.1f} vs raw-pixel KDE {raw:.1f} ({mu - raw:+.1f}); largest seed std "
                   f"{max(s for *_, s, _ in v):.1f}; false alarms at 5 %: mean {np.nanmean(fa5):.1f} %, worst task {np.nanmax(fa5):.1f} %")
    return '\n'.join(out)


def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('--half', default='all', choices=['tuning', 'reported', 'all'])
    a.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    a.add_argument('--variant', default=None, help='detector parameters as JSON (default: the defaults)')
    a.add_argument('--name', default='default')
    a.add_argument('--no-raw', action='store_true', help='skip the raw-pixel baseline')
    a.add_argument('--tasks', nargs='*', default=None, help="only these tasks, e.g. 'elpv poly' 'digits 3' (default: every task of the halves)")
    a.add_argument('--root', default='/tmp/deepocc_own_images', help='where the task folders are written')
    a.add_argument('--out', default=None, help='JSON results (default: benchmarks/own_images.json for the defaults on all tasks)')
    a.add_argument('--max-minutes', type=float, default=0, help='start no new result after this many minutes (0: no limit); rerun to resume')
    a = a.parse_args(argv)
    halves = ('tuning', 'reported') if a.half == 'all' else (a.half,)
    out = a.out or (str(ROOT/'benchmarks'/'own_images.json') if a.variant is None else None)
    rows = run(halves, a.seeds, json.loads(a.variant) if a.variant else None, a.name, Path(a.root), not a.no_raw, a.tasks, out, a.max_minutes)
    print(table(rows))
    return rows


if __name__ == '__main__': main()
