"""The GPU path in one short run (under 5 minutes on one GPU): training images/s of the paper's models in fp32 and
bf16, and one short `paper`-preset cell with its AUROC.

    bash benchmarks/gpu_check.sh            # writes benchmarks/gpu_check.json

1. rotation prediction, ResNet-18 width 64, 32 px, batch 64 x 4 rotations; 2. CutPaste 3-way, width 64, 256 px,
batch 96 (x 3 classes); each for 60 steps on random images (the first 20 are warm-up: cudnn.benchmark, allocator),
fp32 then bf16 autocast. 3. Fashion-MNIST class 0 (t-shirt/top), rotation, the paper preset with `epochs` (default 30)
instead of 2048, scored with KDE and the built-in rotation classifier. Needs Fashion-MNIST (Debian's
dataset-fashion-mnist, or the idx files in $DEEPOCC_DATA/fashion-mnist).
"""
import argparse, json, sys, time
from pathlib import Path
import torch
from deepocc.pretext import make_pretext, train_config, model_config, train_pretext
from deepocc.data import atomic_write_json
from deepocc.records import machine_description, git_revision

def throughput(name, size, batch, precision, steps=60, warm=20):
    "Training images/s (images through the network) over the steps after the warm-up."
    m = model_config(name, 'paper')
    p = make_pretext(name, 3, size, seed=0, **m)
    x = torch.randint(0, 256, (max(512, batch * 2), 3, size, size), dtype=torch.uint8)
    cfg = train_config(name, 'paper', steps=steps, batch_size=batch, log_every=warm, progress=False, device='cuda', precision=precision)
    torch.cuda.synchronize()
    _, hist = train_pretext(p, x, cfg)
    torch.cuda.synchronize()
    after = hist[1:]  # the entries after the warm-up interval
    return sum(h['images_per_s'] for h in after) / len(after)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--epochs', type=int, default=30, help='epochs of the short paper-preset cell')
    ap.add_argument('--skip-cell', action='store_true', help='only the throughput part')
    a = ap.parse_args()
    if not torch.cuda.is_available(): sys.exit('gpu_check: no CUDA GPU is visible to torch: run this on a GPU machine')
    out = dict(machine=machine_description(), git=git_revision(), torch=torch.__version__, throughput={})
    t0 = time.time()
    for label, name, size, batch in (('rotation w64 32px batch 64x4', 'rotation', 32, 64), ('cutpaste_3way w64 256px batch 96', 'cutpaste_3way', 256, 96)):
        for prec in ('fp32', 'bf16'):
            ips = throughput(name, size, batch, prec)
            out['throughput'][f'{label} {prec}'] = round(ips, 1)
            print(f'{label:34s} {prec}: {ips:9.0f} images/s', flush=True)
    if not a.skip_cell:
        from deepocc.cells import ExperimentCell, run_cell
        cell = ExperimentCell('gpu_check', 'fmnist', 'tshirt_top', 'rotation', ('kde', 'builtin'), 0, 'paper', options=dict(epochs=a.epochs))
        t1 = time.time()
        recs = run_cell(cell)
        out['cell'] = dict(epochs=a.epochs, seconds=round(time.time() - t1, 1), images_per_s=recs[0]['images_per_s'],
                           auroc={r['head']: round(r['auroc'], 2) for r in recs})
        print(f"paper preset, Fashion-MNIST t-shirt/top, rotation, {a.epochs} epochs: KDE {out['cell']['auroc']['kde']:.1f}, "
              f"built-in {out['cell']['auroc']['builtin']:.1f} AUROC in {out['cell']['seconds']:.0f} s "
              f"({recs[0]['images_per_s']:.0f} training images/s)", flush=True)
    out['seconds'] = round(time.time() - t0, 1)
    atomic_write_json(Path(__file__).with_suffix('.json'), out)
    print(f'gpu_check: {out["seconds"]:.0f} s; wrote benchmarks/gpu_check.json')

if __name__ == '__main__': main()
