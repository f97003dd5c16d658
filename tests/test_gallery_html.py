"""``colocam gallery``: the static HTML page, its image files, and the page in headless Chromium.

Chromium is Debian's ``chromium`` (``apt-get install -y chromium``); the
browser tests are skipped, saying so, when it is not installed.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from colocam_plugin.data.records import FrameRecord
from colocam_plugin.gallery import sample_frames, write_html_gallery
from colocam_plugin.harness import EvalResult

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian: apt-get install -y chromium)",
)

SIZE = 32


def _frames(tmp_path: Path, n: int) -> list[FrameRecord]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        path = tmp_path / "frames" / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        boxes = np.array([[8.0, 6.0, 40.0, 30.0]]) if i % 3 else np.zeros((0, 4))
        out.append(FrameRecord(f"v<{i % 2}>", f"v<{i % 2}>/0", i, path, i % 2, (64, 48), boxes))
    return out


def _results(frames: list[FrameRecord], names: list[str]) -> dict[str, EvalResult]:
    rng = np.random.default_rng(1)
    boxes = [np.asarray(f.boxes) * SIZE / 64 for f in frames]
    out = {}
    for k, name in enumerate(names):
        scores = {
            "corloc": 10.0 * (k + 1),
            "corloc_pooled": 5.0,
            "maxboxacc_v2": 7.5,
            "frame_accuracy": 50.0,
            "best_thresholds": {"pooled": 0.5, "corloc_per_class": {0: 0.3, 1: 0.6}},
        }
        cams = rng.integers(0, 256, (len(frames), SIZE, SIZE), dtype=np.uint8)
        out[name] = EvalResult(scores=scores, cams_u8=cams, boxes=boxes)
    return out


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.cells: list[str] = []
        self._in_td = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        self._in_td = tag == "td"

    def handle_data(self, data: str) -> None:
        if self._in_td:
            self.cells.append(data)
            self._in_td = False


def test_page_links_one_image_per_tile_and_scores_in_header(tmp_path):
    frames = _frames(tmp_path, 7)
    names = ["gradcam", "colocam <2>"]
    index = write_html_gallery(
        frames, _results(frames, names), tmp_path / "out", image_size=SIZE, max_frames=5
    )
    assert index == tmp_path / "out" / "index.html"
    page = _Page()
    page.feed(index.read_text())
    assert len(page.images) == 5 * (1 + len(names))
    for src in page.images:  # relative links to files next to index.html
        assert not Path(src).is_absolute() and "/" not in src
        assert cv2.imread(str(index.parent / src)).shape == (SIZE, SIZE, 3)
    assert ["gradcam", "10.0", "5.0", "7.5", "50.0"] == page.cells[:5]
    assert "colocam <2>" in page.cells  # names are escaped, not markup
    assert "<2>" not in index.read_text()
    assert not list(index.parent.glob("*.tmp")) and not list(index.parent.glob(".*"))


def test_sample_is_seeded_and_bounded():
    assert sample_frames(50, 6, seed=3) == sample_frames(50, 6, seed=3)
    assert sample_frames(50, 6, seed=3) != sample_frames(50, 6, seed=4)
    assert sample_frames(4, 10) == [0, 1, 2, 3]


def test_jpeg_images_and_bad_inputs(tmp_path):
    frames = _frames(tmp_path, 3)
    res = _results(frames, ["layercam"])
    index = write_html_gallery(frames, res, tmp_path / "j", image_size=SIZE, image_format="jpg")
    assert sorted(p.suffix for p in index.parent.iterdir()) == [".html"] + [".jpg"] * 6
    with pytest.raises(ValueError, match="at least one method"):
        write_html_gallery(frames, {}, tmp_path / "e", image_size=SIZE)
    res["layercam"].cams_u8 = None
    with pytest.raises(ValueError, match="keep_cams=True"):
        write_html_gallery(frames, res, tmp_path / "e", image_size=SIZE)


# ---------------------------------------------------------------- headless Chromium

#: appended to a copy of the page: records each image's naturalWidth and every
#: error event (a failed image fires one) into the DOM that --dump-dom prints
PROBE = """<script>
const errors = [];
window.addEventListener('error', e => errors.push(String(e.message || e.target.src)), true);
window.addEventListener('load', () => {
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({
    images: [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth]),
    errors: errors,
  });
  document.body.appendChild(pre);
});
</script>"""


def _chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # tests may run as root
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        *args,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _console_messages(stderr: str) -> list[str]:
    """Lines Chromium logs for the page's console (any level: the page has no script)."""
    return [line for line in stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]


