"""`make lab` starts JupyterLab in the project's environment, on 127.0.0.1 only, opened on nbs/; it lists the notebooks and stops."""
import json, os, secrets, signal, socket, subprocess, time, urllib.request
from pathlib import Path
import psutil

ROOT = Path(__file__).resolve().parent.parent

def _free_port()->int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def test_make_lab_serves_the_notebooks_on_loopback_only(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, 'JUPYTER_RUNTIME_DIR': str(tmp_path/'rt'), 'JUPYTER_CONFIG_DIR': str(tmp_path/'cfg'),
           'JUPYTER_DATA_DIR': str(tmp_path/'data'), 'BROWSER': 'true'}
    p = subprocess.Popen(['make', '-s', 'lab', f'LAB_ARGS=--no-browser --port={port} --ServerApp.port_retries=0 '
                          f'--IdentityProvider.token={token}'], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        listing, t0 = None, time.time()
        while time.time() - t0 < 120 and listing is None:
            assert p.poll() is None, p.stdout.read().decode()[-3000:]
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/api/contents?token={token}', timeout=5) as r: listing = json.load(r)
            except OSError: time.sleep(1)
        assert listing is not None, 'JupyterLab did not answer on 127.0.0.1 within 120 s'
        names = {c['name'] for c in listing['content']}
        assert {'00_data.ipynb', '06_detector.ipynb', 'index.ipynb', 'paper', 'tutorials'} <= names, names
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/api/contents/paper?token={token}', timeout=10) as r:
            assert 'table1_semantic.ipynb' in {c['name'] for c in json.load(r)['content']}
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/lab?token={token}', timeout=10) as r:
            assert r.status == 200 and b'JupyterLab' in r.read()
        procs = [q for q in psutil.Process(p.pid).children(recursive=True) if 'jupyter' in ' '.join(q.cmdline())]
        assert procs, 'no jupyter process found under make'
        socks = [c for q in procs for c in q.net_connections(kind='inet')]
        listening = {c.laddr.ip for c in socks if c.status == psutil.CONN_LISTEN}
        assert listening and all(ip.startswith('127.') for ip in listening), listening
        assert all(c.raddr.ip.startswith('127.') for c in socks if c.raddr), [c.raddr for c in socks if c.raddr]
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try: p.wait(30)
        except subprocess.TimeoutExpired: os.killpg(p.pid, signal.SIGKILL); p.wait(10)
    time.sleep(1)
    with socket.socket() as s:
        assert s.connect_ex(('127.0.0.1', port)) != 0, 'the server still answers after it was stopped'
