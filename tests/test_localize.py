"""Patch localization against independent loop implementations (patches, upsampling, per-location GDE), end to end on
planted defects, and the synthetic defect generator's masks."""
import time
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import mahalanobis
from sklearn.covariance import LedoitWolf
from deepocc.localize import *
from deepocc.data import plant_square_defect, plant_synthetic_defects, elpv_synth_one_class

torch.set_num_threads(2)

def textures(n, size=64, seed=0, channels=1):
    "Fine-grained random textures in [0,1]."
    x = F.avg_pool2d(torch.rand(n, channels, size + 1, size + 1, generator=torch.Generator().manual_seed(seed)), 2, 1)
    return ((x - 0.5) * 2 + 0.5).clamp(0, 1)

def patch_stats(b):
    "Mean, std and mean absolute x/y differences per patch: a fixed feature function."
    dx, dy = (b[..., 1:] - b[..., :-1]).abs().mean((1, 2, 3)), (b[..., 1:, :] - b[..., :-1, :]).abs().mean((1, 2, 3))
    return torch.stack([b.mean((1, 2, 3)), b.std((1, 2, 3)), dx, dy], 1)

def test_extract_patches_matches_slicing():
    x = torch.rand(2, 3, 23, 19)
    p = extract_patches(x, 7, 3)
    gh, gw = patch_grid_size((23, 19), 7, 3)
    assert p.shape == (2, gh, gw, 3, 7, 7) == (2, 6, 5, 3, 7, 7)
    for n in range(2):
        for r in range(gh):
            for c in range(gw): assert torch.equal(p[n, r, c], x[n, :, 3*r:3*r+7, 3*c:3*c+7])

def test_patch_features_match_one_patch_at_a_time():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 5, 3), torch.nn.BatchNorm2d(5), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    x = torch.rand(3, 2, 20, 24)
    f = patch_features(net, x, 8, 4, batch_size=13)
    assert f.shape == (3, 4, 5, 5) and net.training
    net.eval()
    with torch.no_grad():
        ref = torch.stack([torch.stack([torch.stack([net(x[n:n+1, :, 4*r:4*r+8, 4*c:4*c+8])[0] for c in range(5)])
                                        for r in range(4)]) for n in range(3)])
    torch.testing.assert_close(f, ref, atol=1e-5, rtol=1e-5)

def _upsample_loop(grid, H, W, patch, stride, sigma):
    "Reference: add each patch's Gaussian-weighted score into its window, divide by the summed weights."
    r = np.arange(patch) - (patch - 1) / 2
    k = np.exp(-r**2 / (2 * sigma**2)); k = np.outer(k, k)
    num, den = np.zeros((H, W)), np.zeros((H, W))
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            num[i*stride:i*stride+patch, j*stride:j*stride+patch] += grid[i, j] * k
            den[i*stride:i*stride+patch, j*stride:j*stride+patch] += k
    out = num / np.where(den > 0, den, 1)
    cov_h, cov_w = (grid.shape[0] - 1) * stride + patch, (grid.shape[1] - 1) * stride + patch
    out[cov_h:] = out[cov_h - 1]; out[:, cov_w:] = out[:, cov_w - 1:cov_w]
    return out

@pytest.mark.parametrize('H,W,patch,stride,sigma', [(64, 64, 16, 4, 4.), (50, 45, 12, 5, 2.5), (32, 40, 8, 8, 6.)])
def test_upsample_matches_loop(H, W, patch, stride, sigma):
    gh, gw = patch_grid_size((H, W), patch, stride)
    g = torch.rand(2, gh, gw, dtype=torch.float64)
    out = upsample_scores(g.float(), (H, W), patch, stride, sigma)
    assert out.shape == (2, H, W)
    for n in range(2): np.testing.assert_allclose(out[n].numpy(), _upsample_loop(g[n].numpy(), H, W, patch, stride, sigma), atol=1e-5)

def test_upsample_constant_grid_is_constant():
    for sigma in (0.5, 4., 50., None):
        out = upsample_scores(torch.full((1, 9, 7), 0.25), (43, 35), 11, 4, sigma)
        torch.testing.assert_close(out, torch.full((1, 43, 35), 0.25))

def test_per_location_gde_matches_sklearn_mahalanobis():
    g = torch.Generator().manual_seed(0)
    tr, te = torch.randn(40, 2, 3, 6, generator=g), torch.randn(4, 2, 3, 6, generator=g)
    s = PatchGDE(per_location=True, normalize=False).fit(tr).score(te)
    for r in range(2):
        for c in range(3):
            lw = LedoitWolf().fit(tr[:, r, c].double().numpy())
            ref = [mahalanobis(v, lw.location_, lw.precision_) for v in te[:, r, c].double().numpy()]
            np.testing.assert_allclose(s[:, r, c].numpy(), ref, rtol=1e-4)

def test_localizer_finds_planted_squares():
    normal = textures(80, seed=11)
    defect, mask = plant_square_defect(textures(40, seed=12), torch.Generator().manual_seed(13), size=8, value=0., margin=8)
    clean = textures(20, seed=14)
    for per_location in (False, True):
        loc = PatchLocalizer(patch_stats, patch=16, stride=4, per_location=per_location).fit(normal)
        maps = loc.anomaly_maps(torch.cat([clean, defect]))
        masks = torch.cat([torch.zeros(20, 1, 64, 64, dtype=torch.uint8), mask])
        assert maps.shape == (60, 64, 64)
        inside = mask.flatten(1)[torch.arange(40), maps[20:].flatten(1).argmax(1)].float().mean()
        assert inside >= 0.9, inside
        try: from deepocc.metrics import pixel_auroc, image_auroc
        except ImportError: pytest.skip('deepocc.metrics not available')
        assert pixel_auroc(masks, maps) > 95
        assert image_auroc(torch.tensor([0] * 20 + [1] * 40), loc.image_scores(maps)) > 95

