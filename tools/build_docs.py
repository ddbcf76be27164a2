"""Build the documentation site from the notebooks into `_site/` (nbdev_docs needs Quarto, which cannot be installed here).

The site is made with mkdocs, the Material theme and mkdocs-jupyter, from a docs source folder generated here:
- `index.md`: README.md (itself generated from nbs/index.ipynb), with the images of `figures/` copied beside it;
- `api/NN_*.ipynb`: every library notebook with the `#| hide` cells dropped, the `#| ...` directive lines stripped, and
  after every `#| export` cell a docments-style table (parameter | type | default | comment) of each public function
  and class it defines, read from the cell's source (what nbdev exports) with `ast` and `tokenize` by the rules of
  fastcore.docments (nothing is imported, so the build needs neither torch nor an up-to-date `nbdev_export`);
- `paper/*.ipynb`: every paper notebook, as committed: executed at the `cpu` preset (`deepocc-reproduce --into-nbs`).
- `tutorials/*.ipynb`: the tutorials, as committed (executed).
Notebooks are never executed. Usage: `python tools/build_docs.py [--out DIR] [--src DIR]`, or `make docs`.
"""
from __future__ import annotations
import argparse, ast, json, logging, re, shutil, tempfile, time
from pathlib import Path
from fastcore.basics import AttrDict
from nbdev.config import get_config
from nbdev.process import extract_directives, first_code_ln

ROOT = Path(__file__).resolve().parent.parent
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp')
log = logging.getLogger('build_docs')

# ---------------------------------------------------------------- notebook processing
def directives(source:str)->tuple[dict, str]:
    "The `#| ...` directives at the top of a cell's source, read by nbdev (name -> arguments), and the code below them."
    lines = source.splitlines(True)
    found = {k.rstrip(':'): v for k, v in extract_directives(AttrDict(source=source), remove=False).items()}
    n = first_code_ln(lines)
    return found, ''.join(lines[n:]) if n is not None else ''

def _code(s:str)->str:
    "An inline-code table cell (HTML, so that a `|` in it neither splits the row nor shows a backslash)."
    import html
    return f"<code>{html.escape(' '.join(str(s).split()), quote=False).replace('|', '&#124;')}</code>" if s != '' else ''

def _md(s:str)->str:
    "A markdown table cell: backtick spans as inline code, no raw `|`."
    parts = re.split(r'`([^`]*)`', ' '.join(str(s).split()))
    return ''.join(_code(p) if i % 2 else p.replace('|', '&#124;') for i, p in enumerate(parts))

def _comments(source:str)->dict[int, str]:
    "Line number -> text of each comment in `source`."
    import io, tokenize
    try: toks = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError): return {}
    return {t.start[0]: t.string.lstrip('#').strip() for t in toks if t.type == tokenize.COMMENT}

def _comment(line:int, comments:dict, taken:set)->str:
    "fastcore.docments' rule: the comment on the parameter's line, else the comment lines just above it."
    if line in comments: return comments[line]
    res, line = [], line - 1
    while line in comments and line not in taken: res.append(comments[line]); line -= 1
    return ' '.join(reversed(res))

def _literal_type(node)->str:
    "The type of a literal default (what docments shows for a parameter without annotation)."
    try: v = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError): return ''
    return '' if v is None else type(v).__name__

def _short(s:str, n:int=60)->str: return s if len(s) <= n else s[:n - 3] + '...'

