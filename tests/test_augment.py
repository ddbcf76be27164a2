"Heavier tests of deepocc.augment: comparisons with independent implementations and statistics over many samples."
import math
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
import torchvision.transforms.functional as TF

from deepocc.augment import *
from deepocc.augment import _crop_theta, _warp

torch.set_num_threads(min(2, torch.get_num_threads()))

def gen(seed=0): return torch.Generator().manual_seed(seed)

def ramp(n, c, h, w):
    "Images whose pixels all differ, so a pixel's value tells where it came from."
    return (torch.arange(h*w, dtype=torch.float64).view(1, 1, h, w) / (h*w)).expand(n, c, h, w).contiguous()

def source_index(y, h, w): return (y*(h*w)).round().long()

# ---------------------------------------------------------------- crop, flip, jitter

def test_crop_matches_slice_and_interpolate():
    x = torch.rand(40, 3, 32, 32, dtype=torch.float64)
    crop = _crop_theta(x, gen(1), (0.5, 1.0))
    y = _warp(x, crop)
    theta = crop[0]
    for i in range(len(x)):
        cw, ch = theta[i, 0, 0].item()*32, theta[i, 1, 1].item()*32
        left, top = ((theta[i, 0, 2].item() + 1)*32 - cw)/2, ((theta[i, 1, 2].item() + 1)*32 - ch)/2
        cw, ch, left, top = (round(v) for v in (cw, ch, left, top))
        assert 16 <= cw <= 32 and cw == ch and 0 <= left <= 32 - cw and 0 <= top <= 32 - ch
        ref = F.interpolate(x[i:i+1, :, top:top+ch, left:left+cw], size=(32, 32), mode='bilinear', align_corners=False)
        torch.testing.assert_close(y[i:i+1], ref, atol=1e-6, rtol=0)

def test_crop_side_uniform_in_length():
    x = torch.zeros(4000, 1, 32, 32)
    side = (_crop_theta(x, gen(2), (0.5, 1.0))[0][:, 0, 0]*32).round().long()
    counts = torch.bincount(side, minlength=33)[16:]
    assert side.min() == 16 and side.max() == 32
    assert counts.float().std() / counts.float().mean() < 0.2    # 17 equally likely sides (~235 each)

def test_view_flip_fused_with_crop():
    x = torch.rand(200, 3, 16, 16)
    aug = ContrastiveViewAugment(scale=(1, 1), hflip_p=0.5, jitter_p=0, gray_p=0)
    y = aug(x, gen(3))
    same = (y - x).abs().flatten(1).amax(1) < 1e-5
    flipped = (y - x.flip(3)).abs().flatten(1).amax(1) < 1e-5
    assert (same | flipped).all() and 60 < flipped.sum() < 140

def _no_clamp_images(n=64):
    "RGB images with values in [0.35,0.65], far enough from 0 and 1 that a mild jitter never clamps."
    return 0.35 + 0.3*torch.rand(n, 3, 8, 8, generator=gen(9), dtype=torch.float64)

@pytest.mark.parametrize('op', ['contrast', 'saturation', 'brightness'])
def test_jitter_ops_match_torchvision(op):
    x = _no_clamp_images()
    kw = dict(brightness=0, contrast=0, saturation=0, hue=0, brightness_op='mul')
    kw[op] = 0.4
    y = color_jitter(x, gen(4), **kw)
    gray = TF.rgb_to_grayscale(x)
    if op == 'contrast': base = gray.mean((1, 2, 3), keepdim=True).expand_as(x)
    elif op == 'saturation': base = gray.expand_as(x)
    else: base = torch.zeros_like(x)
    f = ((y - base) / (x - base)).flatten(1)
    f = f.median(1).values                                     # the factor drawn for each sample
    assert f.min() >= 0.6 - 1e-9 and f.max() <= 1.4 + 1e-9 and f.std() > 0.1
    fn = dict(contrast=TF.adjust_contrast, saturation=TF.adjust_saturation, brightness=TF.adjust_brightness)[op]
    ref = torch.stack([fn(x[i], f[i].item()) for i in range(len(x))])
    torch.testing.assert_close(y, ref, atol=1e-6, rtol=0)

