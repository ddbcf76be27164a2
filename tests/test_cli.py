"""The `deepocc` command line on folders built from real images: Fashion-MNIST written as PNG files (scikit-learn's digits
where Fashion-MNIST is not installed). fit, score and heatmap run as people run them (the installed console script, in a
subprocess); the error cases call the same `main` in-process, which saves a torch import per case."""
import contextlib, csv, io, pickle, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from deepocc.data import available, load_one_class

BIN = Path(sys.executable).parent
SMOKE = ['--preset', 'smoke', '--image-size', '16', '--threads', '1']

def deepocc(*args, check_rc=None):
    "Run the console script; return the CompletedProcess."
    exe = BIN/'deepocc'
    cmd = [str(exe)] if exe.exists() else [sys.executable, '-m', 'deepocc.cli']
    r = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=300)
    if check_rc is not None: assert r.returncode == check_rc, f'rc {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}'
    return r

def deepocc_inproc(*args, check_rc=None):
    "`deepocc.cli.main` in this process: (exit status, stdout, stderr)."
    from deepocc.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: rc = main([str(a) for a in args])
        except SystemExit as e: rc = e.code
    if check_rc is not None: assert rc == check_rc, f'rc {rc}\nstdout: {out.getvalue()}\nstderr: {err.getvalue()}'
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())

@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    "normal/: 40 training images of one class; test/: 10 of that class and 10 of others (28×28 PNGs of real data)."
    root = tmp_path_factory.mktemp('cli')
    d = load_one_class('fmnist', 'trouser') if available('fmnist') else load_one_class('digits', 0, size=28)
    crop = 2 if d.name == 'fmnist' else 0
    def write(x, folder, names):
        folder.mkdir(parents=True, exist_ok=True)
        for im, n in zip(x, names):
            a = im[0].numpy(); Image.fromarray(a[crop:len(a) - crop, crop:len(a) - crop] if crop else a).save(folder/f'{n}.png')
    write(d.train[:40], root/'normal', [f'n{i:02d}' for i in range(40)])
    lab = d.test_labels.numpy()
    idx = np.concatenate([np.flatnonzero(lab == 0)[:10], np.flatnonzero(lab == 1)[:10]])
    write(d.test[idx], root/'test', [f"{'normal' if lab[i] == 0 else 'anomaly'}_{k:02d}" for k, i in enumerate(idx)])
    return root

@pytest.fixture(scope='module')
def model(folders):
    r = deepocc('fit', folders/'normal', '-o', folders/'model.pt', '--pretext', 'cutpaste_3way', '--head', 'gde', '--localizer', *SMOKE, check_rc=0)
    assert 'fitted cutpaste_3way + gde on 40 images' in r.stdout and (folders/'model.pt').is_file()
    assert 'reading images' in r.stderr                                    # progress bars on stderr (no --quiet)
    return folders/'model.pt'

def test_help():
    assert 'exit status: 0 success; 1 the command failed' in deepocc('--help', check_rc=0).stdout
    for args in (['fit'], ['score'], ['heatmap']):
        r = deepocc_inproc(*args, '--help', check_rc=0)
        assert 'exit status: 0 success; 1 the command failed' in r.stdout
    assert 'deepocc 0.' in deepocc_inproc('--version', check_rc=0).stdout

def test_score_writes_path_score_prediction(folders, model):
    deepocc('score', model, folders/'test', '-o', folders/'scores.csv', '--quiet', check_rc=0)
    rows = list(csv.DictReader(open(folders/'scores.csv')))
    assert len(rows) == 20 and set(rows[0]) == {'path', 'score', 'prediction'}
    assert {r['prediction'] for r in rows} <= {'normal', 'anomaly'} and all(np.isfinite(float(r['score'])) for r in rows)
    assert sorted(Path(r['path']).name for r in rows) == sorted(p.name for p in (folders/'test').iterdir())

@pytest.mark.parametrize('method', ['patch', 'gradcam'])
def test_heatmap_writes_one_png_per_image_at_its_size(folders, model, method):
    out = folders/f'maps_{method}'
    r = (deepocc if method == 'patch' else deepocc_inproc)('heatmap', model, folders/'test', '-o', out, '--method', method, '--quiet', check_rc=0)
    pngs = sorted(out.glob('*_heatmap.png'))
    assert len(pngs) == 20 and 'wrote 20 heatmaps' in r.stdout
    im = Image.open(pngs[0]); assert im.size == (28, 28) and im.mode == 'RGB'