def test_synthetic_defect_masks_match_changed_pixels():
    x = (textures(60, size=96, seed=3, channels=3) * 150 + 60).round().to(torch.uint8)   # mid-grey textures, no clipping
    out, m = plant_synthetic_defects(x, seed=5)
    assert out.shape == x.shape and m.shape == (60, 1, 96, 96) and set(m.unique().tolist()) <= {0, 1}
    diff = (out.int() - x.int()).abs().amax(1, keepdim=True)
    assert (m.sum((1, 2, 3)) > 0).all()
    assert (diff[m.bool()] > 0).float().mean() > 0.99                      # mask pixels are changed
    far = F.max_pool2d(m.float(), 9, 1, 4) == 0
    assert (diff[far] == 0).all()                                          # pixels over 4 px from a mask pixel are not
    out2, m2 = plant_synthetic_defects(x, seed=5)
    assert torch.equal(out2, out) and torch.equal(m2, m)

def test_synthetic_defects_fast():
    x = torch.full((500, 1, 128, 128), 120, dtype=torch.uint8)
    t = time.time(); plant_synthetic_defects(x, seed=0); dt = time.time() - t
    assert dt < 5, f'{dt:.1f} s for 500 images'

def test_elpv_synth():
    pytest.importorskip('elpv_dataset')
    d = elpv_synth_one_class('mono', size=64, seed=1)
    assert d.name == 'elpv-synth' and d.synthetic and 'synthetic' in repr(d)
    assert d.test_masks.shape == (len(d.test), 1, 64, 64)
    assert d.test_masks[d.test_labels == 0].sum() == 0 and (d.test_masks[d.test_labels == 1].sum((1, 2, 3)) > 0).all()
    assert abs(d.n_anomalous_test - d.n_normal_test) <= 1

def aligned_cells(n, size=32, seed=0):
    "Aligned toy cells: a bright frame and two dark busbars at fixed places, on a fine texture."
    x = textures(n, size, seed) * 0.2 + 0.4
    x[:, :, :2], x[:, :, -2:], x[:, :, :, :2], x[:, :, :, -2:] = 0.95, 0.95, 0.95, 0.95
    x[:, :, size // 3], x[:, :, 2 * size // 3] = 0.05, 0.05
    return (x * 255).round().to(torch.uint8)

def toy_task(aligned):
    from deepocc.data import OneClassData
    tr, te = aligned_cells(48), aligned_cells(8, seed=1)
    bad, masks = te.clone(), torch.zeros(8, 1, 32, 32, dtype=torch.uint8)
    bad[:, :, 14:19, 5:10], masks[:, :, 14:19, 5:10] = 255, 1
    return OneClassData('toy', 'cells', tr, torch.cat([te, bad]), torch.tensor([0] * 8 + [1] * 8),
                        torch.cat([torch.zeros_like(masks), masks]), aligned=aligned)

def test_per_location_statistics_follow_alignment():
    "Aligned tasks (ELPV, MVTec objects in one pose) get one Gaussian per location; textures and unaligned objects a shared one."
    from deepocc.data import is_aligned, load_one_class
    from deepocc.cells import fit_patch_localizer
    assert is_aligned('elpv', 'mono') and is_aligned('elpv-synth', 'poly') and is_aligned('mvtec', 'bottle')
    assert not is_aligned('mvtec', 'carpet') and not is_aligned('mvtec', 'screw') and not is_aligned('fmnist', 'trouser')
    assert load_one_class('elpv', 'mono', size=16).aligned and not load_one_class('digits', 0).aligned
    for aligned in (True, False):
        _, loc, _ = fit_patch_localizer(toy_task(aligned), 'cutpaste_3way', 'smoke', patch=8, stride=4, progress=False)
        assert loc.per_location is aligned and loc.gde.per_location is aligned

def test_normalized_maps_are_cold_on_normal_and_hot_on_the_defect():
    "Standardized per location, a normal training image's map is near zero everywhere; a planted defect is the hottest region."
    task = toy_task(True)
    loc = PatchLocalizer(patch_stats, patch=8, stride=2, per_location=True, sigma=2.0, normalize_maps='standardize').fit(task.train)
    grid = loc.patch_scores(task.train)
    assert grid.mean(0).abs().max() < 1e-4 and (grid.std(0) - 1).abs().max() < 1e-3   # by construction, location by location
    assert grid.abs().median() < 1.0                                                    # and small for a typical normal image
    maps = loc.anomaly_maps(task.test[8:])
    m = task.test_masks[8:, 0].bool()
    assert all(m[i].flatten()[maps[i].flatten().argmax()] for i in range(8)), 'each defect holds its map maximum'
    assert all(maps[i][m[i]].mean() > 0.5 * maps[i][~m[i]].max() for i in range(8)), 'and is hot as a whole'
    raw = RawPixelLocalizer(sigma=1.0).fit(task.train)
    rmaps = raw.anomaly_maps(task.test[8:])
    assert all(m[i].flatten()[rmaps[i].flatten().argmax()] for i in range(8)), 'the raw-pixel baseline finds it too'