def _rows(node, comments:dict)->list[tuple]:
    "(name, type, default, comment) of a function's parameters and its return, as docments reads them."
    a = node.args
    pos = a.posonlyargs + a.args
    defaults = dict(zip([p.arg for p in pos][len(pos) - len(a.defaults):], a.defaults))
    defaults.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None})
    params = [(p, '') for p in pos] + ([(a.vararg, '*')] if a.vararg else []) + [(p, '') for p in a.kwonlyargs] \
           + ([(a.kwarg, '**')] if a.kwarg else [])
    # a line's comment belongs to the last thing declared on it: a parameter, or the return annotation
    owner = {p.lineno: p.arg for p, _ in params} | ({node.returns.lineno: 'return'} if node.returns else {})
    rows = []
    for i, (p, star) in enumerate(params):
        if i == 0 and p.arg in ('self', 'cls') and not star: continue
        d = defaults.get(p.arg)
        anno = _unparse_anno(p.annotation) if p.annotation is not None else (_literal_type(d) if d is not None else '')
        com = _comment(p.lineno, comments, set(owner)) if owner.get(p.lineno) == p.arg else ''
        rows.append((star + p.arg, anno, _short(ast.unparse(d)) if d is not None else '', com))
    if node.returns is not None:
        anno, com = _unparse_anno(node.returns), comments.get(node.returns.lineno, '')
        if anno != 'None' or com: rows.append(('return', anno, '', com))
    return rows

def _unparse_anno(a)->str:
    "An annotation's source; a string annotation (a forward reference) without its quotes."
    return a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else ast.unparse(a)

def _is_dataclass(node:ast.ClassDef)->bool:
    return any(re.match(r'(\w+\.)*dataclass\b', ast.unparse(d)) for d in node.decorator_list)

def _class_rows(node:ast.ClassDef, comments:dict, known:dict)->list[tuple]|None:
    "The constructor's parameters: a dataclass' fields, its own `__init__`'s, or those of a base class seen before."
    if _is_dataclass(node):
        fields = [f for f in node.body if isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name)
                  and not ast.unparse(f.annotation).startswith(('ClassVar', 'typing.ClassVar'))]
        taken = {f.lineno for f in fields}
        return [(f.target.id, _unparse_anno(f.annotation), _short(ast.unparse(f.value)) if f.value is not None else '',
                 _comment(f.lineno, comments, taken)) for f in fields]
    init = next((m for m in node.body if isinstance(m, ast.FunctionDef) and m.name == '__init__'), None)
    if init is not None: return _rows(init, comments)
    for b in node.bases:
        if (rows := known.get(ast.unparse(b))) is not None: return rows
    return None

def docments_table(rows:list[tuple]|None)->str|None:
    "A markdown table parameter | type | default | comment, or None if it would say nothing."
    if not rows or not any(r[1] or r[2] or r[3] for r in rows): return None
    cells = [('**returns**' if n == 'return' else _code(n), _code(t), _code(d), _md(c)) for n, t, d, c in rows]
    return '\n'.join(['| parameter | type | default | comment |', '| --- | --- | --- | --- |']
                     + ['| ' + ' | '.join(r) + ' |' for r in cells])

def _entry(title:str, node, rows)->str|None:
    table = docments_table(rows)
    if table is None: return None
    doc = (ast.get_docstring(node) or '').strip().split('\n\n')[0].replace('\n', ' ')
    return f'#### {title}\n\n' + (f'> {doc}\n\n' if doc else '') + table

def _patched_class(node)->str|None:
    "The class a fastcore `@patch`-style function is patched onto: the annotation of its first parameter."
    if not any(re.match(r'(\w+\.)*patch(_method|_to)?\b', ast.unparse(d)) for d in node.decorator_list): return None
    args = node.args.posonlyargs + node.args.args
    if not args or args[0].annotation is None: return None
    return ast.unparse(args[0].annotation).strip('\'"').split('|')[0].strip()

def _is_property(node)->bool:
    return any(re.match(r'(\w+\.)*(property|cached_property|\w+\.setter)\b', ast.unparse(d)) for d in node.decorator_list)

