"Tests of deepocc.pretext: every objective learns, training is deterministic and resumable, bad input fails clearly."
import math
import pytest, torch
import torch.nn.functional as F
from deepocc.augment import ContrastiveViewAugment, rotate90
from deepocc.pretext import (PRETEXTS, PRESETS, TrainConfig, make_pretext, model_config, nt_xent, train_config,
                             train_pretext)

torch.set_num_threads(1)  # tiny models; one thread is robust when other jobs share the CPU
TINY = dict(width=4, head_hidden=(32,), head_out=16)

def synthetic(n=64, c=1, s=16, seed=0, noise=0.5):
    "Random images over a top-to-bottom ramp (so rotations and pasted patches are visible), uint8 (n,c,s,s)."
    g = torch.Generator().manual_seed(seed)
    base = F.interpolate(torch.rand(n, c, 4, 4, generator=g), size=(s, s), mode='bilinear', align_corners=False)
    ramp = torch.linspace(0, 1, s).view(1, 1, s, 1)
    return ((noise*base + (1 - noise)*ramp).clamp(0, 1)*255).round().to(torch.uint8)

def cfg(**kw): return TrainConfig(**{**dict(steps=30, batch_size=16, lr=0.05, log_every=5, progress=False, num_threads=1), **kw})

def build(name, c=1, s=16, seed=0, **kw):
    torch.manual_seed(seed)
    return make_pretext(name, c, s, **{**TINY, **kw})

def states_equal(a, b):
    sa,sb = a.state_dict(),b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

# Each task on a problem it can learn in 30 steps: contrastive tasks with milder views than the paper's (so 30 steps
# show progress), CutPaste at 256 px (at 16 px a scar is 1×2 pixels; the ImageNet stem makes 256 px about as cheap).
# The thin scar needs 60 steps: after 30 its loss ends at 0.84-1.05 of the first on seeds 0-2 (2-core Xeon, 1 thread).
MILD = ContrastiveViewAugment(scale=(0.8, 1), brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1)
LEARNABLE = {'rotation': dict(c=1, s=16, n=64, noise=0.5, batch=16, kw={}),
             'contrastive': dict(c=1, s=16, n=64, noise=1.0, batch=16, kw=dict(augment=MILD)),
             'contrastive_da': dict(c=1, s=16, n=64, noise=1.0, batch=16, kw=dict(augment=MILD)),
             'cutpaste': dict(c=3, s=256, n=32, noise=0.15, batch=8, kw={}),
             'cutpaste_scar': dict(c=3, s=256, n=32, noise=0.15, batch=8, kw={}, cfg=dict(steps=60, log_every=10)),
             'cutpaste_3way': dict(c=3, s=256, n=32, noise=0.15, batch=8, kw={})}

def learn(name, seed=0):
    t = LEARNABLE[name]
    imgs = synthetic(t['n'], t['c'], t['s'], seed, noise=t['noise'])
    return train_pretext(build(name, t['c'], t['s'], seed, **t['kw']), imgs, cfg(batch_size=t['batch'], seed=seed, **t.get('cfg', {})))[1]

@pytest.mark.parametrize('name', list(PRETEXTS))
def test_loss_falls(name):
    hist = learn(name)
    first,last = hist[0]['loss'],hist[-1]['loss']
    assert len(hist) == 6 and all(math.isfinite(h['loss']) for h in hist)
    assert last < 0.95*first, f"{name}: loss {first:.3f} -> {last:.3f}"  # seeds 0-5 end at 0.21-0.89 of the first

@pytest.mark.parametrize('name', ['rotation', 'contrastive_da', 'cutpaste_3way'])
def test_same_seed_same_weights(name):
    c = 3 if name.startswith('cutpaste') else 1
    imgs = synthetic(32, c)
    a = train_pretext(build(name, c), imgs, cfg(steps=6))[0]
    b = train_pretext(build(name, c), imgs, cfg(steps=6))[0]
    d = train_pretext(build(name, c), imgs, cfg(steps=6, seed=1))[0]
    assert states_equal(a, b)
    assert not states_equal(a, d)

def test_same_seed_same_weights_two_threads():
    "Bit-identical on the CPU with 2 threads and a wider net as well (same thread count in both runs)."
    imgs = synthetic(32, 3, 32)
    a = train_pretext(build('contrastive', 3, 32, width=8), imgs, cfg(steps=3, num_threads=2))[0]
    b = train_pretext(build('contrastive', 3, 32, width=8), imgs, cfg(steps=3, num_threads=2))[0]
    assert states_equal(a, b)

class Killed(Exception): pass