def test_brightness_add_is_official_shift():
    x = _no_clamp_images()
    y = color_jitter(x, gen(5), brightness=0.1, contrast=0, saturation=0, hue=0, brightness_op='add')
    d = (y - x).flatten(1)
    assert (d.amax(1) - d.amin(1)).max() < 1e-9                # one shift per image
    assert d.abs().max() <= 0.1 + 1e-9 and d[:, 0].std() > 0.03

def test_hue_rotates_chroma_and_keeps_luma():
    x = _no_clamp_images()
    y = color_jitter(x, gen(6), brightness=0, contrast=0, saturation=0, hue=0.05)
    yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64)
    a, b = torch.einsum('rc,nchw->nrhw', yiq, x), torch.einsum('rc,nchw->nrhw', yiq, y)
    torch.testing.assert_close(b[:, 0], a[:, 0], atol=1e-6, rtol=0)        # luma unchanged (float32 matrices)
    angle = torch.atan2(b[:, 2], b[:, 1]) - torch.atan2(a[:, 2], a[:, 1])
    angle = torch.remainder(angle + math.pi, 2*math.pi) - math.pi
    per_image = angle.flatten(1)
    assert (per_image.amax(1) - per_image.amin(1)).max() < 1e-6            # one rotation per image
    assert per_image.abs().max() <= 2*math.pi*0.05 + 1e-9 and per_image[:, 0].std() > 0.05
    torch.testing.assert_close(b[:, 1:].norm(dim=1), a[:, 1:].norm(dim=1), atol=1e-6, rtol=0)  # chroma kept

def test_jitter_probability_and_identity():
    x = torch.rand(400, 3, 4, 4)
    y = color_jitter(x, gen(7), p=0.5)
    same = (y == x).flatten(1).all(1)
    assert 150 < same.sum() < 250                              # untouched images are bit-identical

# ---------------------------------------------------------------- rotations and DA

def _official_geotrans(data, num_aug):
    "The official geotrans_array_deterministic on NHWC numpy arrays."
    rot = [data] + [np.rot90(data, k=k, axes=(1, 2)) for k in range(1, 4)]
    items = [item for r in rot for item in (r, np.flip(r, axis=2))]
    return np.concatenate(items[:num_aug], axis=0)

def test_da_matches_official_code():
    x = torch.rand(3, 3, 6, 6)
    nhwc = x.permute(0, 2, 3, 1).numpy()
    for k in range(1, 9):
        ours, t = distribution_augment(x, transforms=distaug_transforms(k))
        np.testing.assert_array_equal(ours.permute(0, 2, 3, 1).numpy(), _official_geotrans(nhwc, k))
        assert len(t) == 3*k
    ours = distribution_augment(x, transforms=distaug_transforms('vflip'))[0]
    np.testing.assert_array_equal(ours.permute(0, 2, 3, 1).numpy(), np.concatenate([nhwc, np.flip(nhwc, axis=1)]))
    ours = distribution_augment(x, transforms=distaug_transforms('rot'))[0]
    np.testing.assert_array_equal(ours.permute(0, 2, 3, 1).numpy(),
                                  np.concatenate([nhwc] + [np.rot90(nhwc, k=k, axes=(1, 2)) for k in range(1, 4)]))

def test_da_first_k_and_transform_labels():
    x = torch.rand(4, 1, 8, 8)
    for k in range(1, 9):
        xa, t = distribution_augment(x, k)
        assert xa.shape == (4*k, 1, 8, 8)
        torch.testing.assert_close(t, torch.arange(k).repeat_interleave(4))
        assert torch.equal(apply_distribution_transform(x.repeat(k, 1, 1, 1), t), xa)
    assert torch.equal(distribution_augment(x, 2)[0][4:], torch.rot90(x, 1, (2, 3)))   # k=2 is identity+rot90, not hflip