def export_tables(source:str, known:dict|None=None, where:str='')->str|None:
    """Markdown: a docments table for each public function and class (and the class' public methods) that an export
    cell defines, read from the cell's source (the exported module's source) with `ast` and `tokenize`, following
    fastcore.docments' rules. `known` maps the class names seen so far to their constructor rows (for subclasses)."""
    known = {} if known is None else known
    try: tree = ast.parse(source)
    except SyntaxError as e:
        log.warning('cannot parse an export cell of %s: %s', where, e); return None
    comments, parts = _comments(source), []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            rows = _class_rows(node, comments, known)
            if rows is not None: known[node.name] = rows
            if node.name.startswith('_'): continue
            if e := _entry(node.name, node, rows): parts.append(e)
            for m in node.body:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and not m.name.startswith('_') and not _is_property(m):
                    if e := _entry(f'{node.name}.{m.name}', m, _rows(m, comments)): parts.append(e)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith('_') and not _is_property(node):
            cls = _patched_class(node)
            if e := _entry(f'{cls}.{node.name}' if cls else node.name, node, _rows(node, comments)): parts.append(e)
    return '\n\n'.join(parts) or None

def _cell(cell_type:str, source:str)->dict:
    c = {'cell_type': cell_type, 'metadata': {}, 'source': source}
    if cell_type == 'code': c.update(outputs=[], execution_count=None)
    return c

