"Stage 2 heads checked against independent implementations (scikit-learn, numpy brute force)."
import math, subprocess, sys, textwrap
from pathlib import Path
import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import spearmanr
from sklearn.covariance import EmpiricalCovariance, LedoitWolf
from sklearn.neighbors import KernelDensity
from sklearn.svm import OneClassSVM

from deepocc.heads import (HEADS, GaussianDensityHead, KernelDensityHead, NearestNeighborHead, OneClassSVMHead,
                           make_head, rotation_builtin_score)


def _data(n=400, m=120, d=16, seed=0):
    "Clustered training features and a test set that mixes inliers and off-cluster points."
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=d) * 2
    train = centre + rng.normal(size=(n, d)) * np.linspace(0.3, 1.5, d)
    test = np.concatenate([centre + rng.normal(size=(m // 2, d)) * np.linspace(0.3, 1.5, d),
                           rng.normal(size=(m - m // 2, d)) * 2])
    return train.astype(np.float32), test.astype(np.float32)


def _unit(x): return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float64)


def _droc_gamma(x): return 10.0 / (np.var(x) * x.shape[1])


def _same_ranking(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert spearmanr(a, b).statistic > 0.9999


def test_kde_matches_sklearn_kernel_density():
    tr, te = _data()
    trn, ten = _unit(tr), _unit(te)
    gamma = _droc_gamma(trn)
    bandwidth = 1 / math.sqrt(2 * gamma)  # exp(-γ d²) = exp(-d² / (2 h²))
    log_density = KernelDensity(kernel='gaussian', bandwidth=bandwidth).fit(trn).score_samples(ten)
    head = KernelDensityHead().fit(tr)
    assert head.gamma_ == pytest.approx(gamma, rel=1e-5)
    s = head.score(te).double().numpy()
    # −γ·s = logsumexp(2γ⟨x,x_i⟩) = logsumexp(−γ‖x−x_i‖²) + 2γ = log_density + log n + (D/2)·log(2πh²) + 2γ
    n, d = trn.shape
    expected = -(log_density + math.log(n) + d / 2 * math.log(2 * math.pi * bandwidth**2) + 2 * gamma) / gamma
    np.testing.assert_allclose(s, expected, rtol=1e-4, atol=1e-4)
    _same_ranking(s, -log_density)
    blocks = KernelDensityHead(chunk_size=13, train_chunk_size=50).fit(tr).score(te).double().numpy()
    np.testing.assert_allclose(blocks, expected, rtol=1e-4, atol=1e-4)  # many blocks, combined in log space


def test_kde_unnormalized_matches_sklearn():
    tr, te = _data(d=6)
    gamma = 0.05
    log_density = KernelDensity(bandwidth=1 / math.sqrt(2 * gamma)).fit(tr.astype(np.float64)).score_samples(te)
    s = KernelDensityHead(normalize=False, gamma=gamma).fit(tr).score(te).double().numpy()
    _same_ranking(s, -log_density)


@pytest.mark.parametrize('kernel', ['rbf', 'linear'])
def test_ocsvm_matches_sklearn(kernel):
    tr, te = _data()
    trn, ten = _unit(tr), _unit(te)
    kw = dict(gamma=_droc_gamma(trn)) if kernel == 'rbf' else {}
    ref = OneClassSVM(kernel=kernel, nu=0.5, **kw).fit(trn).decision_function(ten)
    head = make_head('ocsvm' if kernel == 'rbf' else 'ocsvm_linear').fit(tr)
    s = head.score(te).double().numpy()
    np.testing.assert_allclose(s, -ref, rtol=1e-4, atol=1e-5)
    _same_ranking(s[:60], -ref[:60])  # far-off points all sit at −ρ (kernel ≈ 0): rank only the inliers


def test_gde_matches_sklearn_mahalanobis():
    tr, te = _data()
    trn, ten = _unit(tr), _unit(te)
    ref = LedoitWolf().fit(trn).mahalanobis(ten)  # squared distances
    head = GaussianDensityHead().fit(tr)
    assert head.shrinkage_ == pytest.approx(LedoitWolf().fit(trn).shrinkage_, rel=1e-6)
    s = head.score(te).double().numpy()
    np.testing.assert_allclose(s**2, ref, rtol=2e-3)
    _same_ranking(s, ref)
    emp = EmpiricalCovariance().fit(tr.astype(np.float64)).mahalanobis(te)
    s0 = GaussianDensityHead(normalize=False, shrinkage=0.0).fit(tr).score(te).double().numpy()
    np.testing.assert_allclose(s0**2, emp, rtol=2e-3)


def test_knn_matches_brute_force():
    tr, te = _data()
    trn, ten = _unit(tr), _unit(te)
    ref = np.array([1 - max(float(t @ x) for x in trn) for t in ten])
    s = NearestNeighborHead(chunk_size=17, train_chunk_size=50).fit(tr).score(te).double().numpy()
    np.testing.assert_allclose(s, ref, atol=1e-5)
    euclid = np.array([min(np.linalg.norm(t - x) for x in tr.astype(np.float64)) for t in te])
    s2 = NearestNeighborHead(normalize=False).fit(tr).score(te).double().numpy()
    np.testing.assert_allclose(s2, euclid, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize('name', list(HEADS))
def test_scale_invariance_and_planted_outlier(name):
    tr, te = _data()
    te = te.copy(); te[5] = -5 * tr.mean(0)  # opposite direction from every training feature
    s = make_head(name).fit(tr).score(te)
    assert s.shape == (len(te),) and s.dtype == torch.float32
    assert int(s.argmax()) == 5
    s_scaled = make_head(name).fit(tr * 7.5).score(te * 7.5)
    np.testing.assert_allclose(s_scaled.numpy(), s.numpy(), rtol=1e-3, atol=1e-4)


def test_images_are_flattened_and_numpy_accepted():
    tr, te = _data(d=16)
    img_tr, img_te = torch.from_numpy(tr).reshape(-1, 1, 4, 4), torch.from_numpy(te).reshape(-1, 1, 4, 4)
    for name in HEADS:
        a = make_head(name).fit(img_tr).score(img_te)
        b = make_head(name).fit(tr.astype(np.float64)).score(te)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


def test_max_train_subsample_is_seeded():
    tr, _ = _data(n=300)
    a = KernelDensityHead(max_train=100, seed=3).fit(tr)
    b = KernelDensityHead(max_train=100, seed=3).fit(tr)
    c = KernelDensityHead(max_train=100, seed=4).fit(tr)
    assert a.n_train_ == 100
    assert torch.equal(a.train_, b.train_) and not torch.equal(a.train_, c.train_)
    assert KernelDensityHead(max_train=None).fit(tr).n_train_ == 300


def test_errors():
    tr, te = _data()
    head = KernelDensityHead()
    with pytest.raises(RuntimeError, match='not fitted'): head.score(te)
    with pytest.raises(ValueError, match='shape'): head.fit(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match='x\\[None\\]'): head.fit(torch.zeros(5))
    with pytest.raises(TypeError, match='floating point'): head.fit(torch.zeros(3, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match='floating point'): head.fit(np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError, match='empty'): head.fit(torch.zeros(0, 4))
    bad = tr.copy(); bad[2, 3] = np.nan; bad[4, 0] = np.inf
    with pytest.raises(ValueError, match='2 NaN or infinite'): head.fit(bad)
    head.fit(tr)
    with pytest.raises(ValueError, match='dimension 8'): head.score(te[:, :8])
    with pytest.raises(ValueError, match='valid names: kde, ocsvm, ocsvm_linear, gde, knn'): make_head('svdd')
    with pytest.raises(ValueError, match='constant'): KernelDensityHead().fit(np.ones((5, 3), np.float32))


def test_rotation_builtin_score():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4, 4)) * 3
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    ref = 1 - np.prod([p[:, k, k] for k in range(4)], axis=0)
    np.testing.assert_allclose(rotation_builtin_score(torch.from_numpy(p)).numpy(), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rotation_builtin_score(logits, logits=True).numpy(), ref, rtol=1e-5, atol=1e-6)
    assert rotation_builtin_score(np.eye(4)[None]).item() == 0  # perfectly recognised rotations: the least anomalous
    with pytest.raises(ValueError, match='logits=True'): rotation_builtin_score(logits)
    with pytest.raises(ValueError, match='NaN'): rotation_builtin_score(np.full((1, 4, 4), np.nan))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    tr, te = _data()
    for name in HEADS:
        cpu = make_head(name).fit(tr).score(te)
        gpu = make_head(name).fit(torch.from_numpy(tr).cuda()).score(torch.from_numpy(te).cuda())
        assert gpu.is_cuda
        np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=1e-3, atol=1e-4)


_MEMORY_SCRIPT = textwrap.dedent('''
    import re, sys, time
    from pathlib import Path
    import torch
    from deepocc.heads import KernelDensityHead
    torch.set_num_threads(2)
    def peak_mb(): return int(re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text()).group(1)) / 1024
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(60_000, 512, generator=g), torch.randn(10_000, 512, generator=g)
    Path('/proc/self/clear_refs').write_text('5')  # reset the peak to the current RSS (inputs included)
    before = peak_mb()
    scores = KernelDensityHead(max_train=None).fit(train).score(test)
    assert scores.shape == (10_000,) and torch.isfinite(scores).all()
    print(peak_mb() - before)
''')


@pytest.mark.skipif(not Path('/proc/self/clear_refs').exists(), reason='needs Linux /proc peak-RSS reset')
def test_kde_memory_is_bounded():
    "KDE on 60,000×512 train vs 10,000×512 test: the 2.4 GB kernel matrix is never materialized."
    out = subprocess.run([sys.executable, '-c', _MEMORY_SCRIPT], capture_output=True, text=True, timeout=120)
    if out.returncode and 'clear_refs' in out.stderr: pytest.skip('cannot reset the peak RSS here')
    assert out.returncode == 0, out.stderr
    increase_mb = float(out.stdout.strip().splitlines()[-1])
    print(f'peak RSS increase: {increase_mb:.0f} MB')
    assert increase_mb < 600, increase_mb  # a full 10,000×60,000 float32 matrix alone is 2,400 MB
