"""Heatmaps on ELPV before and after issue 27, on real cracks (no masks needed) and on planted defects: 3 routes, mono and poly.

For each module type and seed, the Table 3 models are trained once at the `cpu` preset (128 px; CutPaste 3-way patch model,
400 steps on 64 px crops, 32 px patches at stride 8; image-level CutPaste 3-way model, 300 steps) and every map is scored by
`deepocc.cells.real_defect_metrics` (image AUROC of the map maximum, real cracked cells of defect probability 1 vs normal
test cells; share of a normal cell's hottest 1 % of pixels on its structure) and by the pixel AUROC on `elpv-synth`:

- patch model, **before**: one GDE shared by all locations, raw maps (the previous Table 3 setting);
- patch model, **after**: one Gaussian per location, maps standardized per location by the normal training maps;
- GradCAM, as in the paper (`none`) and standardized per pixel (`standardize`);
- raw pixels: `RawPixelLocalizer` (|x − mean| / spread per pixel, smoothed with σ = 2 px), the baseline.

Each (category, seed) is stored in the JSON as soon as it finishes, and a rerun skips what is stored:

    python benchmarks/elpv_before_after.py [--categories mono poly] [--seeds 0 1 2] [--max-minutes 25]
"""
import argparse, json, time
from pathlib import Path
import torch

from deepocc.cells import load_task, fit_patch_localizer, real_defect_metrics
from deepocc.data import atomic_write_json
from deepocc.detector import OneClassDetector
from deepocc.localize import MapStandardizer, RawPixelLocalizer, gradcam_maps
from deepocc.metrics import pixel_auroc, mean_std
from deepocc.records import machine_description, git_revision

ROOT = Path(__file__).resolve().parents[1]
METRICS = ('real_map_max_auroc', 'real_image_auroc', 'real_structure_share', 'synth_pixel_auroc')


def _score(data, category, maps, model_scores=None, **info):
    "The mask-free numbers on real cracks and the pixel AUROC on planted defects of one kind of map, with its speed."
    t = time.perf_counter()
    r = real_defect_metrics(category, 128, maps, model_scores)
    r['synth_pixel_auroc'] = pixel_auroc(data.test_masks, maps(data.test))
    return dict(info, **{k: r[k] for k in METRICS}, score_s=round(time.perf_counter() - t, 1))


def one(category, seed):
    "Every route and setting on one module type and seed."
    data, rows = load_task('elpv-synth', category, 128, seed=seed), []
    det, loc, train_s = fit_patch_localizer(data, 'cutpaste_3way', 'cpu', seed, 32, 8, normalize_maps='standardize', steps=400, progress=False)
    rows.append(_score(data, category, loc.anomaly_maps, det.anomaly_score, route='patch', setting='after: per-location GDE, standardized', train_s=round(train_s, 1)))
    old = det.fit_localizer(data.train, 32, 8, per_location=False, normalize_maps=None).localizer_
    rows.append(_score(data, category, old.anomaly_maps, det.anomaly_score, route='patch', setting='before: shared GDE, raw maps', train_s=round(train_s, 1)))
    t0 = time.perf_counter()
    cam = OneClassDetector('cutpaste_3way', 'gde', 'pool', 'cpu', seed=seed, image_size=128, calibration=0, steps=300, progress=False).fit(data.train)
    cam_s, norm = round(time.perf_counter() - t0, 1), MapStandardizer('standardize').fit(gradcam_maps(cam.pretext_, data.train))
    rows.append(_score(data, category, lambda x: gradcam_maps(cam.pretext_, x), cam.anomaly_score, route='gradcam', setting='as in the paper', train_s=cam_s))
    rows.append(_score(data, category, lambda x: norm(gradcam_maps(cam.pretext_, x)), cam.anomaly_score, route='gradcam', setting='standardized', train_s=cam_s))
    raw = RawPixelLocalizer(sigma=2.0).fit(data.train)
    rows.append(_score(data, category, raw.anomaly_maps, route='raw pixels', setting='baseline', train_s=0.0))
    return [dict(r, category=category, seed=seed) for r in rows]


def summary(rows):
    "Mean ± std over seeds per (category, route, setting)."
    groups = {}
    for r in rows: groups.setdefault((r['category'], r['route'], r['setting']), []).append(r)
    out = []
    for (c, route, setting), rs in groups.items():
        t = dict(category=c, route=route, setting=setting, seeds=len(rs), train_s=round(sum(r['train_s'] for r in rs) / len(rs), 1))
        for m in METRICS:
            v = [r[m] for r in rs if r[m] is not None]
            t[m], t[m + '_std'] = mean_std(v) if v else (None, None)
        out.append(t)
    return out


def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('--categories', nargs='*', default=['mono', 'poly']); a.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    a.add_argument('--out', default=str(ROOT/'benchmarks'/'elpv_before_after.json'))
    a.add_argument('--max-minutes', type=float, default=0, help='start no new (category, seed) after this many minutes (0: no limit)')
    a = a.parse_args(argv)
    out = Path(a.out)
    res = json.loads(out.read_text()) if out.is_file() else dict(rows=[])
    t0 = time.perf_counter()
    for category in a.categories:
        for seed in a.seeds:
            if any(r['category'] == category and r['seed'] == seed for r in res['rows']): continue
            if a.max_minutes and time.perf_counter() - t0 > 60 * a.max_minutes: print('time box reached: rerun to resume'); break
            t = time.perf_counter()
            res['rows'] += one(category, seed)
            res.update(machine=machine_description(), git=git_revision(), threads=torch.get_num_threads(), table=summary(res['rows']))
            atomic_write_json(out, res)
            print(f'{category} seed {seed}: {time.perf_counter() - t:.0f} s', flush=True)
    for t in res.get('table', []): print(json.dumps({k: (round(v, 1) if isinstance(v, float) else v) for k, v in t.items()}))


if __name__ == '__main__': main()