def test_rotate90_per_sample():
    x = torch.rand(50, 3, 7, 7)
    k = torch.randint(-4, 8, (50,), generator=gen(8))
    y = rotate90(x, k)
    for i in range(50): assert torch.equal(y[i], torch.rot90(x[i], int(k[i]), (1, 2)))

# ---------------------------------------------------------------- CutPaste

@pytest.mark.parametrize('size,c', [(32, 3), (64, 1), (256, 3)])
def test_cutpaste_rectangle_and_exact_copy(size, c):
    n = 64 if size < 256 else 16
    x = ramp(n, c, size, size)
    y, m = cutpaste(x, gen(10), jitter=0.)
    assert torch.equal(torch.where(m, 0., y), torch.where(m, 0., x))
    idx, pos = source_index(y[:, :1], size, size), torch.arange(size*size).view(1, 1, size, size)
    for i in range(n):
        mi = m[i, 0]
        rows, cols = mi.any(1).nonzero().view(-1), mi.any(0).nonzero().view(-1)
        ph, pw = len(rows), len(cols)
        assert mi.sum() == ph*pw and mi[rows[0]:rows[-1]+1, cols[0]:cols[-1]+1].all()   # one rectangle
        assert 0.02*size*size*0.8 - 2 <= ph*pw <= 0.15*size*size*1.2 + 2
        assert 0.3/1.5 <= ph/pw <= 3.3*1.5
        shift = (idx[i, 0] - pos[0, 0])[mi]
        assert (shift == shift[0]).all()                      # one constant offset: an exact copy of a rectangle
        src = idx[i, 0][mi]
        sr, sc = src // size, src % size
        assert sr.max() - sr.min() + 1 == ph and sc.max() - sc.min() + 1 == pw
    assert (m.flatten(1).float().mean(1) > 0).all()

def test_cutpaste_jitter_changes_only_the_patch():
    x = torch.rand(32, 3, 32, 32)
    y, m = cutpaste(x, gen(11))
    assert torch.equal(y[~m.expand_as(y)], x[~m.expand_as(x)])
    assert 0 <= y.min() and y.max() <= 1

@pytest.mark.parametrize('size', [32, 64, 128, 256])
def test_scar_connected_and_exact_copy(size):
    n = 200 if size <= 64 else 40
    x = ramp(n, 1, size, size)
    y, m = cutpaste_scar(x, gen(12), jitter=0.)
    assert torch.equal(torch.where(m, 0., y), torch.where(m, 0., x))
    assert torch.isin(source_index(y, size, size)[m], torch.arange(size*size)).all()
    eight = np.ones((3, 3))
    for i in range(n):
        labels, count = ndimage.label(m[i, 0].numpy(), structure=eight)
        assert count == 1, f"scar {i} at {size} px has {count} parts"

