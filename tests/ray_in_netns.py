"""The Ray tests: a real Ray cluster (bound to 127.0.0.1, usage statistics off) runs the same grid with the same records as
local workers; a killed Ray worker's cell is retried; no process of the cluster or the driver listens on or talks to
anything but loopback.

They run only inside a private network namespace whose only interface is loopback (Ray 2.60 otherwise registers its
node under the machine's external address and listens on all interfaces), so pytest does not collect this file by
itself (its name does not start with `test_`); `test_engines.py::test_ray_cluster_in_private_network_namespace` runs it:

    tools/loopback_only.sh .venv/bin/python -m pytest tests/ray_in_netns.py -q -p no:cacheprovider
"""
import ipaddress, json, os, socket, subprocess, threading, time
from pathlib import Path
import psutil, pytest
from deepocc.engines import EngineError, LocalEngine, RayEngine, LocalRayCluster, run_cells
from deepocc.records import RecordStore
from deepocc.reproduce import run_batch
from conftest import copy_project
from test_engines import BIN, _cell, _pids, _kill_one_worker

def _is_loopback(ip:str)->bool:
    a = ipaddress.ip_address(ip.split('%')[0])
    if a.version == 6 and a.ipv4_mapped: a = a.ipv4_mapped  # ::ffff:127.0.0.1
    return a.is_loopback

def interfaces()->list:
    "This process's network interfaces (from /proc/self/net/dev, which, unlike /sys/class/net, follows the network namespace)."
    return sorted(l.split(':')[0].strip() for l in Path('/proc/self/net/dev').read_text().splitlines()[2:])

def namespace_problem()->str|None:
    "None when this process is in a private network namespace whose only interface is loopback with loopback addresses; else why not."
    if (ifs := interfaces()) != ['lo']: return f'network interfaces besides lo: {ifs}'
    addrs = [a.address for ads in psutil.net_if_addrs().values() for a in ads if a.family in (socket.AF_INET, socket.AF_INET6)]
    if not addrs or (bad := [a for a in addrs if not _is_loopback(a)]): return f'lo is down or has non-loopback addresses: {addrs}'
    host = os.environ.get('DEEPOCC_HOST_NETNS')  # set by the outer test to its own namespace
    if host and host == os.readlink('/proc/self/ns/net'): return f'same network namespace as the outer test ({host})'
    return None

def _sockets()->list:
    "Every TCP and UDP socket in this network namespace (psutil reads /proc/net/*, which is per namespace): (pid, process, local, remote, status)."
    out = []
    for c in psutil.net_connections(kind='inet'):
        try: name = psutil.Process(c.pid).name() if c.pid else '?'
        except psutil.Error: name = '?'
        out.append((c.pid, name, tuple(c.laddr) if c.laddr else None, tuple(c.raddr) if c.raddr else None, c.status))
    return out

def _off_loopback(socks:list, only_lo:bool)->list:
    "The sockets that listen on or connect to an address outside 127.0.0.0/8 and ::1 (a wildcard listener passes only if `only_lo`)."
    def ok_local(ip): return _is_loopback(ip) or (only_lo and ipaddress.ip_address(ip.split('%')[0]).is_unspecified)
    return [s for s in socks if (s[2] and not ok_local(s[2][0])) or (s[3] and not _is_loopback(s[3][0]))]

def test_runs_in_private_loopback_namespace():
    "This process (the Ray driver) and hence the cluster it starts are in a private network namespace with only lo."
    assert namespace_problem() is None, namespace_problem()
    ip = subprocess.run(['ip', '-o', 'addr'], capture_output=True, text=True).stdout
    addrs = [l.split()[3].split('/')[0] for l in ip.splitlines()]
    assert addrs and all(_is_loopback(a) for a in addrs), ip

@pytest.fixture(scope='module')
def ray_cluster():
    "A real Ray head node on 127.0.0.1 (own port and temp folder, no dashboard, no usage stats), stopped also on failure."
    if (why := namespace_problem()):
        pytest.fail(f'refusing to start Ray outside a private loopback-only network namespace ({why}); run this file as '
                    f'tools/loopback_only.sh .venv/bin/python -m pytest tests/ray_in_netns.py')
    cl = LocalRayCluster(num_cpus=2)
    try:
        try: cl.start()
        except EngineError as e:  # Ray's raylet waits only 15 s for its agents to start (ray-project/ray#65983): on a loaded machine, once more
            print(f'ray start failed, retried once: {str(e)[-300:]}')
            cl.stop()
            cl = LocalRayCluster(num_cpus=2).start()
        yield cl
    finally: cl.stop()

def _ray_cell_pids():
    "Ray worker processes now running a deepocc cell (Ray titles them ray::<task name>)."
    return _pids(lambda ppid, cmd: cmd.startswith(b'ray::deepocc_cell'))

