"""srjs evaluate --report: the PNGs exist and every table number is the JSON's."""
import base64
import json
import math
from html.parser import HTMLParser

import pytest

from srjs.evaluate.report import COLUMNS
from srjs.evaluate.run import run_evaluate
from tests.conftest import SLIM_X2

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects <img> attributes and the cells of the table with id="results"."""

    def __init__(self):
        super().__init__()
        self.images, self.rows, self.headers = [], [], []
        self._in_results = self._in_cell = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self._in_results = attrs.get("id") == "results"
        elif self._in_results and tag == "tr":
            self.rows.append([])
        elif self._in_results and tag in ("td", "th"):
            self._in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_results = False
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, text):
        if self._in_results and self._in_cell:
            self.rows[-1][-1] += text


@pytest.fixture(scope="module")
def reports(converted, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    slim = converted(SLIM_X2)
    evaluation = run_evaluate([slim], dataset="builtin", limit=2, crop=48, json_path=out / "e.json",
                              report_path=out / "r.html", latency_size=32, latency_tiles=(0, 16),
                              warm=1, seam=False, progress=False)
    from srjs.evaluate.report import write_report

    write_report(evaluation, out / "r.md")
    return out


def test_html_pngs_exist_and_are_the_embedded_images(reports):
    page = _Page()
    page.feed((reports / "r.html").read_text())
    alts = [img["alt"] for img in page.images]
    assert alts == ["size vs PSNR-Y", "latency vs tile size", "crops x2"]  # bicubic and HR once per scale
    for img in page.images:
        path = reports / img["data-file"]
        assert path.is_file() and path.read_bytes()[:8] == PNG_MAGIC
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        assert base64.b64decode(img["src"][len(prefix):]) == path.read_bytes()


def test_html_table_numbers_equal_the_json(reports):
    raw = json.loads((reports / "e.json").read_text())
    page = _Page()
    page.feed((reports / "r.html").read_text())
    headers, *rows = page.rows
    assert headers == [c.header for c in COLUMNS]
    assert [r[0] for r in rows] == [row["name"] for row in raw["rows"]] == ["bicubic x2", "esrgan-slim-x2"]
    checked = 0
    for cells, row in zip(rows, raw["rows"]):
        for text, column in zip(cells, COLUMNS):
            value = row[column.key]
            if value is None:
                assert text == "-"
            elif value == "inf":
                assert text == "inf"
            elif column.digits is None:
                assert text == str(value)
            else:
                assert float(text) == pytest.approx(value, abs=0.51 * 10 ** -column.digits)
                checked += 1
    assert checked >= 8  # PSNR/SSIM of both rows, fidelity SSIM and latency of the model
    model = dict(zip(headers, rows[1]))
    assert model["fidelity dB"] == "inf" and model["fidelity SSIM-Y"] == "1.0000"
    assert int(model["gzip bytes"]) == raw["rows"][1]["gzip_bytes"] > 0
    assert math.isfinite(float(model["Y-PSNR dB"]))


def test_markdown_links_existing_pngs_and_states_the_protocol(reports):
    text = (reports / "r.md").read_text()
    raw = json.loads((reports / "e.json").read_text())
    links = [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert len(links) == 3 and all((reports / link).is_file() for link in links)
    assert raw["protocol"] in text and "## Bandwidth" in text
    bw = raw["bandwidth"][0]
    assert f"| {bw['image']} | 2 | 48x48 | 24x24 | {bw['hr_png']} | {bw['lr_png']} |" in text


def test_no_latency_chart_without_tiled_latency_and_protocol_has_no_raw_backticks(reports, tmp_path):
    from srjs.evaluate.report import write_report
    from srjs.evaluate.results import Evaluation

    evaluation = Evaluation.from_dict(json.loads((reports / "e.json").read_text()))
    evaluation.latency = [t for t in evaluation.latency if t.tile == 0]  # whole-image timings only
    write_report(evaluation, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    page = _Page()
    page.feed(text)
    assert [img["alt"] for img in page.images] == ["size vs PSNR-Y"]  # no chart of flat lines
    assert 'id="latency"' in text  # the whole-image numbers are still in the table
    protocol = text.split("<h2>Protocol</h2>", 1)[1]
    assert "`" not in protocol and "<code>scale</code>" in protocol


def test_quality_axis_spans_at_least_a_decibel():
    from srjs.evaluate.report import quality_ylim

    low, high = quality_ylim([28.39, 28.46])  # 0.07 dB apart: noise on two images
    assert high - low >= 1.0 and low < 28.39 and high > 28.46
    low, high = quality_ylim([20.0, 30.0])  # real differences keep their own range, plus margins
    assert (low, high) == pytest.approx((19.0, 31.0))


def test_variant_crops_go_where_the_most_departing_variant_differs():
    import numpy as np

    from srjs.evaluate.report import variant_window
    from srjs.evaluate.results import Evaluation, Row

    parent = np.zeros((64, 64, 3), np.uint8)
    small, large = parent.copy(), parent.copy()
    small[2:6, 2:6] = 10  # a faint change top-left
    large[40:60, 30:50] = 200  # a strong one lower right
    rows = [Row("p", "model", 2, 30.0, 0.9, 29.0, []),
            Row("a", "model", 2, 30.0, 0.9, 29.0, [], reference="p"),
            Row("b", "model", 2, 30.0, 0.9, 29.0, [], reference="p")]
    evaluation = Evaluation("d", [], rows, [], [], {}, machine={},
                            samples={2: {"image": "i", "hr": parent, "bicubic": parent,
                                         "models": {"p": parent, "a": small, "b": large}}})
    reference, variants, (top, left, side), most = variant_window(evaluation, 2, side=16)
    assert (reference, [r.name for r in variants], most.name) == ("p", ["a", "b"], "b")
    assert 40 <= top + side // 2 <= 60 and 30 <= left + side // 2 <= 50  # inside b's change
    rows[2].reference = None  # b is no variant now: a's faint change is the place to look
    assert variant_window(evaluation, 2, side=16)[3].name == "a"
