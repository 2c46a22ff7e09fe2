"""The book: chapter runner (parameter sets, overrides, cache), and the smoke book built end to end.

The end-to-end test runs every chapter with the ``smoke`` parameter set into a temporary
directory, builds it with ``jupyter-book build -W``, and checks that every page of the table of
contents exists, that no page holds an error output, that nothing in a page points at the network,
and, in headless Chromium (Debian's ``chromium``), that every chart has drawn and the math is
typeset. Chromium and npm (for the local MathJax) are optional here: their parts are skipped
when they are missing, unless ``ELENS_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which makes
their absence a failure.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import nbformat
import pytest
import yaml
from helpers import write_mini_book

from elens_utils import ElensError
from elens_utils.book import chapters
from elens_utils.viz import chart_reflow, charts

REPO = chapters.REPO
REQUIRE = os.environ.get("ELENS_REQUIRE_BROWSER", "0") not in ("0", "", "false")
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)


def _need(tool: str | None, what: str) -> None:
    if tool:
        return
    if REQUIRE:
        pytest.fail(f"{what} is required (ELENS_REQUIRE_BROWSER=1) but not installed")
    pytest.skip(f"{what} not installed (apt-get install {'chromium' if 'hromium' in what else 'npm'})")


# ---- chapters and parameter sets ------------------------------------------------------------


def _toc_files() -> list[str]:
    """The pages of _toc.yml after its root, in order (chapters, in parts or not)."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    groups = toc["parts"] if "parts" in toc else [toc]
    return [c["file"] for g in groups for c in g["chapters"]]


def test_every_chapter_is_in_the_toc_and_well_formed():
    files = _toc_files()
    found = chapters.chapters()
    assert found, "no chapters in notebooks/"
    pages = [f for f in files if (REPO / f"{f}.md").is_file()]  # pages written by hand (the API)
    assert [f for f in files if f not in pages] == [f"book/{c.stem}" for c in found]  # every chapter, in order
    for ch in found:
        nb = nbformat.read(ch.path, as_version=4)
        assert nb.metadata["elens"]["chapter"] == ch.name
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{ch.path} has outputs: clear them"
        if not nb.metadata["elens"].get("appendix"):  # appendices need no models
            # (a seed only where something is drawn at random: greedy chapters have none)
            assert {"models", "device", "dtype"} <= set(ch.parameters), ch.name


def test_find_chapter_by_name_number_and_stem():
    ch = chapters.find_chapter("profile")
    assert ch.path == REPO / "notebooks" / "01_entropy_profile.ipynb"
    for alias in ("01", "1", "01_entropy_profile", "entropy_profile"):
        assert chapters.find_chapter(alias) == ch
    with pytest.raises(ElensError, match=r"Unknown chapter 'nope'.*profile \(01_entropy_profile.ipynb\)"):
        chapters.find_chapter("nope")


@pytest.mark.parametrize("name", ["smoke", "default", "paper"])
def test_parameter_sets_fit_the_chapters(name):
    pset = chapters.load_param_set(name)
    assert pset["description"]
    for ch in chapters.chapters():
        params = chapters.merge_parameters(ch, pset)  # raises on an undeclared key
        if "models" not in ch.parameters:
            continue  # an appendix that runs no model
        models = params.get("models", ch.parameters["models"])
        assert isinstance(models, list) and models
        if name == "paper":
            assert params["device"] == "cuda" and params["dtype"] == "bfloat16"
            assert not any(m.startswith("tiny/") for m in models)
        elif name == "default":  # the embedded zoo, every model of which is shipped
            assert all(m.startswith("zoo/") for m in models)
            assert all((REPO / "zoo" / m.removeprefix("zoo/") / "model.safetensors").is_file() for m in models)
        else:
            # random-weight models: tiny/ (word-list vocabularies), untrained/ (the story world's)
            assert all(m.startswith(("tiny/", "untrained/")) for m in models)


def test_paper_set_lists_the_papers_models():
    models = chapters.load_param_set("paper")["defaults"]["models"]
    assert models == [
        "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl",
        "meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct",
        "meta-llama/Meta-Llama-3-8B-Instruct", "google/gemma-2-2b-it", "google/gemma-2-9b-it",
        "Qwen/Qwen3-1.7B", "Qwen/Qwen3-4B", "Qwen/Qwen3-8B",
    ]  # fmt: skip


