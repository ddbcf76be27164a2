"""Carry records over a change of the fingerprint's format, never over a change of what they compute (one-off, audited).

    .venv/bin/python tools/upgrade_records.py records/cpu --from-rev f9623eb [--write]

The records in records/cpu were computed at git f9623eb, when a record's `inputs.source` was one hash of the compute
modules' raw text and stored no library versions. The fingerprint now holds one syntax-tree hash per module and the
library versions (`deepocc.records.source_hash`, `environment`). A record is carried over only when
  1. its stored source hash equals the old-format hash of the compute modules at `--from-rev` (so it was computed by
     exactly that code), and
  2. the compute modules of this checkout differ from `--from-rev` only in the fingerprint's own bookkeeping: top-level
     definitions are compared as syntax trees without docstrings, and only `cells.cell_inputs`, `cells._cell_modules`
     and the modules' import lines may differ.
Its `inputs.source` and `inputs.env` are then set to what `cell_inputs` computes now and the fingerprint recomputed;
`env_stamped` says that the versions were stamped here, not recorded when the result was computed. Any other record
is left as it is (it stays stale). Without --write nothing is written.
"""
import argparse, ast, hashlib, json, re, subprocess, sys
from pathlib import Path
from deepocc.data import atomic_write_json
from deepocc.records import COMPUTE_MODULES, RecordStore, environment, fingerprint, source_hash, _without_docstrings

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {('cells', 'cell_inputs'), ('cells', '_cell_modules')}

def legacy_source_hash(texts:dict)->str:
    "The old format: sha256 over each module's raw text without nbdev's cell markers."
    h = hashlib.sha256()
    for m in COMPUTE_MODULES:
        if m in texts: h.update(m.encode() + b'\0' + re.sub(r'(?m)^# %% .*\n', '', texts[m]).encode() + b'\0')
    return h.hexdigest()[:12]

def top_level(text:str)->dict:
    "Top-level definitions (and other statements, by position) as syntax-tree dumps without docstrings; imports left out."
    out = {}
    for i, n in enumerate(_without_docstrings(ast.parse(text)).body):
        if isinstance(n, (ast.Import, ast.ImportFrom)): continue
        name = getattr(n, 'name', None) or (n.targets[0].id if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) else f'#{i}')
        out[name] = ast.dump(n)
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('folder'); ap.add_argument('--from-rev', required=True); ap.add_argument('--write', action='store_true')
    a = ap.parse_args()
    old = {m: subprocess.run(['git', 'show', f'{a.from_rev}:deepocc/{m}.py'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
           for m in COMPUTE_MODULES}
    new = {m: (ROOT/'deepocc'/f'{m}.py').read_text() for m in COMPUTE_MODULES}
    changed = sorted((m, k) for m in COMPUTE_MODULES for k in set(top_level(old[m])) | set(top_level(new[m]))
                     if top_level(old[m]).get(k) != top_level(new[m]).get(k))
    print(f'compute code changed since {a.from_rev}: {changed}')
    if not set(changed) <= ALLOWED: sys.exit(f'refusing: {sorted(set(changed) - ALLOWED)} changed what the records compute')
    legacy, env = legacy_source_hash(old), environment()
    n_up = n_skip = 0
    for p in sorted(Path(a.folder).glob('*.json')):
        r = json.loads(p.read_text())
        inp = r.get('inputs') or {}
        if inp.get('source') != legacy: n_skip += 1; continue
        mods = COMPUTE_MODULES if inp.get('kind') == 'localization' else tuple(m for m in COMPUTE_MODULES if m != 'localize')
        inp = {**inp, 'source': source_hash(mods), 'env': env}
        r.update(inputs=inp, fingerprint=fingerprint(inp), env=env, uncommitted_compute=[],
                 env_stamped=f'library versions stamped by tools/upgrade_records.py (not recorded when computed at {a.from_rev}; '
                             'the same pinned setup); source carried over from the old-format hash ' + legacy)
        n_up += 1
        if a.write: atomic_write_json(p, r)
    print(f"{n_up} records {'upgraded' if a.write else 'would be upgraded'}, {n_skip} left as they are (not computed at {a.from_rev})")

if __name__ == '__main__': main()
