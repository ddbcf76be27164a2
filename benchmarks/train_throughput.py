"""Training throughput: our full pretext step versus a bare step of the same network.

For each configuration, "ours" is one step of the training loop (`deepocc.pretext.train_pretext` does the same):
uint8 batch -> float, the pretext's `loss` (augmentation + forward), backward and the SGD step. "bare" is a forward,
the same loss function, backward and SGD step of an identical copy of the network on pre-made float batches holding the
same number of images (2B views for contrastive, 4B rotations for rotation). Both run in the training loop's memory
format (channels-last). Steps of the two alternate so that load on the machine hits both alike; the median step time is
reported. "aug share" is the median time of the augmentation alone divided by our median step time.

    .venv/bin/python benchmarks/train_throughput.py --out benchmarks/train_throughput.json
"""
import argparse, copy, json, os, platform, statistics, time
import torch
import torch.nn.functional as F
import deepocc
from deepocc.augment import color_jitter, cutpaste_batch, rotate90
from deepocc.pretext import CutPasteClassifier, TrainConfig, make_pretext, nt_xent

# (pretext, width, image size, batch size): batch = images sampled per step, before views/rotations
CONFIGS = [('contrastive', 16, 32, 128), ('rotation', 16, 32, 128),
           ('contrastive', 32, 32, 128), ('rotation', 32, 32, 128),
           ('contrastive', 64, 32, 128), ('rotation', 64, 32, 128),
           ('contrastive', 16, 256, 16), ('contrastive', 64, 256, 8),
           ('cutpaste_3way', 16, 256, 16), ('cutpaste_3way', 64, 256, 8)]

def augment_only(p, x, g):
    "The augmentation part of `p.loss`: what the pretext does to a batch before the network sees it."
    if isinstance(p, CutPasteClassifier):
        return cutpaste_batch(color_jitter(x, g, p.jitter, p.jitter, p.jitter, p.jitter), g, p.variant)[0]
    if p.n_classes == 4: return torch.cat([rotate90(p.augment(x, g), k) for k in range(4)])
    return torch.cat([p.augment(x, g), p.augment(x, g)])

def bare_loss(p, out, n):
    "The same loss function as the pretext's, on the network outputs of a pre-made batch."
    if p.n_classes: return F.cross_entropy(out['logits'], torch.arange(p.n_classes).repeat_interleave(n // p.n_classes))
    return nt_xent(out['embed'], p.temperature)

def bench(name, width, size, batch, warmup, steps, seed=0):
    torch.manual_seed(seed)
    ours = make_pretext(name, 3, size, width=width).to(memory_format=torch.channels_last).train()
    bare = copy.deepcopy(ours)
    opt_o = torch.optim.SGD(ours.parameters(), lr=1e-3, momentum=0.9, weight_decay=3e-4)
    opt_b = torch.optim.SGD(bare.parameters(), lr=1e-3, momentum=0.9, weight_decay=3e-4)
    g = torch.Generator().manual_seed(seed)
    gi = torch.Generator().manual_seed(seed + 1)
    images = torch.randint(0, 256, (4*batch, 3, size, size), dtype=torch.uint8, generator=gi)
    per_image = {'rotation': 4, 'cutpaste_3way': 3}.get(name, 2)
    premade = [torch.rand(per_image*batch, 3, size, size, generator=gi) for _ in range(2)]
    t_ours, t_bare, t_aug = [], [], []
    for i in range(warmup + steps):
        idx = torch.randperm(len(images), generator=gi)[:batch]
        t0 = time.perf_counter()
        loss, n = ours.loss(ours.make_batch(images, idx), g)
        opt_o.zero_grad(set_to_none=True); loss.backward(); opt_o.step()
        t1 = time.perf_counter()
        xb = premade[i % 2]
        out = bare.net(xb)
        loss_b = bare_loss(bare, out, len(xb))
        opt_b.zero_grad(set_to_none=True); loss_b.backward(); opt_b.step()
        t2 = time.perf_counter()
        with torch.no_grad(): augment_only(ours, ours.make_batch(images, idx), g)
        t3 = time.perf_counter()
        assert n == len(xb), (n, len(xb))
        if i >= warmup: t_ours.append(t1 - t0); t_bare.append(t2 - t1); t_aug.append(t3 - t2)
    mo, mb, ma = (statistics.median(t) for t in (t_ours, t_bare, t_aug))
    return dict(pretext=name, width=width, image_size=size, stem=ours.net.backbone.stem_kind, batch=batch, images_per_step=n,
                ours_images_per_s=n/mo, bare_images_per_s=n/mb, ratio=mb/mo, aug_share=ma/mo,
                ours_step_s=mo, bare_step_s=mb, aug_s=ma, steps=steps, warmup=warmup)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--only', default='', help="run only configs whose 'pretext-width-size' contains this, e.g. 'contrastive-16-32'")
    ap.add_argument('--out', default=None, help='write the results as JSON here')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows, load0 = [], os.getloadavg()
    print(f"{'pretext':12} {'width':>5} {'px':>4} {'stem':8} {'batch':>5} {'img/step':>8} {'ours img/s':>10} {'bare img/s':>10} {'ours/bare':>9} {'aug share':>9}")
    for name, width, size, batch in CONFIGS:
        if a.only and a.only not in f"{name}-{width}-{size}": continue
        r = bench(name, width, size, batch, a.warmup, a.steps)
        rows.append(r)
        print(f"{name:12} {width:5d} {size:4d} {r['stem']:8} {batch:5d} {r['images_per_step']:8d} {r['ours_images_per_s']:10.1f} "
              f"{r['bare_images_per_s']:10.1f} {100*r['ratio']:8.1f}% {100*r['aug_share']:8.1f}%", flush=True)
    malloc = {k: v for k, v in os.environ.items() if k.startswith('MALLOC_')}
    info = dict(torch=torch.__version__, deepocc=deepocc.__version__, threads=a.threads, cpu_count=os.cpu_count(), malloc_env=malloc,
                machine=platform.machine(), processor=platform.processor(), loadavg_before=load0, loadavg_after=os.getloadavg(),
                channels_last=TrainConfig().channels_last)
    if a.out:
        with open(a.out, 'w') as f: json.dump(dict(info=info, results=rows), f, indent=1)
        print(f"wrote {a.out}")

if __name__ == '__main__': main()
