"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which cannot be installed here).

nbconvert's Markdown exporter renders the notebook; cells marked `#| hide` are dropped, and a line
`<!-- include: PATH -->` in a markdown cell is replaced by that file's text (the regenerated tables).
"""
import re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def render_readme(root:Path=ROOT)->str:
    "The README text generated from nbs/index.ipynb."
    import nbformat
    from nbconvert import MarkdownExporter
    nb = nbformat.read(root/'nbs'/'index.ipynb', as_version=4)
    nb.cells = [c for c in nb.cells if not re.match(r'\s*#\|\s*hide', c.source)]
    for c in nb.cells:
        if c.cell_type == 'code': c.source = '\n'.join(l for l in c.source.splitlines() if not l.startswith('#|'))
    body, _ = MarkdownExporter().from_notebook_node(nb)
    def include(m):
        p = root/m.group(1).strip()
        return p.read_text().strip() if p.is_file() else f'*{m.group(1).strip()} has not been generated yet.*'
    body = re.sub(r'<!-- include: (.+?) -->', include, body)
    body = re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'
    return '<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n' + body

if __name__ == '__main__':
    out = ROOT/'README.md'
    out.write_text(render_readme())
    print(f'wrote {out}')
