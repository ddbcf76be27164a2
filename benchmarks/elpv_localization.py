"""Heatmaps on real ELPV defects, measured without masks: before and after per-location models and map normalization.

For each seed, a CutPaste 3-way patch model (the `cpu` preset, 400 steps on 64 px crops) is trained on the normal
training cells of one ELPV module type at 128 px and at 256 px, and an image-level CutPaste 3-way model (300 steps,
128 px) gives GradCAM maps. Every map is scored three ways:

- **map-max AUROC**: the image AUROC of each map's maximum, real defective cells vs normal test cells;
- **structure share**: on normal test cells, the share of each map's hottest 1 % of pixels (at the cells' own 300 px)
  that lies within 3 px of the border, a busbar or a cut corner (`deepocc.metrics.structure_mask`); the mask's own area
  share is what a map blind to the structure would score;
- **synthetic pixel AUROC**: the pixel AUROC on `elpv-synth` (the same normal cells with planted defects and masks).

Patch maps come from one GDE shared by all locations (`shared`, the CutPaste default for unaligned textures) or one
Gaussian per location (`per-loc`); each with no normalization, the per-location mean of the normal training maps
subtracted (`mean`), or standardized per location (`std`). GradCAM maps get the same normalizations.

    python benchmarks/elpv_localization.py [--category mono] [--seeds 0 1 2] [--out benchmarks/elpv_localization.json]
"""
import argparse, json, sys, time
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F

from deepocc.cells import fit_patch_localizer
from deepocc.data import load_one_class, elpv_synth_one_class, atomic_write_json
from deepocc.detector import OneClassDetector
from deepocc.localize import MapStandardizer, upsample_scores, gradcam_maps
from deepocc.metrics import image_auroc, pixel_auroc, structure_mask, hot_pixel_fraction, mean_std
from deepocc.records import machine_description, git_revision

ROOT = Path(__file__).resolve().parents[1]
NORMS = (None, 'mean', 'standardize')
PATCH_CONFIGS = [dict(size=128, patch=32, stride=8), dict(size=256, patch=32, stride=8)]


def _to300(maps): return F.interpolate(maps[:, None].float(), size=(300, 300), mode='bilinear', align_corners=False)[:, 0]


def _score(maps_test, labels, maps_synth, synth, mask300):
    "The three numbers of one kind of map."
    normal = maps_test[labels == 0]
    return dict(map_max_auroc=image_auroc(labels.numpy(), maps_test.flatten(1).amax(1).numpy()),
                structure_share=hot_pixel_fraction(_to300(normal).numpy(), mask300),
                synth_pixel_auroc=pixel_auroc(synth.test_masks, maps_synth))


def run(category='mono', seeds=(0, 1, 2), patch_steps=400, gradcam_steps=300, keep_maps_seed=0):
    rows, keep = [], {}
    full = load_one_class('elpv', category)
    mask300 = structure_mask(full.train)
    for seed in seeds:
        for cfg in PATCH_CONFIGS:
            S, p, st = cfg['size'], cfg['patch'], cfg['stride']
            data = load_one_class('elpv', category, size=S)
            synth = elpv_synth_one_class(category, size=S, seed=seed)
            t0 = time.perf_counter()
            det, _, train_s = fit_patch_localizer(data, 'cutpaste_3way', 'cpu', seed, p, st, None, False, None, steps=patch_steps, progress=False)
            for per_loc in (False, True):
                t1 = time.perf_counter()
                loc = det.fit_localizer(data.train, p, st, per_loc).localizer_
                g_train, g_test, g_syn = loc.patch_scores(data.train), loc.patch_scores(data.test), loc.patch_scores(synth.test)
                map_s = time.perf_counter() - t1
                n_img = len(data.train) + len(data.test) + len(synth.test)
                for norm in NORMS:
                    f = MapStandardizer(norm).fit(g_train) if norm else (lambda g: g)
                    up = lambda g: upsample_scores(f(g), S, p, st, p / 8)
                    mt, ms = up(g_test), up(g_syn)
                    r = dict(seed=seed, route='patch', size=S, patch=p, stride=st, gde='per-loc' if per_loc else 'shared',
                             norm=norm or 'none', train_s=round(train_s, 1), maps_s=round(map_s, 1),
                             maps_images_per_s=round(n_img / map_s, 1), **_score(mt, data.test_labels, ms, synth, mask300))
                    rows.append(r); print(json.dumps(r), flush=True)
                    if seed == keep_maps_seed: keep[f"patch {S}px {r['gde']} {r['norm']}"] = mt
        # GradCAM of the image-level model at 128 px
        data = load_one_class('elpv', category, size=128)
        synth = elpv_synth_one_class(category, size=128, seed=seed)
        t0 = time.perf_counter()
        det = OneClassDetector('cutpaste_3way', 'gde', 'pool', 'cpu', seed=seed, image_size=128, calibration=0, steps=gradcam_steps, progress=False).fit(data.train)
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        c_train, c_test, c_syn = (gradcam_maps(det.pretext_, x) for x in (data.train, data.test, synth.test))
        map_s = time.perf_counter() - t1
        for norm in NORMS:
            f = MapStandardizer(norm).fit(c_train) if norm else (lambda g: g)
            mt, ms = f(c_test), f(c_syn)
            r = dict(seed=seed, route='gradcam', size=128, patch=None, stride=None, gde=None, norm=norm or 'none',
                     train_s=round(train_s, 1), maps_s=round(map_s, 1),
                     maps_images_per_s=round((len(data.train) + len(data.test) + len(synth.test)) / map_s, 1),
                     **_score(mt, data.test_labels, ms, synth, mask300))
            rows.append(r); print(json.dumps(r), flush=True)
            if seed == keep_maps_seed: keep[f"gradcam 128px {r['norm']}"] = mt
    return rows, keep, full, float(mask300.mean() * 100)


