"""Engines on this machine, measured in one run: 2 workers x 1 thread vs 1 worker x 2 threads on cpu-preset training
cells, and the engine overhead per cell (local in-process, local worker processes, Ray on a local cluster).

    .venv/bin/python benchmarks/engine_overhead.py [--cells 4] [--steps 100] [--no-ray]   # about 6 minutes on 2 cores

Writes benchmarks/engine_overhead.json. Speeds differ between machines of one kind by up to 2.5x: compare the ratios.

The Ray measurement starts a Ray cluster on this machine, and Ray 2.60 started on 127.0.0.1 still registers its node
under the machine's external address and listens on all interfaces; so the benchmark runs only in a private network
namespace whose only interface is loopback. Started elsewhere, it runs itself again in one:

    tools/loopback_only.sh .venv/bin/python benchmarks/engine_overhead.py    # what it does by itself (needs root or user namespaces)

and where no such namespace can be made it stops, saying why; --no-ray measures the local engines anywhere.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

LOOPBACK_ONLY = Path(__file__).resolve().parent.parent/'tools'/'loopback_only.sh'

def namespace_problem():
    "None when this process's network namespace has no interface but lo and only loopback addresses; else why not."
    ifs = sorted(l.split(':')[0].strip() for l in Path('/proc/self/net/dev').read_text().splitlines()[2:])  # follows the namespace
    if ifs != ['lo']: return f'network interfaces besides lo: {ifs}'
    try: addrs = [l.split()[3].split('/')[0] for l in subprocess.run(['ip', '-o', 'addr'], capture_output=True, text=True).stdout.splitlines()]
    except OSError: return None
    import ipaddress
    if not addrs or not all(ipaddress.ip_address(a).is_loopback for a in addrs): return f'lo is down or has other addresses: {addrs}'
    return None

def in_loopback_namespace():
    "Run this script again under tools/loopback_only.sh unless it is already in a loopback-only network namespace; exits with its status."
    if (why := namespace_problem()) is None: return
    if os.environ.get('DEEPOCC_LOOPBACK_ONLY'):  # already re-run once: the namespace is not what it should be
        sys.exit(f'engine_overhead.py: refusing to start Ray outside a loopback-only network namespace: {why}')
    print(f'engine_overhead.py: the Ray measurement runs in a private loopback-only network namespace ({why} here); '
          f'running again under {LOOPBACK_ONLY.name}', flush=True)
    r = subprocess.run([str(LOOPBACK_ONLY), sys.executable, *sys.argv], env={**os.environ, 'DEEPOCC_LOOPBACK_ONLY': '1'})
    if r.returncode == 125:
        sys.exit('engine_overhead.py: Ray is not started outside a private loopback-only network namespace, and none could be '
                 'made (the reason is above); --no-ray measures the local engines without Ray')
    sys.exit(r.returncode)
from deepocc.cells import ExperimentCell
from deepocc.data import categories
from deepocc.engines import EngineError, LocalEngine, RayEngine, LocalRayCluster, run_cells
from deepocc.data import atomic_write_json
from deepocc.records import RecordStore, machine_description, git_revision

def timed(cells, engine):
    "Wall seconds and records of running `cells` on `engine` into a fresh store."
    st = RecordStore(tempfile.mkdtemp(prefix='deepocc-bench-'))
    t0 = time.time()
    recs = run_cells(cells, st, engine, echo=False)
    return time.time() - t0, recs

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cells', type=int, default=4, help='training cells (Fashion-MNIST classes 0..N-1, rotation, cpu preset)')
    ap.add_argument('--steps', type=int, default=100, help='training steps per cell')
    ap.add_argument('--no-ray', action='store_true', help='skip the Ray measurement')
    a = ap.parse_args()
    if not a.no_ray: in_loopback_namespace()
    out = dict(machine=machine_description(), git=git_revision(), cores=os.cpu_count())
    # 1. throughput: the same training cells on 1 worker x 2 threads and on 2 workers x 1 thread
    train = [ExperimentCell('bench', 'fmnist', categories('fmnist')[c], 'rotation', ['kde'], 0, 'cpu', max_test=2000, options=dict(steps=a.steps))
             for c in range(a.cells)]
    views = a.steps * 64 * 4 * a.cells  # training views (batch 64 x 4 rotations)
    res = {}
    for name, eng in (('1x2', LocalEngine(1, 2)), ('2x1', LocalEngine(2, 1))):
        secs, recs = timed(train, eng)
        res[name] = dict(seconds=round(secs, 1), train_views_per_s=round(views / secs, 1),
                         train_images_per_s_in_cells=[round(r['images_per_s'], 1) for r in recs], auroc=[r['auroc'] for r in recs])
        print(f"{name}: {secs:.1f} s for {a.cells} cells ({views / secs:.0f} training views/s over the whole run)", flush=True)
    out['throughput'] = dict(cells=a.cells, steps=a.steps, views=views, **res,
                             ratio_2x1_over_1x2=round(res['1x2']['seconds'] / res['2x1']['seconds'], 3),
                             max_auroc_diff=max(abs(x - y) for x, y in zip(res['1x2']['auroc'], res['2x1']['auroc'])))
    print(f"2 workers x 1 thread run {out['throughput']['ratio_2x1_over_1x2']:.2f}x as fast as 1 x 2 "
          f"(max AUROC difference {out['throughput']['max_auroc_diff']:.4f})", flush=True)
    # 2. overhead: cells that compute almost nothing (raw-pixel KDE on 100 digits)
    tiny = [ExperimentCell('bench', 'digits', c % 10, 'raw_pixels', ['kde'], c // 10, 'smoke', image_size=8, max_test=100) for c in range(20)]
    ov = {}
    engines = [('local inline (1 worker)', LocalEngine(1, 2)), ('local 2 workers (spawned per run)', LocalEngine(2, 1))]
    cluster = None
    if not a.no_ray:
        cluster = LocalRayCluster(2)
        try: cluster.start()
        except EngineError as e:  # Ray's raylet waits only 15 s for its agents (ray-project/ray#65983): on a loaded machine, once more
            print(f'ray start failed, once more: {str(e)[-300:]}', flush=True)
            cluster.stop()
            cluster = LocalRayCluster(2).start()
        engines.append(('ray, local cluster', RayEngine(cluster.address)))
    try:
        for name, eng in engines:
            secs, recs = timed(tiny, eng)
            compute = sum(r['wall_s'] for r in recs)
            ov[name] = dict(seconds=round(secs, 2), per_cell_s=round(secs / len(tiny), 3), compute_s=round(compute, 2))
            print(f'{name}: {secs:.2f} s for {len(tiny)} near-empty cells = {secs / len(tiny):.3f} s per cell '
                  f'(of which {compute:.2f} s in the cells)', flush=True)
            if name.startswith('ray'):  # a second run on the warm workers
                secs, _ = timed(tiny, eng)
                ov['ray, warm workers'] = dict(seconds=round(secs, 2), per_cell_s=round(secs / len(tiny), 3))
                print(f'ray, warm workers: {secs / len(tiny):.3f} s per cell', flush=True)
    finally:
        if cluster: cluster.stop()
    out['overhead'] = dict(cells=len(tiny), **ov)
    atomic_write_json(Path(__file__).with_suffix('.json'), out)

if __name__ == '__main__': main()
