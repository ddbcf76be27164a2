import os, re, shutil, sys
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
    "The whole smoke batch, run once with the default (local) engine, by papermill, two notebooks at a time."
    from deepocc.reproduce import run_batch
    root = copy_project(tmp_path_factory.mktemp('proj'))
    res = run_batch('smoke', root=root, jobs=2)
    return root, res

# `make test-quick` (pytest -m "not heavy"): everything but the wheel, the browser, Ray, JupyterLab and the batch tests
# (the paper notebooks too: each runs a smoke-sized table)
HEAVY_FIXTURES = {'smoke_root', 'site', 'browser'}   # the whole smoke batch, the docs site in Chromium
HEAVY_FILES = {'test_wheel.py', 'test_lab.py'}                  # a fresh venv with the wheel; JupyterLab
HEAVY_NAMES = re.compile(r'(^|_)(ray|killed|grace_period|committed_cpu_tables|wrong_address|local_workers)(_|$)')   # Ray, killed runs, worker processes, batches

def pytest_configure(config):
    config.addinivalue_line('markers', 'heavy: a wheel, browser, Ray, JupyterLab or batch test (left out by `make test-quick`)')

def pytest_collection_modifyitems(items):
    for it in items:
        if HEAVY_FIXTURES & set(it.fixturenames) or it.path.name in HEAVY_FILES or HEAVY_NAMES.search(it.name) or '[paper/' in it.name:
            it.add_marker(pytest.mark.heavy)

@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    "One line under the slowest tests: the total of the slowest five phases, so a regression shows at a glance."
    durs = sorted((r.duration for rs in terminalreporter.stats.values() for r in rs if getattr(r, 'duration', None) is not None
                   and getattr(r, 'when', None) in ('setup', 'call', 'teardown')), reverse=True)
    if durs: terminalreporter.write_line(f'slowest 5 total: {sum(durs[:5]):.1f} s (of {sum(durs):.0f} s in all phases)')
