"Metrics checked against independent computations (pair counting, brute-force pairwise sums, closed forms)."
import math
import numpy as np
import pytest
import torch
from scipy.special import i0e
from sklearn.metrics import roc_auc_score

from deepocc.metrics import aggregate, format_mean_std, image_auroc, mean_std, pixel_auroc, uniformity


def _auroc_by_pairs(y, s):
    "AUROC as the fraction of (anomaly, normal) pairs ranked correctly, ties counting one half."
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return 100 * ((pos > neg).mean() + 0.5 * (pos == neg).mean())


def test_image_auroc_matches_pair_counting():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(size=300) + y, 1)  # rounding creates ties
    assert image_auroc(y, s) == pytest.approx(_auroc_by_pairs(y, s), abs=1e-9)
    assert image_auroc(torch.from_numpy(y), torch.from_numpy(s)) == pytest.approx(_auroc_by_pairs(y, s), abs=1e-9)
    assert image_auroc(y.astype(bool), s.tolist()) == pytest.approx(_auroc_by_pairs(y, s), abs=1e-9)


def test_image_auroc_perfect_and_reversed():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.9])
    assert image_auroc(y, s) == 100.0
    assert image_auroc(y, -s) == 0.0


def test_image_auroc_errors():
    with pytest.raises(ValueError, match='both normal'): image_auroc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match='differ in length'): image_auroc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match='NaN'): image_auroc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match='NaN or infinite'): image_auroc([0, 1], [0.1, np.inf])
    with pytest.raises(ValueError, match='0 \\(normal\\) or 1'): image_auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match='1-D'): image_auroc([[0, 1]], [[0.1, 0.2]])


def _pixel_problem(n=40, size=64, seed=0):
    "Images with one rectangular defect each (about 19 % of the pixels) and noisy maps that are higher on defects."
    rng = np.random.default_rng(seed)
    h, w = size // 2, size * 3 // 8
    masks = np.zeros((n, 1, size, size), np.uint8)
    for i in range(n):
        r, c = rng.integers(0, size - h), rng.integers(0, size - w)
        masks[i, 0, r:r + h, c:c + w] = 1
    maps = masks[:, 0].astype(np.float32) * 1.5 + rng.normal(size=(n, size, size)).astype(np.float32)
    return masks, maps


def test_pixel_auroc_exact_and_subsampled():
    masks, maps = _pixel_problem()  # 163,840 pixels
    exact = 100 * roc_auc_score(masks.reshape(-1), maps.reshape(-1))
    assert pixel_auroc(masks, maps, max_pixels=None) == pytest.approx(exact, abs=1e-9)
    assert pixel_auroc(masks, maps) == pytest.approx(exact, abs=1e-9)  # under the default 5M: no subsampling
    sub = [pixel_auroc(masks, maps, max_pixels=80_000, seed=s) for s in range(5)]
    assert all(abs(v - exact) < 0.5 for v in sub), (sub, exact)
    assert len(set(sub)) > 1  # different seeds draw different subsets
    assert pixel_auroc(torch.from_numpy(masks), torch.from_numpy(maps), max_pixels=80_000, seed=1) == sub[1]


def test_pixel_auroc_streaming_equals_arrays():
    "An iterable of batches gives the same pixels, hence the same value, as the arrays, even with reservoir compaction."
    masks, maps = _pixel_problem()
    whole = pixel_auroc(masks, maps, max_pixels=20_000, seed=3)
    batches = ((masks[i:i + 3], maps[i:i + 3]) for i in range(0, len(masks), 3))  # 12,288-pixel batches: the reservoir is compacted several times
    assert pixel_auroc(batches, max_pixels=20_000, seed=3) == pytest.approx(whole, abs=1e-9)


