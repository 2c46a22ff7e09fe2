"""The book's local static assets: MathJax from the npm registry and the Vega bundle from
vl-convert, written once into ``_assets/``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from elens_utils.book.chapter_files import REPO
from elens_utils.core.errors import ElensError

__all__ = ["MATHJAX_FILE", "MATHJAX_VERSION", "make_assets"]

MATHJAX_VERSION = "3.2.2"
MATHJAX_FILE = "mathjax/tex-svg-full.js"  # in the assets dir = _static/ of the built book
_STAMP = ".elens-assets.json"


def make_assets(dest: str | os.PathLike[str] | None = None, *, npm: str | None = None, log=print) -> Path:
    """Write the book's local static assets into ``dest`` (``_assets/``), once.

    * ``mathjax/tex-svg-full.js`` from the npm package ``mathjax@MATHJAX_VERSION`` (``npm pack``).
    * ``elens/vega-bundle.js``: Vega, Vega-Lite and vega-embed from vl-convert-python, for the
      Vega-Lite version altair writes (:func:`elens_utils.viz.charts.write_vega_bundle`).

    A stamp file records the versions; up-to-date files are not fetched again.

    Raises:
        ElensError: when npm is missing or ``npm pack`` fails.
    """
    from elens_utils.viz import charts

    dest = Path(dest) if dest is not None else REPO / "_assets"
    dest.mkdir(parents=True, exist_ok=True)
    stamp_path = dest / _STAMP
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        stamp = {}
    mj = dest / MATHJAX_FILE
    if stamp.get("mathjax") != MATHJAX_VERSION or not mj.is_file():
        npm = npm or shutil.which("npm")
        if not npm:
            raise ElensError(
                "npm is not installed, and the book serves MathJax from a local copy fetched from "
                "the npm registry. Install Node.js and npm (Debian: apt-get install npm), then "
                "run `make assets` again."
            )
        with tempfile.TemporaryDirectory(prefix="elens-npm-") as tmp:
            log(f"assets: npm pack mathjax@{MATHJAX_VERSION}")
            proc = subprocess.run(
                [npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--silent", "--pack-destination", tmp],
                capture_output=True, text=True, check=False,
            )
            tarballs = list(Path(tmp).glob("mathjax-*.tgz"))
            if proc.returncode or not tarballs:
                raise ElensError(
                    f"`npm pack mathjax@{MATHJAX_VERSION}` failed (exit {proc.returncode}): "
                    f"{(proc.stderr or proc.stdout).strip()[-500:]}. Check access to the npm registry."
                )
            with tarfile.open(tarballs[0]) as tar:
                member = tar.getmember("package/es5/tex-svg-full.js")
                data = tar.extractfile(member).read()
                license_text = tar.extractfile(tar.getmember("package/LICENSE")).read()
        mj.parent.mkdir(parents=True, exist_ok=True)
        tmp_file = mj.with_name(f".{mj.name}.tmp")
        tmp_file.write_bytes(data)
        os.replace(tmp_file, mj)
        (mj.parent / "LICENSE").write_bytes(license_text)
        stamp["mathjax"] = MATHJAX_VERSION
    vega = dest / charts.VEGA_BUNDLE
    vega_id = f"vega-lite {charts.VEGALITE_VERSION}, vl-convert {_dist_version('vl-convert-python')}"
    if stamp.get("vega") != vega_id or not vega.is_file():
        log(f"assets: Vega bundle ({vega_id})")
        charts.write_vega_bundle(vega)
        stamp["vega"] = vega_id
    stamp_path.write_text(json.dumps(stamp, indent=1) + "\n")
    log(f"assets: {dest} ready (MathJax {stamp['mathjax']}; {stamp['vega']})")
    return dest


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"