def process_notebook(nb:dict, api:bool=False)->dict:
    """Drop `#| hide` cells and empty directive-only cells, strip `#|` lines; with `api`, add a docments table after
    every `#| export` cell for each public function and class it defines."""
    known, cells, where = {}, [], 'a notebook'
    for c in nb['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] != 'code':
            cells.append({**c, 'source': src}); continue
        found, body = directives(src)
        names = set(found)
        if 'default_exp' in names: where = 'deepocc.' + ''.join(found['default_exp'][:1])
        if api and names & {'export', 'exports', 'exporti'}:
            tables = export_tables(body, known, where)  # exporti cells too: their classes may be base classes
            if 'exporti' in names: tables = None
        else: tables = None
        if 'hide' in names or (found and not body.strip() and not c.get('outputs')): continue
        cells.append({**c, 'source': body})
        if tables: cells.append(_cell('markdown', tables))
    meta = {k: v for k, v in nb.get('metadata', {}).items() if k in ('kernelspec', 'language_info')}
    meta.setdefault('kernelspec', {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'})
    meta.setdefault('language_info', {'name': 'python'})
    for i, c in enumerate(cells): c['id'] = f'cell-{i}'
    return {'cells': cells, 'metadata': meta, 'nbformat': 4, 'nbformat_minor': 5}

def _read_nb(p:Path, tries:int=3)->dict|None:
    "A notebook's JSON; None if it cannot be read (e.g. an executed copy that a running batch is rewriting)."
    for i in range(tries):
        try: return json.loads(p.read_text(encoding='utf-8'))
        except (OSError, ValueError) as e:
            if i == tries - 1: log.warning('cannot read %s (%s)', p, e)
            else: time.sleep(1)  # a notebook being saved by another process: try again
    return None

def _h1(nb:dict)->str|None:
    for c in nb['cells']:
        if c['cell_type'] == 'markdown' and (m := re.search(r'^#\s+(.+)$', c['source'], re.M)): return m.group(1).strip()
    return None

# ---------------------------------------------------------------- mkdocs hooks (this file is also the config's hooks module)
# mkdocs-jupyter inlines the same ~600 kB of CSS into every notebook page, which makes pages heavy and Material's search
# indexer slow (most of the build time); the hook moves each large <style> block into one shared file instead.
_shared_css:dict = {}

def on_page_content(html, page, config, files):
    import hashlib
    def move(m):
        css = m.group(1)
        if len(css) < 2000: return m.group(0)
        name = f'assets/notebook/{hashlib.sha1(css.encode()).hexdigest()[:12]}.css'
        _shared_css[name] = css
        up = '../' * page.url.count('/') if config.get('use_directory_urls') else '../' * page.file.dest_uri.count('/')
        return f'<link rel="stylesheet" href="{up}{name}">'
    html = re.sub(r'<style type="text/css">(.*?)</style>', move, html, flags=re.S)
    return _fix_heading_ids(html, page) if page.file.src_uri.endswith('.ipynb') else html

_HEADING = re.compile(r'<h([1-6]) id="([^"]*)">(.*?)<a class="anchor-link" href="#\2">', re.S)

def _fix_heading_ids(html:str, page)->str:
    """Make a notebook page's table of contents point at its headings. mkdocs-jupyter takes the TOC from a Markdown
    export, whose ids differ from the HTML's for headings with code in them and for repeated headings (the HTML repeats
    an id where the TOC appends _1): make the HTML ids unique the same way, then give each TOC entry, in order, the id
    of the next heading of its level."""
    seen, heads = set(), []
    def unique(m):
        level, hid = int(m.group(1)), m.group(2)
        new, n = hid, 0
        while new in seen: n += 1; new = f'{hid}_{n}'
        seen.add(new); heads.append((level, new))
        return f'<h{level} id="{new}">{m.group(3)}<a class="anchor-link" href="#{new}">'
    html = _HEADING.sub(unique, html)
    i = 0
    def walk(items):
        nonlocal i
        for item in items:
            j = next((k for k in range(i, len(heads)) if heads[k][0] == item.level), None)
            if j is not None: item.id, i = heads[j][1], j + 1
            walk(item.children)
    walk(page.toc)
    return html

def on_config(config):
    """Let Material's search index a notebook page's code as text, without its highlighting spans (~100,000 tags per
    page, most of the indexing time); the page itself keeps them."""
    try: from material.plugins.search.plugin import SearchIndex
    except ImportError: return config
    orig = SearchIndex.add_entry_from_context
    if getattr(orig, 'light_notebooks', False): return config
    def add_entry_from_context(self, page):
        full = page.content
        if page.file.src_uri.endswith('.ipynb'): page.content = re.sub(r'</?span\b[^>]*>', '', full)
        try: return orig(self, page)
        finally: page.content = full
    add_entry_from_context.light_notebooks = True
    SearchIndex.add_entry_from_context = add_entry_from_context
    return config

def on_post_build(config):
    for name, css in _shared_css.items():
        p = Path(config['site_dir'])/name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(css, encoding='utf-8')

# a "Notebook" button on notebook pages, linking to the page's notebook (mkdocs-jupyter's include_source)
_MAIN_HTML = '''{% extends "base.html" %}
{% block content %}
{% if page.nb_url %}
<div class="md-content__button-row" style="display: flow-root; text-align: right">
  <a href="{{ page.nb_url }}" title="Download the notebook" class="md-content__button md-icon jp-DownloadNB" download>
    {% include ".icons/material/download.svg" %} Notebook</a>
</div>
{% endif %}
{{ super() }}
{% endblock content %}
'''

# a wider page than Material's default (61rem), for notebook code and the parameter tables
_EXTRA_CSS = '''.md-grid { max-width: 1600px; }
.jupyter-wrapper .jp-RenderedMarkdown table td:first-child code { white-space: nowrap; }
.jupyter-wrapper .jp-RenderedMarkdown h4 { font-family: var(--md-code-font-family, monospace); }
'''

# ---------------------------------------------------------------- site
def _blank_before_lists(md:str)->str:
    "A blank line before a list that follows a paragraph line: Python-Markdown needs one there, GitHub does not."
    out, fence, prev = [], False, ''
    for line in md.split('\n'):
        if line.lstrip().startswith(('```', '~~~')): fence = not fence
        item = re.match(r'(\s*)([-*+]|\d+[.)])\s', line)
        if not fence and item and not item.group(1) and prev.strip() and not re.match(r'\s*([-*+]|\d+[.)])\s', prev) \
           and not prev.startswith(('#', '|', '>')):
            out.append('')
        out.append(line); prev = line
    return '\n'.join(out)

def make_source(src:Path, root:Path=ROOT)->dict:
    "Write the docs source into `src/docs` and the mkdocs config `src/mkdocs.yml`; return the config."
    docs = src/'docs'
    if docs.exists(): shutil.rmtree(docs)
    (src/'overrides').mkdir(parents=True, exist_ok=True)
    (src/'overrides'/'main.html').write_text(_MAIN_HTML, encoding='utf-8')
    (docs/'stylesheets').mkdir(parents=True)
    (docs/'stylesheets'/'deepocc.css').write_text(_EXTRA_CSS, encoding='utf-8')
    (docs/'api').mkdir(); (docs/'paper').mkdir()
    # home page: README.md, and the images it references (figures/*.png relative to the repository root)
    readme = (root/'README.md').read_text(encoding='utf-8')
    readme = _blank_before_lists(re.sub(r'\A\s*<!--.*?-->\s*', '', readme, flags=re.S))
    (docs/'index.md').write_text(readme, encoding='utf-8')
    if (root/'figures').is_dir():
        (docs/'figures').mkdir()
        for f in sorted((root/'figures').iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES: shutil.copy2(f, docs/'figures'/f.name)
    library = []
    for p in sorted((root/'nbs').glob('[0-9][0-9]_*.ipynb')):
        if (nb := _read_nb(p)) is None: raise RuntimeError(f'cannot read {p}')
        nb = process_notebook(nb, api=True)
        (docs/'api'/p.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
        library.append({f'{p.stem[:2]} {_h1(nb) or p.stem[3:]}': f'api/{p.name}'})
    paper, tutorials = [], []
    (docs/'tutorials').mkdir()
    for folder, entries in (('paper', paper), ('tutorials', tutorials)):
        for p in sorted((root/'nbs'/folder).glob('*.ipynb')):
            if (nb := _read_nb(p)) is None: raise RuntimeError(f'cannot read {p}')
            nb = process_notebook(nb)
            (docs/folder/p.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
            entries.append({_h1(nb) or p.stem: f'{folder}/{p.name}'})
    s = get_config(path=root)
    config = {
        'site_name': s.get('title', 'deepocc'), 'site_description': s.get('description', ''),
        'docs_dir': 'docs', 'use_directory_urls': True,
        'hooks': [str(Path(__file__).resolve())],
        'theme': {'name': 'material', 'custom_dir': 'overrides', 'font': False, 'features': ['navigation.sections', 'navigation.top', 'toc.follow']},
        'plugins': ['search', {'mkdocs-jupyter': {'execute': False, 'include_source': True, 'ignore_h1_titles': True, 'no_prompt': True,
                                                  'cache': False, 'toc_depth': 4}}],
        'extra_css': ['stylesheets/deepocc.css'],
        'markdown_extensions': ['tables', 'admonition', {'toc': {'permalink': True}}],
        'nav': [{'Home': 'index.md'}, {'Tutorials': tutorials}, {'Paper tables and figures': paper}, {'Library': library}],
    }
    (src/'mkdocs.yml').write_text(json.dumps(config, indent=1, ensure_ascii=False), encoding='utf-8')  # JSON is YAML
    return config

def build(out:Path|str=ROOT/'_site', src:Path|str|None=None, root:Path=ROOT, strict:bool=True)->Path:
    "Build the site into `out` from a docs source generated in `src` (default: a temporary folder); return `out`."
    from mkdocs.config import load_config
    from mkdocs.commands.build import build as mkdocs_build
    out = Path(out).resolve()
    logging.getLogger('traitlets').setLevel(logging.ERROR)  # nbconvert's notes on output images without alt text
    with tempfile.TemporaryDirectory(prefix='deepocc-docs-') as tmp:
        src = Path(src).resolve() if src else Path(tmp)
        src.mkdir(parents=True, exist_ok=True)
        make_source(src, root)
        cfg = load_config(config_file=str(src/'mkdocs.yml'), site_dir=str(out), strict=strict)
        mkdocs_build(cfg)
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(ROOT/'_site'), help='site folder (default: _site/)')
    ap.add_argument('--src', default=None, help='keep the generated docs source and mkdocs.yml in this folder')
    ap.add_argument('--no-strict', action='store_true', help='do not fail on mkdocs warnings (e.g. broken links)')
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(name)s: %(levelname)s: %(message)s')
    t = time.time()
    out = build(a.out, a.src, strict=not a.no_strict)
    print(f'docs: built {out} in {time.time() - t:.1f} s')

if __name__ == '__main__': main()