def kill_at(p, call):
    "Make `p.loss` raise on its `call`-th call, like a process killed mid-run."
    n,loss = [0],p.loss
    def f(x, g):
        n[0] += 1
        if n[0] == call: raise Killed()
        return loss(x, g)
    p.loss = f

@pytest.mark.parametrize('name', ['contrastive_da', 'rotation', 'cutpaste_scar'])
def test_resume_equals_uninterrupted(tmp_path, name):
    c = 3 if name.startswith('cutpaste') else 1
    imgs = synthetic(12, c)  # contrastive_da: 48 instances, 6 steps per epoch, so the run crosses epochs
    conf = cfg(steps=14, batch_size=8, log_every=4, checkpoint=str(tmp_path/'ck.pt'), checkpoint_every=3)
    full,hist_full = train_pretext(build(name, c), imgs, cfg(steps=14, batch_size=8, log_every=4))
    p = build(name, c)
    kill_at(p, 11)  # dies during step 11: the last checkpoint is at step 9, between two log entries
    with pytest.raises(Killed): train_pretext(p, imgs, conf)
    assert torch.load(tmp_path/'ck.pt', weights_only=True)['step'] == 9
    res,hist_res = train_pretext(build(name, c, seed=123), imgs, conf, resume=True)  # init does not matter
    assert states_equal(full, res)
    assert [h['step'] for h in hist_res] == [h['step'] for h in hist_full] == [4, 8, 12, 14]
    assert [h['loss'] for h in hist_res] == pytest.approx([h['loss'] for h in hist_full], rel=1e-6)
    assert [h['lr'] for h in hist_res] == [h['lr'] for h in hist_full]
    assert hist_res.n_images == hist_full.n_images
    assert not (tmp_path/'ck.pt.tmp').exists()

def test_resume_without_checkpoint_file_starts_fresh(tmp_path):
    imgs = synthetic(16)
    a = train_pretext(build('rotation'), imgs, cfg(steps=3))[0]
    b = train_pretext(build('rotation'), imgs, cfg(steps=3, checkpoint=str(tmp_path/'x'/'ck.pt')), resume=True)[0]
    assert states_equal(a, b) and (tmp_path/'x'/'ck.pt').exists()
    st = torch.load(tmp_path/'x'/'ck.pt', weights_only=True)
    assert {'model', 'optimizer', 'step', 'generator', 'history'} <= set(st) and st['step'] == 3

def test_resume_from_a_different_run_fails(tmp_path):
    imgs = synthetic(16)
    ck = str(tmp_path/'ck.pt')
    train_pretext(build('rotation'), imgs, cfg(steps=3, checkpoint=ck))
    with pytest.raises(ValueError, match='different run'): train_pretext(build('rotation'), imgs, cfg(steps=3, lr=0.1, checkpoint=ck), resume=True)
    with pytest.raises(ValueError, match='different run'): train_pretext(build('contrastive'), imgs, cfg(steps=3, checkpoint=ck), resume=True)

def test_cosine_schedule_per_step():
    _,hist = train_pretext(build('contrastive'), synthetic(16), cfg(steps=10, batch_size=8, lr=0.1, log_every=1))
    expected = [0.1*0.5*(1 + math.cos(math.pi*s/10)) for s in range(10)]
    assert [h['lr'] for h in hist] == pytest.approx(expected)
    _,hist = train_pretext(build('contrastive'), synthetic(16), cfg(steps=4, batch_size=8, lr=0.1, log_every=1, cosine=False))
    assert all(h['lr'] == 0.1 for h in hist)

def test_epochs_and_steps():
    imgs = synthetic(20)
    _,hist = train_pretext(build('contrastive'), imgs, cfg(steps=None, epochs=2, batch_size=8, log_every=1))
    assert hist[-1]['step'] == 4 and hist[-1]['epoch'] == 2  # 20 // 8 = 2 full batches per epoch
    _,hist = train_pretext(build('contrastive_da'), imgs, cfg(steps=None, epochs=1, batch_size=8, log_every=1))
    assert hist[-1]['step'] == 10  # 4·20 instances
    _,hist = train_pretext(build('contrastive'), imgs, cfg(steps=3, epochs=50, batch_size=8, log_every=1))
    assert hist[-1]['step'] == 3  # steps win

def test_da_epoch_visits_every_instance_once():
    p,seen = build('contrastive_da'),[]
    make = p.make_batch
    p.make_batch = lambda images, idx: (seen.append(idx.clone()), make(images, idx))[1]
    train_pretext(p, synthetic(8), cfg(steps=4, batch_size=8))
    assert torch.cat(seen).sort().values.tolist() == list(range(32))

