"""Loaders parse small fixtures written in each dataset's real on-disk format; the real data on this machine loads
with the expected counts; missing data, unknown names, corrupt files and empty classes give clear errors."""
import gzip, pickle, struct
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from deepocc.data import *
from deepocc.data import _fmnist_arrays, _cifar_arrays

rng = np.random.default_rng(0)

def _idx(path, a):
    with gzip.open(path, 'wb') as f:
        f.write(bytes([0, 0, 8, a.ndim]) + struct.pack(f'>{a.ndim}I', *a.shape) + a.astype(np.uint8).tobytes())

def _png(path, a):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a.astype(np.uint8)).save(path)

@pytest.fixture
def fmnist_root(tmp_path):
    d = tmp_path/'fashion-mnist'; d.mkdir()
    ytr, yte = np.arange(40) % 10, np.arange(20) % 10
    _idx(d/'train-images-idx3-ubyte.gz', rng.integers(0, 256, (40, 28, 28)))
    _idx(d/'train-labels-idx1-ubyte.gz', ytr)
    _idx(d/'t10k-images-idx3-ubyte.gz', rng.integers(0, 256, (20, 28, 28)))
    _idx(d/'t10k-labels-idx1-ubyte.gz', yte)
    _fmnist_arrays.cache_clear()
    yield tmp_path
    _fmnist_arrays.cache_clear()

def test_fmnist_idx_fixture(fmnist_root):
    d = fmnist_one_class('coat', root=fmnist_root)
    assert d.train.shape == (4, 1, 32, 32) and d.test.shape == (20, 1, 32, 32)
    assert d.test_labels.tolist() == [int(i % 10 != 4) for i in range(20)]
    assert (d.train[:, :, :2] == 0).all() and (d.train[:, :, :, -2:] == 0).all(), '28 px padded with zeros to 32'

def test_fmnist_truncated_idx(tmp_path):
    d = tmp_path/'fashion-mnist'; d.mkdir()
    _idx(d/'train-images-idx3-ubyte.gz', np.zeros((4, 28, 28)))
    raw = gzip.decompress((d/'train-images-idx3-ubyte.gz').read_bytes())
    (d/'train-images-idx3-ubyte.gz').write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(ValueError, match='truncated'): read_idx(d/'train-images-idx3-ubyte.gz')

def _cifar_batch(path, n, fine=False):
    lab = np.arange(n) % (100 if fine else 10)
    b = {b'data': rng.integers(0, 256, (n, 3072)).astype(np.uint8)}
    b.update({b'fine_labels': lab.tolist(), b'coarse_labels': [CIFAR100_COARSE_OF_FINE[i] for i in lab]} if fine else {b'labels': lab.tolist()})
    with open(path, 'wb') as f: pickle.dump(b, f)

def test_cifar10_pickle_fixture(tmp_path):
    d = tmp_path/'cifar-10-batches-py'; d.mkdir()
    for i in range(1, 6): _cifar_batch(d/f'data_batch_{i}', 20)
    _cifar_batch(d/'test_batch', 30)
    data = cifar10_one_class('cat', root=tmp_path)
    assert data.train.shape == (10, 3, 32, 32) and data.n_normal_test == 3 and data.n_anomalous_test == 27

def test_cifar20_superclasses(tmp_path):
    d = tmp_path/'cifar-100-python'; d.mkdir()
    _cifar_batch(d/'train', 200, fine=True); _cifar_batch(d/'test', 100, fine=True)
    data = cifar20_one_class('people', root=tmp_path)
    # 'people' = baby, boy, girl, man, woman: 5 fine classes, each twice in 200 training images
    assert data.train.shape == (10, 3, 32, 32) and data.n_normal_test == 5
    b = pickle.load(open(d/'train', 'rb'), encoding='bytes')
    assert [CIFAR100_COARSE_OF_FINE[f] for f in b[b'fine_labels']] == b[b'coarse_labels']
    with pytest.raises(DataNotFoundError, match='cifar-10'): cifar10_one_class(0, root=tmp_path/'nothing')