def test_unreadable_files(folders, model, tmp_path):
    bad = tmp_path/'mixed'; bad.mkdir()
    for p in sorted((folders/'test').iterdir())[:5]: (bad/p.name).write_bytes(p.read_bytes())
    (bad/'zz_broken.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')
    r = deepocc_inproc('score', model, bad, '-o', tmp_path/'s.csv', '--quiet', check_rc=1)
    assert 'zz_broken.png' in r.stderr and '--on-error skip' in r.stderr and not (tmp_path/'s.csv').exists()
    r = deepocc_inproc('score', model, bad, '-o', tmp_path/'s.csv', '--quiet', '--on-error', 'skip', check_rc=0)
    assert 'warning: left out 1 unreadable image file(s)' in r.stderr and '1 unreadable' in r.stdout
    assert open(tmp_path/'s.csv').read().splitlines()[-1].endswith('zz_broken.png,,unreadable')

def test_clear_errors_and_exit_codes(folders, model, tmp_path):
    (tmp_path/'empty').mkdir()
    (tmp_path/'notes.txt').write_text('a text file')
    (tmp_path/'evil.pt').write_bytes(pickle.dumps({'format': 'deepocc.OneClassDetector'}))
    cases = [  # (arguments, exit status, phrase of the one-line error)
        (['fit', tmp_path/'nowhere', '-o', tmp_path/'m.pt'], 2, 'does not exist'),
        (['fit', tmp_path/'empty', '-o', tmp_path/'m.pt'], 1, 'holds no image files'),
        (['fit', folders/'normal', '-o', tmp_path/'m.pt', '--pretext', 'jigsaw'], 1, 'unknown pretext'),
        (['fit', folders/'normal'], 2, 'the following arguments are required: -o/--output'),
        (['score', tmp_path/'missing.pt', folders/'test', '-o', tmp_path/'s.csv'], 2, 'model file'),
        (['score', tmp_path/'notes.txt', folders/'test', '-o', tmp_path/'s.csv'], 1, 'is not a deepocc detector file'),
        (['score', tmp_path/'evil.pt', folders/'test', '-o', tmp_path/'s.csv'], 1, 'never loads'),
        (['heatmap', model, folders/'test', '-o', tmp_path/'maps', '--method', 'sobel'], 2, "invalid choice: 'sobel'"),
    ]
    r = deepocc(*cases[0][0], '--quiet', check_rc=2)                   # the console script's own exit status
    assert 'deepocc: error: ' in r.stderr and 'does not exist' in r.stderr
    for args, rc, phrase in cases:
        r = deepocc_inproc(*args, '--quiet', check_rc=rc)
        assert phrase in r.stderr, (args, r.stderr)
        assert 'Traceback' not in r.stderr

def test_score_and_heatmap_take_image_files(folders, model, tmp_path):
    files = sorted((folders/'test').iterdir())[:3]
    r = deepocc_inproc('score', model, *files, '-o', tmp_path/'s.csv', '--quiet', check_rc=0)
    assert [Path(row['path']).name for row in csv.DictReader(open(tmp_path/'s.csv'))] == [f.name for f in files]
    r = deepocc_inproc('heatmap', model, files[0], folders/'normal', '-o', tmp_path/'maps', '--quiet', check_rc=0)   # a file and a folder
    assert 'wrote 41 heatmaps' in r.stdout and (tmp_path/'maps'/f'{files[0].stem}_heatmap.png').is_file()
    deepocc_inproc('score', model, tmp_path/'nope.png', '-o', tmp_path/'t.csv', '--quiet', check_rc=2)

def test_errors_use_command_line_spelling(folders, tmp_path):
    deepocc_inproc('fit', folders/'normal', '-o', tmp_path/'plain.pt', '--pretext', 'cutpaste_3way', '--head', 'gde', *SMOKE, '--quiet', check_rc=0)
    r = deepocc_inproc('heatmap', tmp_path/'plain.pt', folders/'test', '-o', tmp_path/'maps', '--method', 'patch', '--quiet', check_rc=1)
    assert '--localizer' in r.stderr and "localizer='patch'" not in r.stderr and 'fit_localizer' not in r.stderr, r.stderr
    r = deepocc_inproc('fit', folders/'normal', '-o', tmp_path/'r.pt', '--image-size', '16x24', '--preset', 'smoke', '--quiet', check_rc=1)
    assert '--image-size 24' in r.stderr and 'image_size' not in r.stderr, r.stderr       # rotation trains on squares
    r = deepocc_inproc('fit', folders/'normal', '-o', tmp_path/'c.pt', '--contamination', '0.7', '--preset', 'smoke', '--quiet', check_rc=1)
    assert '--contamination must be' in r.stderr, r.stderr
    r = deepocc_inproc('fit', folders/'normal', '-o', tmp_path/'w.pt', '--pretext', 'cutpaste', '--image-size', '16x24', *SMOKE[2 + 2:], '--preset', 'smoke', '--quiet', check_rc=0)
    assert 'resized to 16×24' in r.stdout