def _probe(tmp_path: Path, index: Path) -> dict[str, list]:
    """Load a copy of ``index`` (same folder, so the same relative links) with :data:`PROBE`."""
    probe = index.with_name("probe.html")
    probe.write_text(index.read_text().replace("</body>", PROBE + "\n</body>"))
    proc = _chromium(tmp_path, probe.as_uri(), "--dump-dom")
    probe.unlink()
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"the probe did not run: {proc.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


def check_page_in_chromium(tmp_path: Path, index: Path, screenshot: Path) -> int:
    """Every image loads, the console is silent, a screenshot is saved; returns #images."""
    result = _probe(tmp_path, index)
    assert result["errors"] == []
    assert result["images"], "no image on the page"
    assert all(width > 0 for _, width in result["images"]), result["images"]
    proc = _chromium(
        tmp_path,
        index.as_uri(),
        "--hide-scrollbars",
        "--window-size=1100,900",
        f"--screenshot={screenshot}",
    )
    assert _console_messages(proc.stderr) == []
    shot = cv2.imread(str(screenshot))
    assert shot is not None and shot.shape[:2] == (900, 1100)
    assert shot.std() > 10  # not a blank page
    return len(result["images"])


@needs_chromium
def test_the_probe_sees_a_broken_image_and_console_output(tmp_path):
    """The checks below can fail: a missing image and a console message are caught."""
    page = tmp_path / "index.html"
    page.write_text(
        '<!doctype html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img src="missing.png"><script>console.log("hello")</script></body></html>'
    )
    result = _probe(tmp_path, page)
    assert result["images"] == [["missing.png", 0]] and result["errors"]
    assert len(_console_messages(_chromium(tmp_path, page.as_uri(), "--dump-dom").stderr)) == 1


@needs_chromium
def test_gallery_page_in_headless_chromium(tmp_path):
    frames = _frames(tmp_path, 6)
    index = write_html_gallery(
        frames, _results(frames, ["gradcam", "layercam"]), tmp_path / "g", image_size=SIZE
    )
    assert check_page_in_chromium(tmp_path, index, tmp_path / "gallery.png") == 6 * 3


@pytest.mark.slow
@needs_chromium
def test_colocam_gallery_command_end_to_end(tmp_path):
    """``colocam gallery`` on a tiny SynthYTO with a 1-epoch classifier, opened in Chromium."""
    from colocam_plugin.cli.main import main
    from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto

    generate_synthyto(tmp_path / "data", SynthYTOConfig.tiny())
    data = ["--dataset", "yto-v1.0", "--root", str(tmp_path / "data"), "--no-progress"]
    clf = str(tmp_path / "clf.pt")
    argv = [*data, "--encoder", "resnet18", "--epochs", "1", "--image-size", "64", "--out", clf]
    assert main(["train-classifier", *argv]) == 0
    out = tmp_path / "page"
    argv = [*data, "--classifier", clf, "--methods", "layercam,gradcam", "--max-frames", "4"]
    assert main(["gallery", *argv, "--out", str(out), "--json", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    text = (out / "index.html").read_text()
    for name in ("layercam", "gradcam"):  # each method's CorLoc in the header
        assert f"<td>{name}</td><td>{scores[name]['corloc']:.1f}</td>" in text
    assert check_page_in_chromium(tmp_path, out / "index.html", tmp_path / "shot.png") == 4 * 3
