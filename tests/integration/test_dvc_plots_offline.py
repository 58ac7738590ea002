"""`dvc plots show` renders offline: Vega, Vega-Lite and Vega-Embed are inlined (issue 14, 6).

DVC's own page loads them from a CDN and is blank without a network. ``.dvc/config`` points
``plots.html_template`` at configs/plots/offline.html (built by configs/plots/build.sh), which
holds the same versions DVC's page asks for.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "configs" / "plots" / "offline.html"
REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc\s*=", re.IGNORECASE)


def test_the_dvc_config_points_at_the_offline_template() -> None:
    config = (REPO / ".dvc" / "config").read_text(encoding="utf-8")
    (path,) = re.findall(r"^\s*html_template\s*=\s*(\S+)\s*$", config, re.MULTILINE)
    assert (REPO / ".dvc" / path).resolve() == TEMPLATE  # DVC resolves it from .dvc/


def test_the_template_inlines_the_versions_dvc_asks_for() -> None:
    from dvc_render.vega import VegaRenderer

    page = TEMPLATE.read_text(encoding="utf-8")
    assert "{plot_divs}" in page and "{scripts}" not in page  # DVC's CDN tags never added
    assert not REMOTE_SCRIPT.search(page)
    wanted = re.findall(r"npm/(vega[a-z-]*@[\d.]+)", VegaRenderer.SCRIPTS)
    assert len(wanted) == 3
    assert f"build.sh: {' '.join(wanted)}, inlined" in page  # rebuild when DVC moves on
    for name in ("vega", "vegaLite", "vegaEmbed"):  # each library defines its global
        assert f").{name}=" in page or f"self).{name}" in page, name


@pytest.mark.integration
def test_dvc_plots_show_writes_a_page_with_no_remote_script(tmp_path: Path) -> None:
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent))
    assert dvc is not None
    done = subprocess.run(
        [dvc, "plots", "show", "-o", str(tmp_path / "plots")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "plots" / "index.html").read_text(encoding="utf-8")
    assert not REMOTE_SCRIPT.search(page) and "cdn.jsdelivr" not in page
    assert page.count("vegaEmbed(") >= 10  # every plot of dvc.yaml, embedded by the inlined JS