def test_images_per_step_counted():
    for name,per in [('rotation', 4), ('contrastive', 2), ('cutpaste', 2), ('cutpaste_3way', 3)]:
        c = 3 if name.startswith('cutpaste') else 1
        _,hist = train_pretext(build(name, c), synthetic(16, c), cfg(steps=2, batch_size=8))
        assert hist.n_images == 2*8*per and hist.wall_time > 0 and hist[-1]['images_per_s'] > 0

def test_training_restores_threads_and_layout():
    before = torch.get_num_threads()
    p,_ = train_pretext(build('rotation'), synthetic(16), cfg(steps=2, num_threads=1))
    assert torch.get_num_threads() == before
    assert all(t.is_contiguous() for t in p.parameters()) and not p.training

def test_nt_xent_matches_a_loop():
    torch.manual_seed(0)
    z,t = torch.randn(10, 6),0.3
    zn = F.normalize(z, dim=1)
    total = 0.
    for i in range(10):
        j = (i + 5) % 10
        sims = torch.stack([zn[i] @ zn[k] / t for k in range(10) if k != i])
        total += -(zn[i] @ zn[j] / t - torch.logsumexp(sims, 0))
    torch.testing.assert_close(nt_xent(z, t), total/10)

def test_rotation_probs_are_softmax_on_each_rotation():
    p = build('rotation').eval()
    x = torch.rand(3, 1, 16, 16)
    pr = p.rotation_probs(x)
    with torch.no_grad():
        for k in range(4): torch.testing.assert_close(pr[:, k], p.net(rotate90(x, k))['logits'].softmax(-1))

def test_presets():
    assert set(PRESETS) == {'paper', 'cpu', 'smoke'}
    for preset in PRESETS:
        for name in PRETEXTS:
            tc,mc = train_config(name, preset),model_config(name, preset)
            assert isinstance(tc, TrainConfig) and {'width', 'head_hidden', 'head_out'} <= set(mc)
    assert train_config('contrastive', 'paper').batch_size == 32 and train_config('rotation', 'paper').batch_size == 64
    assert train_config('cutpaste', 'paper').steps == 65536 and train_config('cutpaste', 'paper').lr == 0.03
    assert model_config('rotation', 'paper') == dict(width=64, head_hidden=(512,)*8, head_out=128)
    assert model_config('rotation', 'cpu')['width'] == 16 and model_config('rotation', 'smoke')['width'] == 4

def test_smoke_preset_runs():
    p = make_pretext('cutpaste_3way', 3, 32, **model_config('cutpaste_3way', 'smoke'))
    _,hist = train_pretext(p, synthetic(8, 3, 32), train_config('cutpaste_3way', 'smoke', progress=False))
    assert hist[-1]['step'] == 2

def test_bad_inputs():
    p,g = build('rotation'),torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match='N,C,H,W'): p.loss(torch.rand(4, 16, 16), g)
    with pytest.raises(TypeError, match='floating-point'): p.loss(torch.zeros(4, 1, 16, 16, dtype=torch.uint8), g)
    with pytest.raises(ValueError, match=r'\[0,1\]'): p.loss(torch.rand(4, 1, 16, 16) + 1, g)
    with pytest.raises(ValueError, match='NaN'): p.loss(torch.full((4, 1, 16, 16), float('nan')), g)
    imgs = synthetic(8)
    with pytest.raises(TypeError, match='uint8'): train_pretext(p, imgs.float(), cfg())
    with pytest.raises(ValueError, match='N,C,H,W'): train_pretext(p, imgs[:, 0], cfg())
    with pytest.raises(ValueError, match='empty'): train_pretext(p, imgs[:0], cfg())
    with pytest.raises(ValueError, match='1-channel'): train_pretext(p, synthetic(8, 3), cfg())
    with pytest.raises(TypeError, match='Pretext'): train_pretext(p.net, imgs, cfg())
    with pytest.raises(ValueError, match='valid pretexts: rotation, contrastive, contrastive_da, cutpaste, cutpaste_scar, cutpaste_3way'):
        make_pretext('rotnet', 1, 16)
    with pytest.raises(ValueError, match='valid presets'): train_config('rotation', 'fast')
    with pytest.raises(TypeError, match='valid fields'): train_config('rotation', 'cpu', learning_rate=1)
    with pytest.raises(ValueError, match='batch_size'): TrainConfig(batch_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='CUDA is not available'): train_pretext(p, imgs, cfg(device='cuda'))

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU (run benchmarks/gpu_check.sh on one)')
@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
def test_cuda_training_runs(precision):
    "On a GPU, training runs there (bf16 autocast, channels-last, cudnn.benchmark) and gives finite losses."
    p = build('rotation')
    q, hist = train_pretext(p, synthetic(16), cfg(device='cuda', precision=precision))
    assert q.device.type == 'cuda' and all(math.isfinite(h['loss']) for h in hist)