def test_overrides_are_typed():
    ch = chapters.find_chapter("profile")
    pset = chapters.load_param_set("smoke")
    over = chapters.parse_overrides(
        ["models=Qwen/Qwen3-0.6B,gpt2", "seed=3", "alphas=1,0.5,.inf", "prompt=a, b", "temperature=1.5", "example_model=null"]
    )
    p = chapters.merge_parameters(ch, pset, over)
    assert p["models"] == ["Qwen/Qwen3-0.6B", "gpt2"]  # a list, not a string
    assert p["seed"] == 3 and p["temperature"] == 1.5 and p["example_model"] is None
    assert p["alphas"][:2] == [1, 0.5] and math.isinf(p["alphas"][2])
    assert p["prompt"] == "a, b"  # not a list parameter: commas stay
    assert chapters.merge_parameters(ch, pset, {"models": "gpt2"})["models"] == ["gpt2"]
    assert chapters.merge_parameters(ch, pset, {"models": "[a, b]"})["models"] == ["a", "b"]
    assert p["device"] == "cpu"  # from the set's shared defaults


def test_bad_parameters_are_clear():
    ch = chapters.find_chapter("profile")
    with pytest.raises(ElensError, match=r"no parameter 'modles'. Valid: models, example_model"):
        chapters.merge_parameters(ch, chapters.load_param_set("smoke"), {"modles": "gpt2"})
    with pytest.raises(ElensError, match=r"Unknown parameter set 'nope': use one of default, paper, smoke"):
        chapters.load_param_set("nope")
    with pytest.raises(ElensError, match="KEY=VALUE"):
        chapters.parse_overrides(["models"])
    bad = {"name": "x", "defaults": {}, "chapters": {"profile": {"colour": 1}}}
    with pytest.raises(ElensError, match=r"gives chapter 'profile' the parameter\(s\) \['colour'\]"):
        chapters.merge_parameters(ch, bad)
    with pytest.raises(ElensError, match=r"No chapter has the parameter\(s\) \['colour'\]"):
        chapters.run_chapters("all", "smoke", {"colour": "1"})