def _mvtec_tree(root, cat='bottle'):
    for i in range(3): _png(root/cat/'train'/'good'/f'{i:03d}.png', rng.integers(0, 256, (40, 40, 3)))
    _png(root/cat/'test'/'good'/'000.png', rng.integers(0, 256, (40, 40, 3)))
    for i in range(2):
        _png(root/cat/'test'/'broken_large'/f'{i:03d}.png', rng.integers(0, 256, (40, 40, 3)))
        m = np.zeros((40, 40)); m[5:15, 10:30] = 255
        _png(root/cat/'ground_truth'/'broken_large'/f'{i:03d}_mask.png', m)

def test_mvtec_layout_fixture(tmp_path):
    _mvtec_tree(tmp_path)
    d = load_one_class('mvtec', 'bottle', root=tmp_path, size=20)
    assert d.train.shape == (3, 3, 20, 20) and d.test_labels.tolist() == [1, 1, 0]
    assert d.test_masks.shape == (3, 1, 20, 20) and d.test_masks[2].sum() == 0
    assert d.test_masks[0, 0, 3:8, 5:15].all() and d.test_masks[0].sum() == 50
    assert available('mvtec', root=tmp_path) and not available('mvtec', root=tmp_path/'x')
    with pytest.raises(DataNotFoundError, match='mvtec.com'): load_one_class('mvtec', 'screw', root=tmp_path)

def test_mvtec_missing_mask(tmp_path):
    _mvtec_tree(tmp_path)
    (tmp_path/'bottle'/'ground_truth'/'broken_large'/'001_mask.png').unlink()
    with pytest.raises(DataNotFoundError, match='001_mask.png'): load_one_class('mvtec', 'bottle', root=tmp_path)

def _folder_tree(root, gray=False):
    shape = (12, 12) if gray else (12, 12, 3)
    for i in range(4): _png(root/'normal'/f'n{i}.png', rng.integers(0, 256, shape))
    for i in range(2): _png(root/'test'/'normal'/f't{i}.png', rng.integers(0, 256, shape))
    for i in range(3): _png(root/'test'/'abnormal'/f'a{i}.jpg', rng.integers(0, 256, shape))
    m = np.zeros((12, 12)); m[:4, :4] = 255
    _png(root/'masks'/'a1_mask.png', m)

def test_folder_fixture(tmp_path):
    _folder_tree(tmp_path)
    d = load_one_class('folder', root=tmp_path)
    assert d.channels == 3 and d.train.shape == (4, 3, 12, 12) and d.test_labels.tolist() == [0, 0, 1, 1, 1]
    assert d.test_masks[3].sum() == 16 and d.test_masks.sum() == 16
    g = tmp_path/'gray'; _folder_tree(g, gray=True)
    assert load_one_class('folder', root=g).channels == 1
    assert load_one_class('folder', root=g, channels=3, size=8).train.shape == (4, 3, 8, 8)

def test_folder_errors(tmp_path):
    _folder_tree(tmp_path)
    bad = tmp_path/'test'/'abnormal'/'a2.jpg'
    bad.write_bytes(bad.read_bytes()[:60])  # a truncated file
    with pytest.raises(ImageReadError, match='a2.jpg'): load_one_class('folder', root=tmp_path)
    e = tmp_path/'empty'; (e/'normal').mkdir(parents=True); (e/'test'/'normal').mkdir(parents=True); (e/'test'/'abnormal').mkdir()
    with pytest.raises(ValueError, match='empty class'): load_one_class('folder', root=e)
    with pytest.raises(DataNotFoundError, match='test/abnormal'): load_one_class('folder', root=tmp_path/'none')
    _png(tmp_path/'normal'/'n9.png', rng.integers(0, 256, (10, 12, 3)))
    with pytest.raises(ValueError, match='size='): load_one_class('folder', root=tmp_path)

def test_truncated_png(tmp_path):
    _png(tmp_path/'a.png', rng.integers(0, 256, (64, 64, 3)))
    (tmp_path/'a.png').write_bytes((tmp_path/'a.png').read_bytes()[:200])
    with pytest.raises(ImageReadError, match='a.png'): read_image(tmp_path/'a.png')

