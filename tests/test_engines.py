"""Records are reused only when their fingerprint matches; local workers give the records of one in-process worker; a
killed local worker's cell is retried. The Ray tests (the same grid on a real Ray cluster with the same records, a killed
Ray worker's cell retried, nothing off loopback) are in ray_in_netns.py and run here inside a private network namespace
with only loopback (tools/loopback_only.sh)."""
import os, signal, subprocess, sys, threading, time
from dataclasses import replace
from pathlib import Path
import pytest
import deepocc.cells, deepocc.engines
from deepocc.cells import ExperimentCell
from deepocc.engines import LocalEngine, run_cells, plan_cells
from deepocc.records import RecordStore

BIN = Path(sys.executable).parent

def _cell(**kw):
    return ExperimentCell(**{**dict(table='t', dataset='digits', category='3', method='rotation', heads=('kde', 'builtin'),
                                     preset='smoke', image_size=16, max_test=100), **kw})

def _no_compute(*a, **k): raise AssertionError('a valid stored record was recomputed')

def test_matching_record_is_reused(tmp_path, monkeypatch):
    st = RecordStore(tmp_path)
    first = run_cells([_cell()], st, LocalEngine(1), echo=False)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob('*.json')}
    monkeypatch.setattr(deepocc.engines, 'run_cell', _no_compute)
    again = run_cells([_cell(options={'progress': True})], st, LocalEngine(1), echo=False)  # logging settings are not results
    assert again == first and {p: p.stat().st_mtime_ns for p in tmp_path.glob('*.json')} == stamps

@pytest.mark.parametrize('change', ['config', 'source'])
def test_changed_config_or_source_is_recomputed(tmp_path, monkeypatch, change):
    st = RecordStore(tmp_path)
    old = run_cells([_cell()], st, LocalEngine(1), echo=False)
    cell = _cell()
    if change == 'config': cell = _cell(options={'steps': 3})  # the smoke preset trains 2 steps
    else: monkeypatch.setattr(deepocc.cells, 'source_hash', lambda *a, **k: {'heads': 'changedsource'})
    plan = plan_cells([cell], st)
    assert len(plan['stale']) == 2 and not plan['fresh']
    why = plan['stale'][0][1]
    assert any(w.startswith('config.train.steps: 2 -> 3') for w in why) if change == 'config' else any('-> changedsource' in w for w in why), why
    new = run_cells([cell], st, LocalEngine(1), echo=False)
    assert all(n['fingerprint'] != o['fingerprint'] for n, o in zip(new, old))
    assert len(list(tmp_path.glob('*.json'))) == 2, 'the stale records were replaced, not duplicated'

def test_local_workers_match_in_process(tmp_path):
    "2 worker processes x 1 thread give the records of 1 in-process worker x 1 thread."
    cells = [_cell(category=str(c)) for c in range(3)]
    a = run_cells(cells, RecordStore(tmp_path/'a'), LocalEngine(1, 1), echo=False)
    b = run_cells(cells, RecordStore(tmp_path/'b'), LocalEngine(2, 1), echo=False)
    assert [(r['fingerprint'], r['auroc']) for r in a] == [(r['fingerprint'], r['auroc']) for r in b]
    assert len({r['pid'] for r in b}) == 2 and os.getpid() not in {r['pid'] for r in b}