def summary(rows):
    "Mean ± std over seeds per configuration."
    out = {}
    for r in rows:
        k = (r['route'], r['size'], r['patch'], r['stride'], r['gde'], r['norm'])
        out.setdefault(k, []).append(r)
    table = []
    for k, rs in out.items():
        t = dict(route=k[0], size=k[1], patch=k[2], stride=k[3], gde=k[4], norm=k[5], seeds=len(rs))
        for m in ('map_max_auroc', 'structure_share', 'synth_pixel_auroc', 'train_s', 'maps_s', 'maps_images_per_s'):
            t[m], t[m + '_std'] = mean_std([r[m] for r in rs])
        table.append(t)
    return table


def markdown(table, mask_share):
    lines = ['| route | size | patch/stride | GDE | normalization | map-max AUROC (real defects) | hottest 1 % on structure, % '
             f'(mask {mask_share:.0f} %) | synthetic pixel AUROC | train s | maps s (images/s) |', '|' + ' --- |' * 10]
    for t in table:
        ps = f"{t['patch']}/{t['stride']}" if t['patch'] else '–'
        lines.append(f"| {t['route']} | {t['size']} | {ps} | {t['gde'] or '–'} | {t['norm']} | {t['map_max_auroc']:.1f} ± {t['map_max_auroc_std']:.1f} "
                     f"| {t['structure_share']:.1f} ± {t['structure_share_std']:.1f} | {t['synth_pixel_auroc']:.1f} ± {t['synth_pixel_auroc_std']:.1f} "
                     f"| {t['train_s']:.0f} | {t['maps_s']:.0f} ({t['maps_images_per_s']:.0f}) |")
    return '\n'.join(lines)


def figure(keep, full, path, patch_key, cam_key, n_defect=6, n_normal=2, size=128):
    "Cracked and normal cells (seed 0) with the patch and GradCAM maps chosen."
    from deepocc.plots import heatmap_overlay, save_figure
    from matplotlib.figure import Figure
    lab = full.test_labels
    d_idx = torch.nonzero(lab == 1).flatten()
    d_idx = d_idx[torch.linspace(0, len(d_idx) - 1, n_defect).round().long()]
    n_idx = torch.nonzero(lab == 0).flatten()[:n_normal]
    idx = torch.cat([d_idx, n_idx])
    fig = Figure(figsize=(2 * len(idx), 6.4))
    axs = fig.subplots(3, len(idx))
    for j, i in enumerate(idx.tolist()):
        im = full.test[i]
        axs[0, j].imshow(im[0], cmap='gray'); axs[0, j].set_title(f"{'defective' if lab[i] else 'normal'} #{i}", fontsize=8)
        for r, key in ((1, patch_key), (2, cam_key)):
            m = _to300(keep[key][i:i + 1])[0]
            allm = keep[key]
            axs[r, j].imshow(heatmap_overlay(im, m, vmin=float(allm.min()), vmax=float(allm.max())))
        for r in range(3): axs[r, j].set_xticks([]); axs[r, j].set_yticks([])
    axs[1, 0].set_ylabel(patch_key, fontsize=7); axs[2, 0].set_ylabel(cam_key, fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('--category', default='mono'); a.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    a.add_argument('--out', default=str(ROOT/'benchmarks'/'elpv_localization.json'))
    a.add_argument('--figure', default=str(ROOT/'figures'/'elpv_real_defects.png'))
    a.add_argument('--patch-key', default='patch 256px per-loc standardize'); a.add_argument('--cam-key', default='gradcam 128px standardize')
    a = a.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.perf_counter()
    rows, keep, full, mask_share = run(a.category, a.seeds)
    table = summary(rows)
    md = markdown(table, mask_share)
    print(md)
    atomic_write_json(a.out, dict(category=a.category, seeds=a.seeds, machine=machine_description(), git=git_revision(),
                                  threads=torch.get_num_threads(), mask_share=mask_share, seconds=round(time.perf_counter() - t0),
                                  rows=rows, table=table, markdown=md))
    if a.figure: figure(keep, full, a.figure, a.patch_key, a.cam_key)
    return table


if __name__ == '__main__': main()