def test_catdog_fixture(tmp_path):
    for c in ('cat', 'dog'):
        for i in range(5): _png(tmp_path/'train'/f'{c}.{i}.jpg', rng.integers(0, 256, (30 + i, 20, 3)))
    d = catdog_one_class('dog', root=tmp_path, size=16)
    assert d.train.shape == (4, 3, 16, 16) and d.test_labels.tolist() == [1, 0]

def test_celeba_fixture(tmp_path):
    names = ['Bald', 'Eyeglasses']
    files = [f'{i:06d}.jpg' for i in range(1, 9)]
    for f in files: _png(tmp_path/'img_align_celeba'/f, rng.integers(0, 256, (218, 178, 3)))
    glasses = [1, -1, -1, 1, -1, -1, 1, -1]
    (tmp_path/'list_attr_celeba.txt').write_text(f'{len(files)}\n' + ' '.join(names) + '\n' +
        '\n'.join(f'{f} -1 {g}' for f, g in zip(files, glasses)) + '\n')
    (tmp_path/'list_eval_partition.txt').write_text('\n'.join(f'{f} {0 if i < 5 else 2}' for i, f in enumerate(files)) + '\n')
    d = celeba_one_class(root=tmp_path, size=16)
    assert d.train.shape == (3, 3, 16, 16) and d.test_labels.tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match='Eyeglasses'): celeba_one_class('Hat', root=tmp_path)

def test_unknown_names_and_missing_data(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match='valid: fmnist, cifar10'): load_one_class('imagenet', 0)
    with pytest.raises(ValueError, match='mono, poly'): load_one_class('elpv', 'thin-film')
    with pytest.raises(ValueError, match='bottle'): load_one_class('mvtec', 'bottles', root=tmp_path)
    monkeypatch.setenv('DEEPOCC_DATA', str(tmp_path/'env'))
    with pytest.raises(DataNotFoundError) as e: load_one_class('catdog', 'cat', root=tmp_path)
    assert str(tmp_path/'env') in str(e.value) and 'kaggle' in str(e.value).lower()
    assert not available('cifar10', root=tmp_path) and not available('celeba', root=tmp_path)

def test_fmnist_missing_names_every_place(tmp_path, monkeypatch):
    import deepocc.data as dd
    monkeypatch.setattr(dd, '_fmnist_dirs', lambda root=None: [Path(root)/'a', Path(root)/'b'])
    dd._fmnist_arrays.cache_clear()
    try:
        with pytest.raises(DataNotFoundError) as e: fmnist_one_class(0, root=tmp_path)
        assert str(tmp_path/'a') in str(e.value) and str(tmp_path/'b') in str(e.value) and 'dataset-fashion-mnist' in str(e.value)
    finally: dd._fmnist_arrays.cache_clear()

def test_real_fmnist_counts():
    for c in (0, 9):
        d = load_one_class('fmnist', c)
        assert (len(d.train), len(d.test), d.n_normal_test, d.size, d.channels) == (6000, 10000, 1000, (32, 32), 1)

def test_real_elpv_counts():
    ds = [load_one_class('elpv', c) for c in ('mono', 'poly')]
    assert sum(len(d.train) + d.n_normal_test for d in ds) == 1508
    assert sum(d.n_anomalous_test for d in ds) == 715 + 106
    assert ds[0].size == (300, 300) and ds[0].channels == 1
    again = load_one_class('elpv', 'mono')
    assert torch.equal(again.train, ds[0].train), 'the split is fixed'

def test_real_digits():
    ds = [load_one_class('digits', c) for c in range(10)]
    assert sum(len(d.train) for d in ds) == 1198 and all(len(d.test) == 599 for d in ds)
    assert load_one_class('digits', 0, size=32).size == (32, 32)

def test_subset_keeps_both_labels():
    d = subset(load_one_class('digits', 1), max_train=10, max_test=50)
    assert len(d.train) == 10 and 0 < d.n_normal_test < d.n_anomalous_test and len(d.test) in (49, 50, 51)