def test_cli_errors_exit_2(capsys):
    assert chapters.main(["run", "nope", "--params", "smoke"]) == 2
    assert "error: Unknown chapter 'nope'" in capsys.readouterr().err
    assert chapters.main(["params", "profile", "--params", "smoke", "--set", "models=a,b"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["models"] == ["a", "b"]


def test_cache_key_depends_on_source_parameters_and_library():
    nb = nbformat.read(chapters.find_chapter("profile").path, as_version=4)
    key = chapters.cache_key(nb, {"seed": 0}, library="L1")
    assert key == chapters.cache_key(nb, {"seed": 0}, library="L1")
    assert key != chapters.cache_key(nb, {"seed": 1}, library="L1")
    assert key != chapters.cache_key(nb, {"seed": 0}, library="L2")
    nb.cells[-1].source += "\n"
    assert key != chapters.cache_key(nb, {"seed": 0}, library="L1")
    nb.metadata["anything"] = 1  # metadata and outputs do not count
    assert len(chapters.library_digest()) == 64


# ---- running a chapter: cache, hidden parameters, failures (a tiny chapter) -----------------


def _mini_book(root: Path, body: str) -> None:
    cells = [
        nbformat.v4.new_markdown_cell("# Mini"),
        nbformat.v4.new_code_cell("values = [1, 2]\nlabel = 'x'"),
        nbformat.v4.new_code_cell(body),
    ]
    write_mini_book(root, cells, "description: test\ndefaults: {label: y}\nchapters: {mini: {values: [3]}}\n")


def test_local_inputs_enter_the_cache_key(tmp_path, monkeypatch, tiny_model_dirs):
    """A results file or a zoo model named by a parameter: changing its content re-runs."""
    import shutil

    (tmp_path / "r.json").write_text("{}")
    monkeypatch.setenv("ELENS_ZOO", str(tmp_path / "zoo"))
    shutil.copytree(tiny_model_dirs["llama"], tmp_path / "zoo" / "llama-2L")
    params = {"result": "r.json", "models": ["zoo/llama-2L", "gpt2", "tiny/llama-2L"], "seed": 0}
    first = chapters.inputs_digest(params, tmp_path)
    assert set(first) == {"result:r.json", "models:zoo/llama-2L"}  # Hub ids and tiny/ add nothing
    (tmp_path / "r.json").write_text('{"a": 1}')
    second = chapters.inputs_digest(params, tmp_path)
    assert second["result:r.json"] != first["result:r.json"]
    assert second["models:zoo/llama-2L"] == first["models:zoo/llama-2L"]
    (tmp_path / "zoo" / "llama-2L" / "model.safetensors").write_bytes(b"retrained")
    assert chapters.inputs_digest(params, tmp_path)["models:zoo/llama-2L"] != first["models:zoo/llama-2L"]
    nb = nbformat.v4.new_notebook()
    assert chapters.cache_key(nb, params, library="L", inputs=first) != chapters.cache_key(nb, params, library="L", inputs=second)


@pytest.mark.slow
def test_run_chapter_caches_and_hides_the_parameter_cells(tmp_path):
    _mini_book(tmp_path, "print(sum(values), label, type(values).__name__)")
    logs = []
    out = tmp_path / "book"
    path = chapters.run_chapter("mini", "t", root=tmp_path, out_dir=out, progress=False, log=logs.append)
    nb = nbformat.read(path, as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "3 y list" in printed  # the set's section and shared defaults reached the kernel, typed
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["parameters", "remove-cell"] in tags and ["injected-parameters", "remove-cell"] in tags
    table = next(c for c in nb.cells if "elens-parameters-table" in c.metadata.get("tags", []))
    assert "remove-input" in table.metadata["tags"]
    html = next(o for o in table.outputs if "data" in o)["data"]["text/html"]
    assert "<code>values</code>" in html and "parameter set: t" in html
    meta = nb.metadata["elens"]
    assert meta["parameters"] == {"values": [3], "label": "y"} and meta["params_set"] == "t"
    mtime = path.stat().st_mtime_ns
    chapters.run_chapter("mini", "t", root=tmp_path, out_dir=out, progress=False, log=logs.append)
    assert "up to date" in logs[-1] and path.stat().st_mtime_ns == mtime  # cached: not re-run
    chapters.run_chapter("mini", "t", {"values": "4,5"}, root=tmp_path, out_dir=out, progress=False, log=logs.append)
    assert "executed" in logs[-1]
    assert nbformat.read(path, as_version=4).metadata["elens"]["parameters"]["values"] == [4, 5]
    assert sorted(p.name for p in out.iterdir()) == ["01_mini.ipynb"]  # no temporary files left


@pytest.mark.slow
def test_failing_cell_is_a_clear_error(tmp_path):
    _mini_book(tmp_path, "raise RuntimeError('boom in the chapter')")
    out = tmp_path / "book"
    with pytest.raises(ElensError, match=r"Chapter 'mini' failed in cell \d+: RuntimeError: boom in the chapter"):
        chapters.run_chapter("mini", "t", root=tmp_path, out_dir=out, progress=False, log=lambda *_: None)
    assert not (out / "01_mini.ipynb").exists()  # nothing half-done where the book reads
    assert (out / "01_mini.failed.ipynb").exists()  # the traceback, for the reader


# ---- the smoke book, end to end ------------------------------------------------------------


class _Page(HTMLParser):
    """Collects the URLs a page loads (scripts, stylesheets, images, frames...)."""

    LOADS: ClassVar[dict[str, str]] = {"script": "src", "img": "src", "iframe": "src", "source": "src", "embed": "src", "audio": "src", "video": "src"}

    def __init__(self):
        super().__init__()
        self.loads: list[tuple[str, str]] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in self.LOADS and a.get(self.LOADS[tag]):
            self.loads.append((tag, a[self.LOADS[tag]]))
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        if tag == "link" and a.get("href"):
            self.loads.append((f"link rel={a.get('rel')}", a["href"]))
        if tag == "img" and a.get("srcset"):
            self.loads.append(("img srcset", a["srcset"]))


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory):
    """The smoke book built into a temporary directory: ``(html_dir, toc pages, seconds)``."""
    try:
        chapters.make_assets(REPO / "_assets", log=lambda *_: None)
    except ElensError as err:
        if shutil.which("npm") is None:
            _need(None, "npm (for the local MathJax)")
        raise AssertionError(str(err)) from err
    root = tmp_path_factory.mktemp("smoke-book")
    start = time.perf_counter()
    html = chapters.build_book("smoke", root=root, progress=False, log=lambda *_: None)
    seconds = time.perf_counter() - start
    pages = [yaml.safe_load((REPO / "_toc.yml").read_text())["root"]] + _toc_files()
    return html, pages, seconds


@pytest.mark.slow
def test_smoke_book_pages_exist_without_errors_or_network(smoke_book):
    html_dir, pages, seconds = smoke_book
    assert seconds < 600
    pages_with_math = 0
    for page in pages:
        path = html_dir / f"{page}.html"
        assert path.is_file(), f"{page} was not built"
        text = path.read_text()
        for marker in ("Traceback (most recent call last)", "output error", "output traceback", "output stderr"):
            assert marker not in text, f"{page}: error output ({marker})"
        parser = _Page()
        parser.feed(text)
        remote = [(t, u) for t, u in parser.loads if re.match(r"^(https?:)?//", u.strip(), re.IGNORECASE)]
        assert not remote, f"{page} loads from the network: {remote}"
        bundles = [s for s in parser.scripts if charts.VEGA_BUNDLE in s]
        n_charts = text.count(f'class="{charts.CHART_CLASS}"')
        assert len(bundles) == (1 if n_charts else 0), f"{page}: {n_charts} charts, bundle loaded {len(bundles)} times"
        mathjax = [s for s in parser.scripts if "mathjax" in s.lower() or "tex-" in s.lower()]
        assert all(chapters.MATHJAX_FILE in s for s in mathjax), f"{page}: MathJax not from the local copy: {mathjax}"
        pages_with_math += bool(mathjax)
        assert "THEBE_JS_URL" not in text
    assert pages_with_math, "no page loads the local MathJax (chapter 1 has formulas)"
    chapter_pages = [p for p in pages if p.startswith("book/0")]
    for page in chapter_pages:
        text = (html_dir / f"{page}.html").read_text()
        assert text.count(f'class="{charts.CHART_CLASS}"') >= 1, f"{page} has no chart"
        assert "elens-params" in text, f"{page} does not show its parameters"
        assert "injected-parameters" not in text and "# Parameters" not in text


def _dump_dom(url: str, profile: Path) -> str:
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
        f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom", url,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class _Charts(HTMLParser):
    """Chart containers of a rendered page and whether each holds an svg or canvas."""

    def __init__(self):
        super().__init__()
        self.charts: list[dict] = []
        self._stack: list[int | None] = []  # index of the chart each open element belongs to
        self.math = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        owner = self._stack[-1] if self._stack else None
        if tag == "div" and charts.CHART_CLASS in (a.get("class") or "").split():
            self.charts.append({"id": a.get("id"), "state": a.get("data-state"), "drawn": False})
            owner = len(self.charts) - 1
        if owner is not None and tag in ("svg", "canvas"):
            self.charts[owner]["drawn"] = True
        if tag == "mjx-container":
            self.math += 1
        if tag not in ("br", "img", "input", "meta", "link", "hr", "path", "rect", "circle", "line", "use"):
            self._stack.append(owner)

    def handle_endtag(self, tag):
        if tag not in ("br", "img", "input", "meta", "link", "hr", "path", "rect", "circle", "line", "use") and self._stack:
            self._stack.pop()


@pytest.mark.slow
def test_smoke_book_charts_draw_in_chromium(smoke_book, tmp_path):
    _need(CHROMIUM, "chromium")
    html_dir, pages, _ = smoke_book
    for page in pages:
        path = html_dir / f"{page}.html"
        expected = path.read_text().count(f'class="{charts.CHART_CLASS}"')
        dom = _dump_dom(path.as_uri(), tmp_path / "profile")
        found = _Charts()
        found.feed(dom)
        assert len(found.charts) == expected, f"{page}: {len(found.charts)} of {expected} chart containers in the DOM"
        for chart in found.charts:
            assert chart["state"] == "drawn" and chart["drawn"], f"{page}: chart {chart['id']} did not draw ({chart['state']})"
        if page.startswith("book/0"):
            assert found.math > 0, f"{page}: MathJax typeset nothing"


# Written into a copy of a page: once the charts have drawn, it records on <body> each chart's
# drawn width against its column's, its natural width and layout, and whether the page is wider
# than the window.
_FIT_PROBE = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  var out = [];
  document.querySelectorAll("div.elens-chart").forEach(function (el) {
    var svg = el.querySelector("svg"), col = el.parentElement.getBoundingClientRect().width;
    out.push([el.id, svg ? Math.round(svg.getBoundingClientRect().width) : -1, Math.round(col),
              svg ? Math.round(parseFloat(svg.getAttribute("width"))) : -1, el.getAttribute("data-layout")]);
  });
  document.body.setAttribute("data-fit", JSON.stringify({charts: out,
    page: [document.documentElement.scrollWidth, window.innerWidth]}));
}, 3000); });
</script>"""


@pytest.mark.slow
@pytest.mark.parametrize("width", [1200, 500])  # desktop; Chromium's narrowest window (a phone's is ~400)
def test_smoke_book_charts_fit_the_column(smoke_book, tmp_path, width):
    import html as html_lib
    import json
    import re

    _need(CHROMIUM, "chromium")
    html_dir, pages, _ = smoke_book
    checked = 0
    for page in pages:
        path = html_dir / f"{page}.html"
        text = path.read_text()
        probe = path.with_name(f"_fit_{path.name}")  # beside the page, so its relative assets load
        probe.write_text(text.replace("</body>", _FIT_PROBE + "</body>"))
        try:
            cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},900",
                   f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000", "--dump-dom", probe.as_uri()]  # fmt: skip
            dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False).stdout
        finally:
            probe.unlink()
        found = re.search(r'data-fit="([^"]*)"', dom)
        assert found, f"{page}: the probe did not run"
        fit = json.loads(html_lib.unescape(found.group(1)))
        wide = [c for c in fit["charts"] if c[1] > c[2] + 1 or c[1] < 0]
        assert not wide, f"{page} at {width} px: charts wider than their column or not drawn: {wide}"
        # a phone's column gets the phone layout, which is drawn at (nearly) its natural size
        layout = "narrow" if width < chart_reflow.NARROW_BREAK else "wide"
        assert all(c[4] == layout for c in fit["charts"]), f"{page} at {width} px: not all charts are {layout}: {fit['charts']}"
        if layout == "narrow":
            small = [c for c in fit["charts"] if c[3] > chart_reflow.NARROW_WIDTH + 100]
            assert not small, f"{page} at {width} px: phone layouts wider than {chart_reflow.NARROW_WIDTH + 100} px: {small}"
        assert fit["page"][0] <= fit["page"][1], f"{page} at {width} px scrolls sideways: {fit['page']}"
        checked += 1
    assert checked == len(pages)


def test_a_sets_thread_count_reaches_the_kernel_unless_the_user_set_one(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("ELENS_SMALL_MODEL_THREADS", raising=False)
    _mini_book(tmp_path, "import os\nprint('threads', os.environ.get('ELENS_SMALL_MODEL_THREADS'))")
    pset = tmp_path / "params" / "t.yml"
    pset.write_text("threads: 1\n" + pset.read_text())
    path = chapters.run_chapter("mini", "t", root=tmp_path, out_dir=tmp_path / "book", progress=False, log=lambda *_: None)
    printed = "".join(o.get("text", "") for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" for o in c.outputs)
    assert "threads 1" in printed
    assert "ELENS_SMALL_MODEL_THREADS" not in os.environ  # restored after the run
    assert chapters._thread_env(2) == {"ELENS_SMALL_MODEL_THREADS": "2"}
    assert chapters._thread_env(None) == {}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert chapters._thread_env(1) == {}  # the user's setting wins
    for bad in ("0", "two", "true"):
        pset.write_text(f"threads: {bad}\ndescription: x\n")
        with pytest.raises(ElensError, match="'threads' must be an integer >= 1"):
            chapters.load_param_set("t", tmp_path)


# ---- the reader's book: front matter, exercises, the claims table ------------------------------


def _chapter_number(ch) -> str:
    """The number a chapter's exercises carry: its number for the paper's results (01_... -> 1),
    the letter of its title for an appendix ("# Appendix A: ..." -> A)."""
    import re

    nb = nbformat.read(ch.path, as_version=4)
    if nb.metadata["elens"].get("appendix"):
        found = re.match(r"# Appendix ([A-Z]): ", nb.cells[0].source)
        assert found, f"{ch.stem}: an appendix's title names its letter ('# Appendix A: ...')"
        return found.group(1)
    return str(int(ch.stem.split("_")[0]))


def test_every_chapter_opens_with_front_matter_and_numbers_its_exercises():
    import re

    letters = [_chapter_number(c) for c in chapters.chapters() if not _chapter_number(c).isdigit()]
    assert letters == sorted(letters) == list("ABCDEFGH"[: len(letters)])  # in the book's order
    for ch in chapters.chapters():
        nb = nbformat.read(ch.path, as_version=4)
        front = nb.cells[1]
        assert front.cell_type == "markdown" and ":class: elens-front-matter" in front.source, ch.stem
        for part in ("**You will**", "**Prerequisites**", "**In the paper**", "**Run time**: {{ run_time }}"):
            assert part in front.source, (ch.stem, part)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        numbers = re.findall(r"^::::\{admonition\} Exercise (\w+)\.(\d+)$", text, re.M)
        assert numbers, f"{ch.stem} has no labelled exercises"
        assert {n for n, _ in numbers} == {_chapter_number(ch)}, ch.stem
        assert [int(i) for _, i in numbers] == list(range(1, len(numbers) + 1)), ch.stem
        names = re.findall(r"^:name: (ex-[\w-]+)$", text, re.M)
        assert names == [f"ex-{ch.name.replace('_', '-')}-{i}" for _, i in numbers], ch.stem
        assert "**Exercise" not in text, f"{ch.stem}: an exercise outside an admonition"
        # prose names a value through a substitution, never a parameter's variable name as a number
        params = set(ch.parameters) | {"run_time"}
        for name in re.findall(r"\{\{ *(\w+) *\}\}", text):
            assert name in params, (ch.stem, name)


def test_the_api_appendix_opens_with_front_matter_and_lists_every_module_by_layer():
    import importlib
    import re

    api = (REPO / "book" / "api.md").read_text()
    head = api.split("```{eval-rst}")[0]
    assert api.startswith("# Appendix E: ") and ":class: elens-front-matter" in head
    for part in ("**You will**", "**Prerequisites**", "**In the paper**", "**Run time**"):
        assert part in head, part
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| .*? \| (.*) \|$", head, re.M)
    package = REPO / "elens_utils"
    assert {pkg for _, pkg, _ in rows} == {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    for _, pkg, modules in rows:
        listed = re.findall(r"`(\w+)`", modules)
        on_disk = sorted(f.stem for f in (package / pkg).glob("*.py") if not f.stem.startswith("__"))
        assert listed == on_disk, f"the table's modules of {pkg} are not the package's: {listed} != {on_disk}"
    for target in re.findall(r"^\.\. automodule:: ([\w.]+)$", api, re.M):
        importlib.import_module(target)


def test_the_intro_table_pastes_every_result_chapter_headline():
    import re

    intro = (REPO / "book" / "intro.md").read_text()
    pasted = re.findall(r"\{glue\}`(\d\d_\w+)\.ipynb::headline`", intro)
    results = [c.stem for c in chapters.chapters() if not nbformat.read(c.path, as_version=4).metadata["elens"].get("appendix")]
    assert pasted == results
    for stem in results:
        source = (REPO / "notebooks" / f"{stem}.ipynb").read_text()
        assert "publish(" in source, f"{stem} glues no headline"