def test_pixel_auroc_subsample_is_unbiased():
    "Streaming image by image, the subset still covers all images evenly: its AUROC is centred on the exact one."
    rng = np.random.default_rng(0)
    masks = np.zeros((10, 32, 32), np.uint8); masks[:, :4] = 1
    strength = np.arange(10, dtype=np.float32)[:, None, None] / 3  # later images separate defects better
    maps = masks * strength + rng.normal(size=(10, 32, 32)).astype(np.float32)
    exact = pixel_auroc(masks, maps, max_pixels=None)
    first_images_only = pixel_auroc(masks[:2], maps[:2], max_pixels=None)  # what a sampler biased to early batches sees
    assert exact - first_images_only > 10
    vals = [pixel_auroc(((masks[i:i + 1], maps[i:i + 1]) for i in range(10)), max_pixels=1000, seed=s) for s in range(20)]
    assert abs(np.mean(vals) - exact) < 1.0, (np.mean(vals), exact)


def test_pixel_auroc_errors():
    masks, maps = _pixel_problem(n=4, size=16)
    with pytest.raises(ValueError, match='equal sizes'): pixel_auroc(masks, maps[:, :4])
    with pytest.raises(ValueError, match='differ in length'): pixel_auroc(masks, maps[:3])
    with pytest.raises(ValueError, match='NaN'): pixel_auroc(masks, np.where(masks[:, 0] > 0, np.nan, maps))
    with pytest.raises(ValueError, match='anomalous pixels'): pixel_auroc(np.zeros_like(masks), maps)
    with pytest.raises(TypeError, match='pair'): pixel_auroc([masks])


def _uniformity_brute(z, t=2.0):
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z)
    vals = [math.exp(-t * float(np.sum((z[i] - z[j])**2))) for i in range(n) for j in range(n) if i != j]
    return math.log(np.mean(vals))


def test_uniformity_matches_brute_force():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 5)) * np.array([3, 1, 1, 0.2, 0.2]) + 1
    for t in (0.5, 2.0):
        assert uniformity(z, t=t, chunk_size=7) == pytest.approx(_uniformity_brute(z, t), abs=1e-5)


def test_uniformity_circle_vs_cluster():
    n = 1000
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    circle = np.stack([np.cos(theta), np.sin(theta)], 1)
    expected = math.log((n * i0e(4.0) - 1) / (n - 1))  # E exp(-2‖zi-zj‖²) = e^-4·I0(4) over the circle, minus self-pairs
    assert uniformity(circle) == pytest.approx(expected, abs=1e-4)
    cluster = np.array([1.0, 0.0]) + 0.05 * np.random.default_rng(0).normal(size=(n, 2))
    assert uniformity(circle) < uniformity(cluster) < 0  # more uniform = lower
    sub = uniformity(circle, max_samples=400, seed=1)
    assert sub == pytest.approx(uniformity(circle), abs=0.02) and sub == uniformity(circle, max_samples=400, seed=1)


def test_mean_std_and_aggregate():
    assert mean_std([1.0, 2.0, 3.0, 4.0]) == pytest.approx((2.5, np.std([1, 2, 3, 4])))
    assert mean_std([1.0, 2.0, 3.0, 4.0], ddof=1)[1] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    recs = [dict(dataset='cifar10', category=c, method=m, head='kde', seed=s, auroc=a)
            for c, m, s, a in [(0, 'da', 0, 91.0), (0, 'da', 1, 93.0), (1, 'da', 0, 80.0), (0, 'rot', 0, 88.0), (0, 'da', 2, 92.0)]]
    out = aggregate(recs)
    assert [(r['category'], r['method'], r['n_seeds']) for r in out] == [(0, 'da', 3), (1, 'da', 1), (0, 'rot', 1)]
    assert out[0]['mean'] == pytest.approx(92.0) and out[0]['std'] == pytest.approx(np.std([91, 93, 92]))
    assert out[1]['std'] == 0.0
    with pytest.raises(KeyError, match="'head'"): aggregate([dict(dataset='x', category=0, method='m', auroc=1.0)])
    with pytest.raises(ValueError, match='NaN'): aggregate([dict(dataset='x', category=0, method='m', head='h', auroc=float('nan'))])
    assert format_mean_std(out[0]['mean'], out[0]['std']) == '92.0 ± 0.8'
    assert format_mean_std(95.83, 0.25, digits=2) == '95.83 ± 0.25'
