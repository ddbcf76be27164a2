"""The documentation site (tools/build_docs.py, `make docs`), checked in a real headless Chromium.

The site is built into a temporary folder, served by `http.server` on 127.0.0.1, and every page is loaded through
Selenium: no broken image, every same-host link answers 200 (and its #fragment exists), the home page shows Table 1
and the figures, library pages have their docments tables and no nbdev directives, the Table 1 page shows the executed
table (first row the raw-pixel baseline, with a number for Fashion-MNIST), every figure page an image that loaded, and
the tutorial is in the navigation. Screenshots (home page, a library page, the Table 1 page, the heatmap figure page)
are saved to the test's tmp folder and to `_site_screenshots/` (not committed) for a person to look at.
Needs Debian's chromium and chromium-driver (tools/setup_env.sh installs them): without them the test fails under CI
(CI=true) and is skipped elsewhere.
"""
import base64, functools, html, importlib.util, os, re, shutil, threading, time, urllib.error, urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = Path('/usr/bin/chromium'), Path('/usr/bin/chromedriver')
SHOTS = ROOT/'_site_screenshots'
LIBRARY_SHOT = 'api/06_detector/'  # the library page whose screenshot is saved

def _missing():
    "Why the browser test cannot run here, or None."
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing: return f"{' and '.join(missing)} not installed (Debian packages chromium and chromium-driver; tools/setup_env.sh installs them)"
    try: import selenium  # noqa: F401
    except ImportError: return "selenium is not installed (a dev requirement in settings.ini: pip install -e '.[dev]')"
    return None

def _need_browser():
    why = _missing()
    if why is None: return
    if os.environ.get('CI', '').lower() == 'true': pytest.fail(f'the docs browser test cannot run: {why}', pytrace=False)
    pytest.skip(why)

def _load_build_docs():
    spec = importlib.util.spec_from_file_location('build_docs', ROOT/'tools'/'build_docs.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The site built into a temporary folder and served on a free local port: (folder, base URL, build seconds)."
    _need_browser()
    tmp = tmp_path_factory.mktemp('docs')
    t = time.time()
    out = _load_build_docs().build(out=tmp/'site', src=tmp/'src')
    build_s = time.time() - t
    server = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try: yield out, f'http://127.0.0.1:{server.server_address[1]}/', build_s
    finally:
        server.shutdown(); server.server_close(); thread.join(10)

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    os.environ['SE_OFFLINE'] = 'true'  # never let Selenium Manager download a browser or a driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync',
              '--disable-default-apps', '--disable-extensions', '--window-size=1400,1000',
              # nothing but the local server: a page that needs a CDN would otherwise hang until a DNS timeout
              '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
              f'--user-data-dir={tmp_path_factory.mktemp("chromium-profile")}'):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    try: yield driver
    finally: driver.quit()

def _pages(out:Path)->list[str]:
    "Every HTML page of the site, as paths relative to its root ('' for the home page)."
    pages = []
    for p in sorted(out.rglob('*.html')):
        rel = p.relative_to(out).as_posix()
        pages.append(rel[:-len('index.html')] if rel.endswith('index.html') else rel)
    return pages

_WAIT_IMAGES = """
const done = arguments[arguments.length - 1];
const imgs = Array.from(document.images);
imgs.forEach(i => { i.loading = 'eager'; });
Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })))
  .then(() => done(imgs.map(i => [i.currentSrc || i.src, i.naturalWidth])));
"""

_TABLE1_FIRST_ROW = """
for (const t of document.querySelectorAll('table')) {
  const heads = Array.from(t.querySelectorAll('thead th')).map(th => th.textContent.trim());
  const col = heads.indexOf('fmnist');
  const row = t.querySelector('tbody tr');
  if (col > 0 && row) return [row.cells[0].textContent.trim(), row.cells[col].textContent.trim()];
}
return null;
"""

def _fetch(url:str)->tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r: return r.status, r.read()
    except urllib.error.HTTPError as e: return e.code, b''

def _screenshot(driver, name:str, dirs:list[Path], max_height:int=7000)->list[Path]:
    "A full-page screenshot (up to max_height px) saved as `name` in each folder."
    h = min(max_height, int(driver.execute_script('return document.documentElement.scrollHeight')))
    w = int(driver.execute_script('return document.documentElement.clientWidth'))
    shot = driver.execute_cdp_cmd('Page.captureScreenshot', {'format': 'png', 'captureBeyondViewport': True,
                                                             'clip': {'x': 0, 'y': 0, 'width': w, 'height': h, 'scale': 1}})
    data = base64.b64decode(shot['data'])
    paths = []
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        (d/name).write_bytes(data); paths.append(d/name)
    return paths

