import os, shutil, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault('OMP_NUM_THREADS', '2')
os.environ['RAY_USAGE_STATS_ENABLED'] = '0'  # nothing leaves this machine

@pytest.fixture(scope='session')
def root(): return ROOT

def copy_project(dst:Path)->Path:
    "A copy of the paper notebooks and presets, so a batch writes nothing into the checkout."
    shutil.copytree(ROOT/'nbs'/'paper', dst/'nbs'/'paper', ignore=shutil.ignore_patterns('.ipynb_checkpoints'))
    shutil.copytree(ROOT/'presets', dst/'presets')
    return dst

@pytest.fixture(scope='session')
def smoke_root(tmp_path_factory):
    "The whole smoke batch, run once with the default (local) engine."
    from deepocc.reproduce import run_batch
    root = copy_project(tmp_path_factory.mktemp('proj'))
    res = run_batch('smoke', root=root)
    return root, res
