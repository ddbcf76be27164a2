"""How much the pixel block weighs in the default 'pool+pixels' feature, chosen on the tuning half of own_images.py only.

For each tuning task and seed one default detector is fitted (the weight does not change training), then the KDE head
is refitted on the fused features of the same fitting images with the pixel block's spread set to `w` times the learned
block's, for each `w` in WEIGHTS, and scored on the test folders. w = FUSED_PIXEL_WEIGHT reproduces the default detector's AUROC exactly (checked: w = 1 gave the
AUROCs own_images.py measured when the weight was 1).
The rule: the weight whose worst task is least below raw-pixel KDE, among those whose mean is within 0.5 of the best mean.

    python benchmarks/fused_weight.py   # about 8 min here; results stored as they finish in benchmarks/fused_weight.json
"""
import json, warnings
from pathlib import Path
import numpy as np, torch
from own_images import TASKS, build
from deepocc.data import atomic_write_json
from deepocc.detector import OneClassDetector, calibration_split
from deepocc.heads import make_head
from deepocc.metrics import image_auroc
from deepocc.records import machine_description, git_revision

OUT = Path(__file__).with_suffix('.json')
WEIGHTS = (0, 0.5, 1, 1.5, 2, 3, 4, 8)

def blocks(det, x):
    "The two L2-normalized blocks of 'pool+pixels', unscaled: the detector's own `_features` with unit block scales."
    scale, det.block_scale_ = det.block_scale_, [1.0, 1.0]
    try: z = det._features(x)
    finally: det.block_scale_ = scale
    with torch.no_grad(): n_pool = det.pretext_.features(x[:1], 'pool').shape[1]
    return z[:, :n_pool], z[:, n_pool:]

def sweep(task, seed:int, root=Path('/tmp/deepocc_own_images'))->dict:
    "AUROC of the KDE head per pixel weight, on one trained encoder (weight 1 first, as the detector was fitted then)."
    folder = build(task, root)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        det = OneClassDetector(seed=seed, progress=False).fit(folder/'train')
        x = det._prepare(folder/'train', fitting=True)[0]
        xs = [x[calibration_split(len(x), det.calibration, seed)[0]], *(det._prepare(folder/'test'/s)[0] for s in ('normal', 'abnormal'))]
    B = [blocks(det, x) for x in xs]
    sf, sp = (float(b.var(0).sum().sqrt()) for b in B[0])
    y = np.r_[np.zeros(len(xs[1])), np.ones(len(xs[2]))]
    out = {}
    for w in WEIGHTS:
        Z = [torch.cat([f / sf, w * p / sp], 1) for f, p in B]
        h = make_head('kde', seed=seed).fit(Z[0])
        out[str(w)] = image_auroc(y, np.r_[h.score(Z[1]).cpu().numpy(), h.score(Z[2]).cpu().numpy()])
    return out

def main():
    res = json.loads(OUT.read_text()) if OUT.is_file() else dict(rows=[])
    done = {(r['task'], r['seed']) for r in res['rows']}
    for task in TASKS['tuning']:
        for seed in (0, 1, 2):
            label = f'{task[0]} {task[1]}'
            if (label, seed) in done: continue
            res['rows'].append(dict(task=label, seed=seed, auroc=sweep(task, seed)))
            print(res['rows'][-1], flush=True)
            atomic_write_json(OUT, dict(res, machine=machine_description(), git=git_revision(), weights=list(WEIGHTS)))
    raw = {r['task']: r['auroc'] for r in json.loads(OUT.with_name('own_images.json').read_text())['rows'] if r['method'] == 'raw_pixels'}
    tasks = list(dict.fromkeys(r['task'] for r in res['rows']))
    mean = {w: {t: np.mean([r['auroc'][w] for r in res['rows'] if r['task'] == t]) for t in tasks} for w in map(str, WEIGHTS)}
    for w, per in mean.items():
        print(f'w {w:>3}: ' + ', '.join(f'{t} {v:.1f}' for t, v in per.items()) + f'; mean {np.mean(list(per.values())):.2f}'
              f'; worst task vs raw pixels {min(v - raw[t] for t, v in per.items()):+.1f}')
    best = max(np.mean(list(p.values())) for p in mean.values())
    pick = max((w for w, p in mean.items() if np.mean(list(p.values())) >= best - 0.5), key=lambda w: min(v - raw[t] for t, v in mean[w].items()))
    print(f'chosen: w = {pick}')

if __name__ == '__main__': main()
