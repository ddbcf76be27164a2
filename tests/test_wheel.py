"""Packaging: build the wheel, install it into a fresh virtual environment WITHOUT the development extras, import every
module, and run a smoke fit and score from Python and from the `deepocc` console script on real images.

About 2 minutes. To keep it there, torch and torchvision (and the CUDA libraries that come with them, 6 GB) are not
installed again: the fresh environment sees the development environment's copies of exactly those distributions through
a .pth file naming a folder of links to them. Every other requirement is installed by pip from the wheel's own metadata,
so a run-time import missing from settings.ini fails here; torch and torchvision are checked to be in that metadata."""
import os, re, shutil, subprocess, sys, sysconfig, time, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
LINKED = ('torch', 'torchvision', 'functorch', 'torchgen', 'triton', 'nvidia')  # distributions (and their files) linked, not installed

def run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r

def test_wheel_installs_and_runs_without_dev_extras(tmp_path):
    t0 = time.time()
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', tmp_path/'dist', ROOT], cwd=tmp_path)
    whl, = (tmp_path/'dist').glob('deepocc-*.whl')
    meta = zipfile.ZipFile(whl).read(next(n for n in zipfile.ZipFile(whl).namelist() if n.endswith('METADATA'))).decode()
    reqs = {re.split(r'[<>=!~ ;\[]', l.split(':', 1)[1].strip())[0].lower() for l in meta.splitlines()
            if l.startswith('Requires-Dist:') and 'extra ==' not in l}
    assert {'torch', 'torchvision', 'fastcore', 'execnb', 'numpy', 'scikit-learn', 'pillow', 'tqdm', 'matplotlib'} <= reqs, reqs
    assert 'deepocc = deepocc.cli:main' in zipfile.ZipFile(whl).read(next(n for n in zipfile.ZipFile(whl).namelist() if n.endswith('entry_points.txt'))).decode()

    venv = tmp_path/'venv'
    run([sys.executable, '-m', 'venv', venv])
    py = venv/'bin'/'python'
    site = Path(run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']).stdout.strip())
    dev_site = Path(sysconfig.get_paths()['purelib'])
    links = tmp_path/'linked'; links.mkdir()
    for p in dev_site.iterdir():
        name = re.split(r'[-.]', p.name)[0].lower()
        if name in LINKED or name.startswith('nvidia'): (links/p.name).symlink_to(p)
    (site/'deepocc-test-linked.pth').write_text(f'{links}\n')
    run([py, '-m', 'pip', 'install', '-q', '--no-compile', whl], cwd=tmp_path, timeout=600)
    freeze = run([py, '-m', 'pip', 'list', '--format=freeze']).stdout.lower()
    for dev in ('nbdev', 'pytest', 'jupyterlab', 'elpv-dataset', 'mkdocs'): assert f'\n{dev}==' not in f'\n{freeze}', f'{dev} came along'

    code = """
import importlib, pkgutil, deepocc, numpy as np
mods = [m.name for m in pkgutil.iter_modules(deepocc.__path__) if not m.name.startswith('_')]
for m in mods: importlib.import_module(f'deepocc.{m}')
from deepocc.data import load_one_class
from deepocc.detector import OneClassDetector
d = load_one_class('digits', 0, size=16)
det = OneClassDetector('rotation', 'kde', preset='smoke', progress=False).fit(d.train)
s = det.anomaly_score(d.test)
assert s.shape == (len(d.test),) and np.isfinite(s).all()
print('imported', len(mods), 'modules; smoke fit and score ok')
"""
    r = run([py, '-c', code], cwd=tmp_path, env={**os.environ, 'PYTHONPATH': ''})
    assert 'smoke fit and score ok' in r.stdout and 'imported 1' in r.stdout
    assert Path(run([py, '-c', 'import deepocc; print(deepocc.__file__)'], cwd=tmp_path).stdout.strip()).is_relative_to(site)

    import numpy as np
    from PIL import Image
    from deepocc.data import available, load_one_class
    d = load_one_class('fmnist', 'bag') if available('fmnist') else load_one_class('digits', 3, size=28)
    imgs = tmp_path/'imgs'; imgs.mkdir()
    for i, im in enumerate(d.train[:24]): Image.fromarray(im[0].numpy()).save(imgs/f'{i:02d}.png')
    cli = venv/'bin'/'deepocc'
    run([cli, 'fit', imgs, '-o', tmp_path/'m.pt', '--preset', 'smoke', '--image-size', '16', '--quiet'], cwd=tmp_path)
    run([cli, 'score', tmp_path/'m.pt', imgs, '-o', tmp_path/'s.csv', '--quiet'], cwd=tmp_path)
    assert len((tmp_path/'s.csv').read_text().splitlines()) == 25
    print(f'wheel test: {time.time() - t0:.0f} s')