def test_docs_site_in_browser(site, browser, tmp_path):
    out, base, build_s = site
    t0 = time.time()
    pages = _pages(out)
    # the site has the home page, every library notebook and every paper notebook
    want = [''] + [f'api/{p.stem}/' for p in sorted((ROOT/'nbs').glob('[0-9][0-9]_*.ipynb'))] \
                 + [f'paper/{p.stem}/' for p in sorted((ROOT/'nbs'/'paper').glob('*.ipynb'))] \
                 + [f'tutorials/{p.stem}/' for p in sorted((ROOT/'nbs'/'tutorials').glob('*.ipynb'))]
    assert not set(want) - set(pages), f'pages missing from the site: {sorted(set(want) - set(pages))}'
    host = urlsplit(base).netloc
    links, problems, cache = {}, [], {}
    for page in pages:
        url = urljoin(base, page)
        browser.get(url)
        images = browser.execute_async_script(_WAIT_IMAGES)
        problems += [f'{page or "home"}: broken image {src[:120]}' for src, w in images if not w]
        for href in browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"):
            if urlsplit(href).scheme in ('http', 'https') and urlsplit(href).netloc == host: links.setdefault(href, page)
        text = browser.execute_script('return document.body.innerText')  # (WebElement.text takes seconds on big pages)
        if page.startswith('api/'):
            tables = browser.execute_script(
                "return Array.from(document.querySelectorAll('table th')).filter(th => th.textContent.trim() == 'parameter').length")
            if not tables: problems.append(f'{page}: no docments parameter table')
            if re.search(r'^\s*#\|', text, re.M): problems.append(f'{page}: an nbdev directive (#| ...) is shown')
        if page == '':
            headings = [h.text for h in browser.find_elements('css selector', 'h1, h2, h3, h4')]
            if not any('Table 1' in h for h in headings): problems.append(f'home: no "Table 1" heading in {headings}')
            figs = [src for src, w in images if '/figures/' in src and w > 0]
            if not figs: problems.append('home: no figure image shown')
            _screenshot(browser, 'home.png', [tmp_path, SHOTS])
        if page == LIBRARY_SHOT: _screenshot(browser, 'library_06_detector.png', [tmp_path, SHOTS])
        if page == '':  # the tutorial is in the site's navigation
            nav = browser.execute_script("return Array.from(document.querySelectorAll('nav a[href]')).map(a => a.href)")
            if not any('/tutorials/folder_to_heatmaps/' in h for h in nav): problems.append('home: the tutorial is not in the navigation')
        if page == 'paper/table1_semantic/':  # the executed table: first row the raw-pixel baseline, with a number for Fashion-MNIST
            first = browser.execute_script(_TABLE1_FIRST_ROW)
            if not first: problems.append(f'{page}: no table with an fmnist column')
            elif not (first[0].startswith('raw pixels') and re.match(r'^\d+\.\d', first[1])):
                problems.append(f'{page}: the first row is {first}, not the raw-pixel baseline with a number in the fmnist column')
            _screenshot(browser, 'paper_table1.png', [tmp_path, SHOTS])
        if page.startswith('paper/fig_'):
            if not [src for src, w in images if w > 0]: problems.append(f'{page}: no image loaded')
            if page == 'paper/fig_heatmaps/': _screenshot(browser, 'paper_fig_heatmaps.png', [tmp_path, SHOTS])
    # every same-host link answers 200, and the #fragment it points at exists on the target page
    for href, page in sorted(links.items()):
        target, frag = urldefrag(href)
        if target not in cache: cache[target] = _fetch(target)
        status, body = cache[target]
        if status != 200: problems.append(f'{page or "home"}: link {href} answers {status}'); continue
        if frag and (urlsplit(target).path.endswith('/') or target.endswith('.html')):
            ids = set(re.findall(r'\bid="([^"]+)"', body.decode('utf-8', 'replace')))
            if html.unescape(urllib.request.unquote(frag)) not in {html.unescape(i) for i in ids}:
                problems.append(f'{page or "home"}: link {href}: no element with id {frag!r}')
    assert not problems, '\n'.join(problems)
    for shot in ('home.png', 'library_06_detector.png', 'paper_table1.png', 'paper_fig_heatmaps.png'):
        assert (SHOTS/shot).stat().st_size > 10_000, shot
    print(f'\ndocs: built in {build_s:.1f} s; {len(pages)} pages and {len(links)} internal links checked in '
          f'{time.time() - t0:.1f} s; screenshots in {SHOTS}')
