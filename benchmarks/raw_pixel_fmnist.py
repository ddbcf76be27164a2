"""Raw-pixel baseline on Fashion-MNIST: a stage 2 head on L2-normalized raw pixels, no deep learning.

For each of the 10 classes: fit the head (KDE by default, DROC bandwidth) on the 6,000 normal training images
(28 px padded to 32, floats in [0,1], flattened to 1,024-d), score the full 10,000-image test set (anomaly = another class)
and report image AUROC per class and the mean.

    python benchmarks/raw_pixel_fmnist.py [--head kde] [--classes 0 1 ...] [--out results.json]

Measured on the 2-core development CPU (torch 2.14, shared machine): KDE per class 91.3 97.8 88.6 90.0 90.7
73.3 79.3 98.0 93.2 99.1, mean 90.1, in about 40 s (3-5 s per class, loading included).
"""
import argparse, json, platform, sys, time
import torch

from deepocc.data import FMNIST_CLASSES, load_one_class, to_float
from deepocc.heads import HEADS, make_head
from deepocc.metrics import image_auroc


def run(head:str='kde', classes=range(10), root=None)->dict:
    "Per-class AUROC of `head` on raw Fashion-MNIST pixels."
    rows = []
    for c in classes:
        t0 = time.perf_counter()
        data = load_one_class('fmnist', c, root=root)
        h = make_head(head).fit(to_float(data.train))
        scores = h.score(to_float(data.test))
        auc = image_auroc(data.test_labels, scores)
        rows.append(dict(category=int(c), name=FMNIST_CLASSES[int(c)], auroc=auc, n_train=len(data.train),
                         n_test=len(data.test), seconds=time.perf_counter() - t0))
        print(f"{int(c):2d} {FMNIST_CLASSES[int(c)]:<12} AUROC {auc:5.1f}   ({rows[-1]['seconds']:.1f} s)", flush=True)
    mean = sum(r['auroc'] for r in rows) / len(rows)
    return dict(dataset='fmnist', method='raw_pixels', head=head, feature='pixels_l2', classes=rows, mean_auroc=mean,
                seconds=sum(r['seconds'] for r in rows), torch=torch.__version__, threads=torch.get_num_threads(),
                python=platform.python_version())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--head', default='kde', choices=list(HEADS))
    p.add_argument('--classes', type=int, nargs='*', default=list(range(10)))
    p.add_argument('--root', default=None, help='folder with the Fashion-MNIST idx files (default: the usual places)')
    p.add_argument('--out', default=None, help='write the results as JSON here')
    a = p.parse_args(argv)
    res = run(a.head, a.classes, a.root)
    print(f"mean AUROC {res['mean_auroc']:.1f} over {len(res['classes'])} classes in {res['seconds']:.1f} s")
    if a.out:
        with open(a.out, 'w') as f: json.dump(res, f, indent=1)
    return res


if __name__ == '__main__': main()