def test_scar_geometry_at_256():
    n, size = 60, 256
    x = ramp(n, 1, size, size)
    y, m = cutpaste_scar(x, gen(13), jitter=0.)
    area = m.flatten(1).sum(1).double()
    assert 2*10*0.7 <= area.min() and area.max() <= 16*25*1.2
    assert abs(area.mean().item() - 9*17.5) < 0.2*9*17.5          # E[width]·E[length]
    src = source_index(y[:, 0], size, size)
    angles = []
    for i in range(n):
        r, c = m[i, 0].nonzero(as_tuple=True)
        s = src[i][r, c]
        A = torch.stack([c.double(), r.double(), torch.ones_like(r, dtype=torch.float64)], 1)
        B = torch.stack([(s % size).double(), (s // size).double()], 1)
        sol = torch.linalg.lstsq(A, B).solution                    # dest → source affine map
        L = sol[:2].T
        if len(r) > 100:                                           # a rotation: orthogonal, det 1, angle within ±45°
            torch.testing.assert_close(L @ L.T, torch.eye(2, dtype=torch.float64), atol=0.2, rtol=0)
            assert torch.linalg.det(L) > 0.8
            angles.append(math.degrees(math.atan2(L[1, 0], L[0, 0])))
            assert (A @ sol - B).abs().max() < 1.5
    assert len(angles) > 15 and max(abs(a) for a in angles) <= 47 and np.std(angles) > 15

def test_cutout_fill():
    x = torch.rand(32, 3, 32, 32)
    y, m = cutout(x, gen(14), fill='random')
    assert torch.equal(torch.where(m, 0., y), torch.where(m, 0., x))
    for i in range(32):
        vals = y[i][:, m[i, 0]]
        assert (vals == vals[:, :1]).all()                        # one colour per image

@pytest.mark.parametrize('variant,k', [('binary', 2), ('scar', 2), ('3way', 3), ('cutout', 2)])
def test_cutpaste_batch(variant, k):
    for c in (1, 3):
        x = torch.rand(8, c, 32, 32)
        imgs, labels = cutpaste_batch(x, gen(15), variant)
        assert imgs.shape == (8*k, c, 32, 32) and labels.dtype == torch.long
        assert torch.equal(labels, torch.arange(k).repeat_interleave(8)) and torch.equal(imgs[:8], x)
        for j in range(1, k): assert not torch.equal(imgs[8*j:8*(j+1)], x)

# ---------------------------------------------------------------- determinism, shapes and errors

FUNCS = {
    'crop': lambda x, g: random_resized_crop(x, g),
    'hflip': lambda x, g: random_hflip(x, g),
    'jitter': lambda x, g: color_jitter(x, g),
    'gray': lambda x, g: random_grayscale(x, g),
    'view': lambda x, g: ContrastiveViewAugment()(x, g),
    'cutpaste': lambda x, g: cutpaste(x, g)[0],
    'scar': lambda x, g: cutpaste_scar(x, g)[0],
    'cutout': lambda x, g: cutout(x, g, fill='random')[0],
    '3way': lambda x, g: cutpaste_batch(x, g, '3way')[0],
}

@pytest.mark.parametrize('name', list(FUNCS))
@pytest.mark.parametrize('shape', [(16, 3, 32, 32), (16, 1, 64, 48)])
def test_deterministic_in_range_and_float(name, shape):
    f = FUNCS[name]
    x = torch.rand(shape)
    a, b, c = f(x, gen(21)), f(x, gen(21)), f(x, gen(22))
    assert torch.equal(a, b)
    if not (name == 'gray' and shape[1] == 1): assert not torch.equal(a, c)   # grayscale of 1 channel: a no-op
    assert a.dtype == x.dtype and a.shape[1:] == x.shape[1:] and 0 <= a.min() and a.max() <= 1
    x64 = x.double()
    assert f(x64, gen(21)).dtype == torch.float64

@pytest.mark.parametrize('name', list(FUNCS))
def test_bad_input(name):
    f, g = FUNCS[name], gen()
    with pytest.raises(TypeError, match='floating-point'): f(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), g)
    with pytest.raises(TypeError, match='torch.Tensor'): f(np.zeros((2, 3, 8, 8), np.float32), g)
    with pytest.raises(ValueError, match='4 dimensions'): f(torch.rand(3, 8, 8), g)
    with pytest.raises(ValueError, match='NaN'): f(torch.full((2, 3, 8, 8), float('nan')), g)
    with pytest.raises(ValueError, match=r'\[0,1\]'): f(torch.rand(2, 3, 8, 8)*255, g)
    with pytest.raises(ValueError, match='non-empty'): f(torch.rand(0, 3, 8, 8), g)

def test_unknown_names_list_valid_ones():
    x, g = torch.rand(2, 3, 8, 8), gen()
    with pytest.raises(ValueError, match='hflip\\+rot90'): distribution_augment(x, transforms=['vflip'])
    with pytest.raises(ValueError, match='1..8'): distribution_augment(x, 0)
    with pytest.raises(ValueError, match="'3way'"): cutpaste_batch(x, g, 'multi')
    with pytest.raises(ValueError, match="'rot'"): distaug_transforms('rot45')

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_same_output_on_gpu():
    x = torch.rand(16, 3, 32, 32)
    for name, f in FUNCS.items():
        a, b = f(x, gen(30)), f(x.cuda(), gen(30)).cpu()
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=name)
