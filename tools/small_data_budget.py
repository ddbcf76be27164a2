"""Small-data cases built from the real datasets, to choose and measure the detector's training-budget floor.

    .venv/bin/python tools/small_data_budget.py OUT.jsonl [--steps N|default] [--cases fmnist0,fmnist1,fmnist2,elpv] [--seeds 0 1 2]

Each case is a folder of image files, as a user would have them:
- `fmnistK`: 500 training images of Fashion-MNIST class K (a seeded subset of its 6000), written as 28×28 PNGs; test: a
  seeded stratified 2000 of the 10k test images (one-vs-rest), also as PNGs.
- `elpv`: every normal training cell of ELPV `mono` (300×300 PNGs); test: its normal test cells and defective cells.
The detector is `OneClassDetector(image_size=32, seed=s)` (the defaults: rotation + KDE, `cpu` preset) fitted on the
folder; the baseline is raw-pixel KDE at the same size. One JSON line per (case, method, seed): AUROC (%), fit seconds,
training steps and training images/s. Torch runs on one thread (the machine is shared).
"""
import argparse, json, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
from PIL import Image

def write_pngs(x:torch.Tensor, folder:Path, crop:int=0)->Path:
    "Write uint8 (N,1,H,W) images as PNG files (optionally cropping `crop` px of padding off each side)."
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(x):
        a = im[0].numpy()
        if crop: a = a[crop:-crop, crop:-crop]
        Image.fromarray(a).save(folder/f'{i:05d}.png')
    return folder

def build_case(name:str, root:Path)->tuple:
    "(train folder, test folder, test labels) of one small-data case."
    from deepocc.data import load_one_class, subset
    if name.startswith('fmnist'):
        d = subset(load_one_class('fmnist', int(name[6:])), max_train=500, max_test=2000, seed=0)
        crop = 2  # the loader pads the 28 px originals to 32: write the originals
    elif name == 'elpv':
        d, crop = load_one_class('elpv', 'mono'), 0
    else: raise ValueError(f'unknown case {name!r}')
    return write_pngs(d.train, root/name/'train', crop), write_pngs(d.test, root/name/'test', crop), d.test_labels.numpy()

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('out'); p.add_argument('--steps', default='default')
    p.add_argument('--cases', default='fmnist0,fmnist1,fmnist2,elpv'); p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--image-size', type=int, default=32); p.add_argument('--no-raw', action='store_true')
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    from deepocc.detector import OneClassDetector
    from sklearn.metrics import roc_auc_score
    extra = {} if a.steps == 'default' else dict(steps=int(a.steps))
    with tempfile.TemporaryDirectory() as tmp, open(a.out, 'a') as out:
        for case in a.cases.split(','):
            tr, te, y = build_case(case, Path(tmp))
            runs = ([] if a.no_raw else [('raw_pixels', 0)]) + [('default', s) for s in a.seeds]
            for method, seed in runs:
                t0 = time.time()
                if method == 'raw_pixels': det = OneClassDetector('raw_pixels', 'kde', image_size=a.image_size).fit(tr)
                else: det = OneClassDetector(image_size=a.image_size, seed=seed, progress=False, **extra).fit(tr)
                fit_s = time.time() - t0
                auc = 100 * roc_auc_score(y, det.anomaly_score(te))
                h = det.history_
                rec = dict(case=case, method=method, seed=seed, auroc=round(auc, 2), fit_s=round(fit_s, 1),
                           steps=h[-1]['step'] if h else None, images_per_s=round(h.images_per_s, 1) if h else None,
                           n_train=len(list(tr.iterdir())), steps_arg=a.steps, image_size=a.image_size)
                print(json.dumps(rec), file=out, flush=True); print(json.dumps(rec), flush=True)

if __name__ == '__main__': main()
