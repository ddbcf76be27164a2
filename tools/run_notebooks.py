"""Execute the library notebooks in place, so they are committed with their outputs (the nbdev way).

    .venv/bin/python tools/run_notebooks.py [--skip-slow] [NAME ...]   # e.g. 03_pretext; default: every nbs/NN_*.ipynb

Each notebook runs top to bottom in a fresh kernel started in nbs/, cells flagged `#| slow` too (their outputs are
documentation), unless --skip-slow leaves them out (they keep the outputs they had, as the test runner skips them). Progress bars and kernel warnings are dropped from the outputs; an error stops with the traceback.
Run `nbdev_clean` afterwards (the Makefile's `notebooks` target does both).
"""
import re, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOISE = re.compile(r'\r|TqdmWarning|IProgress not found|from \.autonotebook import|Kernel is running over TCP')

def tidy(nb):
    "Drop progress bars and warnings from stream outputs; keep results, prints and figures."
    for c in nb.cells:
        if c.cell_type != 'code': continue
        keep = []
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream' and o.get('name') == 'stderr' and NOISE.search(o.get('text', '')): continue
            keep.append(o)
        c['outputs'] = keep
    return nb

SLOW = re.compile(r'^\s*#\|\s*(slow|notest|gpu)\b', re.M)

def run(path:Path, skip_slow:bool=False)->float:
    "Execute one notebook in place; return seconds."
    nb = nbformat.read(path, as_version=4)
    held = {}
    if skip_slow:
        for i, c in enumerate(nb.cells):
            head = '\n'.join(c.source.splitlines()[:3])
            if c.cell_type == 'code' and SLOW.search(head): held[i] = (c.source, c.get('outputs', [])); c.source = ''
    t0 = time.time()
    NotebookClient(nb, timeout=1800, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}}).execute()
    for i, (src, outs) in held.items(): nb.cells[i].source, nb.cells[i].outputs, nb.cells[i].execution_count = src, outs, None
    nbformat.write(tidy(nb), path)
    return time.time() - t0

if __name__ == '__main__':
    skip = '--skip-slow' in sys.argv
    names = [a for a in sys.argv[1:] if a != '--skip-slow']
    nbs = sorted((ROOT/'nbs').glob('[0-9][0-9]_*.ipynb'))
    if names: nbs = [p for p in nbs if any(p.stem.startswith(n) for n in names)]
    for p in nbs: print(f'{p.name}: {run(p, skip):.0f} s', flush=True)