def test_wrong_address_is_a_clear_error():
    r = subprocess.run([str(BIN/'deepocc-reproduce'), '--preset', 'smoke', '--engine', 'ray', '--address', '127.0.0.1:9'],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--address '127.0.0.1:9'" in r.stderr and 'Traceback' not in r.stderr, r.stderr
    r = subprocess.run([str(BIN/'deepocc-reproduce'), '--help'], capture_output=True, text=True, timeout=120)
    for flag in ('--preset', '--only', '--jobs', '--seeds', '--engine', '--workers', '--threads', '--address', '--render-only', '--in-process'):
        assert flag in r.stdout, flag

def test_ray_cluster_in_private_network_namespace(root, smoke_root):
    """The Ray tests (tests/ray_in_netns.py: a real cluster gives the local records, a killed worker's cell is retried, every
    socket is on loopback) run with their cluster and driver in a fresh network namespace whose only interface is
    loopback: Ray 2.60 on 127.0.0.1 still registers its node under the machine's external address and listens on all
    interfaces. Fails, saying why, where the namespace cannot be made (no root, no unshare, ...)."""
    cmd = [str(root/'tools'/'loopback_only.sh'), sys.executable, '-m', 'pytest', str(root/'tests'/'ray_in_netns.py'), '-q', '-p', 'no:cacheprovider']
    env = {**os.environ, 'RAY_USAGE_STATS_ENABLED': '0', 'DEEPOCC_HOST_NETNS': os.readlink('/proc/self/ns/net'),
           'DEEPOCC_LOCAL_SMOKE_RECORDS': str(smoke_root[0]/'runs'/'smoke'/'records')}  # compared with the Ray records
    try: r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as e:  # loopback_only.sh is killed, and with it everything in its namespaces
        out = (e.stdout or b'').decode() if isinstance(e.stdout, bytes) else (e.stdout or '')
        pytest.fail(f'the Ray tests ran past 900 s:\n{out[-6000:]}')
    out = f'{r.stdout[-8000:]}\n{r.stderr[-4000:]}'
    if r.returncode == 125: pytest.fail(f'cannot run the Ray tests in a private network namespace:\n{r.stderr[-2000:]}')
    assert r.returncode == 0, f'the Ray tests in the private network namespace failed (rc {r.returncode}):\n{out}'
    print(r.stdout.strip().splitlines()[-1])

def _pids(match)->list:
    "PIDs of processes whose (ppid, cmdline) satisfy `match`."
    out = []
    for p in Path('/proc').iterdir():
        if not p.name.isdigit(): continue
        try:
            ppid = int((p/'stat').read_text().rsplit(')', 1)[1].split()[1])
            cmd = (p/'cmdline').read_bytes()
        except (OSError, IndexError, ValueError): continue
        if match(ppid, cmd): out.append(int(p.name))
    return out

def _local_worker_pids():
    "This process's spawned worker processes."
    return _pids(lambda ppid, cmd: ppid == os.getpid() and b'multiprocessing' in cmd and b'resource_tracker' not in cmd)

def _kill_one_worker(find, need:int, delay:float, killed:list):
    "A thread that SIGKILLs the first of `find()` once at least `need` are up and `delay` s have passed; PIDs go to `killed`."
    def run():
        t0 = time.time()
        while time.time() - t0 < 120 and not killed:
            pids = find()
            if len(pids) >= need:
                time.sleep(delay)  # let the cell get into training
                try: os.kill(pids[0], signal.SIGKILL); killed.append(pids[0])
                except ProcessLookupError: pass
            time.sleep(0.1)
    th = threading.Thread(target=run); th.start()
    return th

def test_killed_local_worker_cell_is_retried(tmp_path):
    "SIGKILL a local worker mid-grid: the pool is restarted, the unfinished cells run again, nothing is lost or doubled."
    cells = [_cell(category=str(c), heads=('kde',), options={'steps': 150, 'batch_size': 16}) for c in range(4)]
    killed = []
    th = _kill_one_worker(_local_worker_pids, 2, 3.0, killed)  # 3 s: the workers have imported deepocc and started
    st, delivered = RecordStore(tmp_path), []
    orig = st.put
    st.put = lambda r: (delivered.append(r['category']), orig(r))[1]
    recs = run_cells(cells, st, LocalEngine(2, 1), echo=False)
    th.join()
    assert killed, 'no worker process was found to kill'
    assert sorted(r['category'] for r in recs) == ['0', '1', '2', '3'] and sorted(delivered) == ['0', '1', '2', '3']
    assert killed[0] not in {r['pid'] for r in recs}