def test_ray_sockets_are_loopback_only(ray_cluster, tmp_path):
    "While cells run on the cluster, no socket of the cluster, its workers or this driver is off loopback."
    eng = RayEngine(ray_cluster.address)
    ray = eng.connect()
    assert {n['NodeManagerAddress'] for n in ray.nodes()} == {'127.0.0.1'}, ray.nodes()
    cells = [_cell(category=str(c), heads=('kde',), options={'steps': 150, 'batch_size': 16}) for c in range(2)]
    samples, stop = [], threading.Event()
    def watch():
        while not stop.is_set():
            if (busy := _ray_cell_pids()): samples.append((busy, _sockets()))
            time.sleep(0.3)
    th = threading.Thread(target=watch); th.start()
    try: recs = run_cells(cells, RecordStore(tmp_path), eng, echo=False)
    finally: stop.set(); th.join()
    assert len(recs) == 2
    assert samples, 'no socket sample was taken while a cell ran on the cluster'
    only_lo = namespace_problem() is None
    port = int(ray_cluster.address.rsplit(':', 1)[1])
    for busy, socks in samples + [([], _sockets())]:
        assert not _off_loopback(socks, only_lo), _off_loopback(socks, only_lo)
        assert any(s[4] == psutil.CONN_LISTEN and s[2][1] == port and s[1] == 'gcs_server' for s in socks), socks  # not vacuous
    busy, socks = samples[-1]
    owners = {s[0] for s in socks}
    assert os.getpid() in owners and set(busy) & owners, 'the driver and the busy worker have sockets, all on loopback'
    print(f'{len(samples)} samples while cells ran; last: {len(socks)} sockets, all on 127.0.0.1/::1')

def _records(folder): return {p.name: json.loads(p.read_text()) for p in sorted(Path(folder).glob('*.json'))}

def test_ray_smoke_grid_equals_local(ray_cluster, tmp_path):
    "Table 1 of the smoke preset on local workers and on the Ray cluster: the same records (fingerprints, AUROCs)."
    if os.environ.get('DEEPOCC_LOCAL_SMOKE_RECORDS'):  # the outer suite's local smoke batch (tests/conftest.py smoke_root)
        local_dir = Path(os.environ['DEEPOCC_LOCAL_SMOKE_RECORDS'])
    else:
        local_root = copy_project(tmp_path/'local')
        res = run_batch('smoke', only=['table1'], root=local_root, in_process=True)
        assert res and all(r['ok'] for r in res), res
        local_dir = local_root/'runs'/'smoke'/'records'
    root = copy_project(tmp_path/'ray')
    r = subprocess.run([str(BIN/'deepocc-reproduce'), '--in-process', '--preset', 'smoke', '--engine', 'ray', '--address', ray_cluster.address,
                        '--only', 'table1'], cwd=root, capture_output=True, text=True, timeout=900,
                       env={**os.environ, 'RAY_USAGE_STATS_ENABLED': '0'})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ray_recs = _records(root/'runs'/'smoke'/'records')
    local_recs = {k: v for k, v in _records(local_dir).items() if v['table'] == 'table1'}
    assert ray_recs.keys() == local_recs.keys() and len(ray_recs) >= 3 and {v['table'] for v in ray_recs.values()} == {'table1'}
    for k in ray_recs:
        a, b = ray_recs[k], local_recs[k]
        assert a['fingerprint'] == b['fingerprint'], k
        for f in ('auroc', 'pixel_auroc'):
            if f in a: assert a[f] == pytest.approx(b[f], abs=1e-9), (k, f, a[f], b[f])
    assert {v['pid'] for v in ray_recs.values()}.isdisjoint({v['pid'] for v in local_recs.values()})

def test_killed_ray_worker_cell_is_retried(ray_cluster, tmp_path):
    cells = [_cell(category=str(c), heads=('kde',), options={'steps': 150, 'batch_size': 16}) for c in range(4)]
    killed = []
    th = _kill_one_worker(_ray_cell_pids, 1, 1.0, killed)
    delivered = []
    eng = RayEngine(ray_cluster.address)
    st = RecordStore(tmp_path)
    orig = st.put
    st.put = lambda r: (delivered.append(tuple(r[k] for k in ('category', 'head', 'seed'))), orig(r))[1]
    recs = run_cells(cells, st, eng, echo=False)
    th.join()
    assert killed, 'no Ray worker running a cell was found to kill'
    assert len(recs) == 4 and sorted(r['category'] for r in recs) == ['0', '1', '2', '3'], 'the grid completed'
    assert len(delivered) == len(set(delivered)) == 4, f'each record written once: {delivered}'
    assert killed[0] not in {r['pid'] for r in recs}, 'the killed worker delivered nothing; its cell ran again elsewhere'
    ref = run_cells([cells[0]], RecordStore(tmp_path/'ref'), LocalEngine(1, 1), echo=False)[0]
    assert ref['auroc'] == pytest.approx(next(r for r in recs if r['category'] == '0')['auroc'], abs=1e-9)
