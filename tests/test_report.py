"""waveglow.report: the listening page's files and text, and the page itself played in headless Chromium."""

from __future__ import annotations

import json
import math
import os
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
import soundfile

from waveglow import evaluation, report
from waveglow.cli import evaluate

from conftest import REPO, TEST_DATA

CLIPS = ("allison-activated", "allison-enabled")
RATE = 22050


def wav_path(stem: str) -> str:
    return os.path.join(TEST_DATA, "wavs", f"{stem}.wav")


def read(stem: str) -> np.ndarray:
    audio, rate = soundfile.read(wav_path(stem), dtype="float32")
    assert rate == RATE
    return audio


class Page(HTMLParser):
    """The page's <audio> and <img> sources, its links, and the text of each cell by (clip, system)."""

    def __init__(self, text: str):
        super().__init__()
        self.sources, self.links, self.cells = [], [], {}
        self._clip, self._cell, self._nested = None, None, 0  # tables inside the current cell
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("audio", "img"):
            self.sources.append((tag, attrs["src"]))
        if tag == "a":
            self.links.append(attrs["href"])
        if tag == "tr" and "data-clip" in attrs:
            self._clip = attrs["data-clip"]
        if tag == "td" and self._clip is not None and "data-system" in attrs:
            self._cell = (self._clip, attrs["data-system"])
            self.cells[self._cell] = {"text": "", "audio": None}
        if tag == "table" and self._cell is not None:
            self._nested += 1
        if tag == "audio" and self._cell is not None:
            self.cells[self._cell]["audio"] = attrs["src"]

    def handle_endtag(self, tag):
        if tag == "table" and self._nested:
            self._nested -= 1
        if self._nested:
            return
        if tag == "td":
            self._cell = None
        if tag == "tr":
            self._clip = None

    def handle_data(self, data):
        if self._cell is not None:
            self.cells[self._cell]["text"] += data


def page(directory) -> Page:
    with open(os.path.join(directory, "report.html"), encoding="utf-8") as f:
        return Page(f.read())


def rows_for(clips, systems, note=None) -> list[dict]:
    """Rows as evaluate.py keeps them: a STOI per system (the reference: DNSMOS only), one note if given."""
    rows = []
    for i, clip in enumerate(clips):
        for j, system in enumerate(systems):
            row = {"clip": clip, "system": system, "note": ""}
            row.update({"dnsmos_ovrl": 3.0 + 0.1 * i} if j == 0 else {"stoi": 0.5 + 0.1 * j, "pesq_wb": math.nan})
            rows.append(row)
    if note is not None:
        rows[-1]["note"] = note
    return rows


# ------------------------------------------------------------------------------ the page's files and text


def test_every_metric_the_scripts_write_is_explained_with_its_better_direction():
    for key in (*evaluation.METRICS, "rtf", "log_mel_distance", "energy_correlation"):
        metric = report.METRICS[key]
        assert metric.better in ("higher", "lower") and len(metric.meaning) > 20, key
    assert report.describe("something_new").label == "something_new"


def test_a_failed_output_shows_why_in_its_cell_and_the_rest_renders(tmp_path):
    systems = ("ground_truth", "ours", "theirs")
    audio = {clip: {"ground_truth": read(clip), "ours": read(clip) * 0.5} for clip in CLIPS}  # no "theirs" audio
    rows = rows_for(CLIPS, systems, note="theirs/allison-enabled.wav: no such file")
    rows[2]["note"] = "666 samples against the reference's 23410 (more than 256 apart)"
    report.write_report(str(tmp_path), rows, audio, RATE, title="t", reference="ground_truth")
    cells = page(tmp_path).cells
    assert "no such file" in cells[("allison-enabled", "theirs")]["text"]
    assert "more than 256 apart" in cells[("allison-activated", "theirs")]["text"]
    assert cells[("allison-enabled", "theirs")]["audio"] is None
    for clip in CLIPS:
        for system in ("ground_truth", "ours"):
            assert cells[(clip, system)]["audio"] is not None
    ours = cells[("allison-enabled", "ours")]["text"]
    assert "STOI" in ours and "0.600" in ours and "–" in ours  # PESQ gave no value for that clip


def test_the_first_n_clips_get_players_and_the_rest_are_listed_with_their_scores(tmp_path):
    clips = ("allison-activated", "allison-enabled", "allison-vm-tooshort")
    audio = {clip: {"ground_truth": read(clip), "ours": read(clip)} for clip in clips}
    report.write_report(str(tmp_path), rows_for(clips, ("ground_truth", "ours")), audio, RATE, title="t",
                        reference="ground_truth", shown=1)
    parsed = page(tmp_path)
    assert [src for tag, src in parsed.sources if tag == "audio"] == [
        "report_files/001_allison-activated/0_ground_truth.wav", "report_files/001_allison-activated/1_ours.wav"]
    assert os.listdir(tmp_path / "report_files") == ["001_allison-activated"]
    for clip in clips[1:]:
        assert "0.600" in parsed.cells[(clip, "ours")]["text"] and parsed.cells[(clip, "ours")]["audio"] is None
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Listen: 1 of 3 clips" in text and "2 more clips: scores only" in text


def test_names_are_escaped_and_every_file_is_a_relative_path_beside_the_page(tmp_path):
    odd = '<b>"x"</b> & co'
    audio = {"a clip/ü": {"ground_truth": read(CLIPS[0]), odd: read(CLIPS[0])}}
    rows = [{"clip": "a clip/ü", "system": "ground_truth", "note": ""},
            {"clip": "a clip/ü", "system": odd, "stoi": 1.0, "note": "<script>alert(1)</script>"}]
    (tmp_path / "summary.json").write_text("{}")
    report.write_report(str(tmp_path), rows, audio, RATE, title="<i>t</i>", reference="ground_truth")
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<b>" not in text and "<script>alert" not in text and "<i>t</i>" not in text
    assert "&lt;b&gt;&#34;x&#34;&lt;/b&gt; &amp; co" in text
    parsed = page(tmp_path)
    assert len(parsed.sources) == 5  # two players, two spectrograms, the row's colour bar
    for _, src in parsed.sources + [(None, link) for link in parsed.links]:
        assert "://" not in src and not src.startswith("/") and ".." not in src, src
        assert os.path.isfile(tmp_path / src), src
    assert parsed.links == ["summary.json"]


def test_wavs_in_the_output_folder_are_linked_and_others_copied(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    inside, outside = out / "x_original.wav", tmp_path / "elsewhere.wav"
    shutil.copy(wav_path(CLIPS[0]), inside)
    shutil.copy(wav_path(CLIPS[0]), outside)
    audio = {"x": {"original": read(CLIPS[0]), "copy": read(CLIPS[0])}}
    rows = rows_for(["x"], ("original", "copy"))
    report.write_report(str(out), rows, audio, RATE, title="t", reference="original",
                        wav_files={"x": {"original": str(inside), "copy": str(outside)}})
    sources = [src for tag, src in page(out).sources if tag == "audio"]
    assert sources == ["x_original.wav", "report_files/001_x/1_copy.wav"]
    assert (out / sources[1]).read_bytes() == outside.read_bytes()


def test_a_second_report_replaces_the_first_ones_files(tmp_path):
    audio = {clip: {"ground_truth": read(clip)} for clip in CLIPS}
    report.write_report(str(tmp_path), rows_for(CLIPS, ("ground_truth",)), audio, RATE, title="t",
                        reference="ground_truth")
    del audio[CLIPS[0]]
    report.write_report(str(tmp_path), rows_for(CLIPS[1:], ("ground_truth",)), audio, RATE, title="t",
                        reference="ground_truth")
    assert sorted(os.listdir(tmp_path)) == ["report.html", "report_files"]
    assert os.listdir(tmp_path / "report_files") == ["001_allison-enabled"]


def test_a_report_that_fails_midway_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    audio = {clip: {"ground_truth": read(clip)} for clip in CLIPS}
    report.write_report(str(tmp_path), rows_for(CLIPS, ("ground_truth",)), audio, RATE, title="t",
                        reference="ground_truth")
    before = {name: (tmp_path / name).stat().st_mtime_ns for name in ("report.html", "report_files")}

    def broken(context):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "_render", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        report.write_report(str(tmp_path), rows_for(CLIPS, ("ground_truth",)), audio, RATE, title="t",
                            reference="ground_truth")
    assert sorted(os.listdir(tmp_path)) == ["report.html", "report_files"]  # no staging folder left behind
    assert {name: (tmp_path / name).stat().st_mtime_ns for name in before} == before
    assert len(os.listdir(tmp_path / "report_files")) == 2


def test_the_best_system_is_marked_per_metric_the_reference_not_counted():
    summary = {"truth": {"stoi": None, "dnsmos_ovrl": 4.0}, "a": {"stoi": 0.9, "dnsmos_ovrl": 2.0},
               "b": {"stoi": 0.7, "dnsmos_ovrl": 3.0}, "c": {"stoi": None, "dnsmos_ovrl": None}}
    lines = report.summary_lines(summary, ["truth", "a", "b", "c"], ["stoi", "dnsmos_ovrl"], "truth")
    assert lines[0].values == [("–", False), ("0.900", True), ("0.700", False), ("–", False)]
    assert lines[1].values == [("4.00", False), ("2.00", False), ("3.00", True), ("–", False)]
    summary["a"]["mcd_db"], summary["b"]["mcd_db"] = 4.0, 6.0
    (line,) = report.summary_lines(summary, ["truth", "a", "b", "c"], ["mcd_db"], "truth")
    assert [best for _, best in line.values] == [False, True, False, False]  # lower is better


def test_checkpoint_facts_read_the_family_and_iteration_without_the_weights(tmp_path, tiny_model, tiny_config):
    from waveglow import load_config, save_checkpoint
    from waveglow.checkpoint import build_model

    path = save_checkpoint(str(tmp_path / "tiny.pt"), tiny_model, tiny_config, iteration=1234)
    assert report.checkpoint_facts(path) == "WaveGlow, iteration 1234"
    config = load_config(os.path.join(REPO, "configs", "flowavenet_small.json"))
    path = save_checkpoint(str(tmp_path / "flowavenet"), build_model(config), config)
    assert report.checkpoint_facts(path) == "FloWaveNet, iteration not recorded"
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert report.checkpoint_facts(str(tmp_path / "junk.pt")).startswith("(not readable:")


# ------------------------------------------------------------------------------ in a browser


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> str:
    """evaluate.py on two clips (and a third whose other output is missing): the original and a noised copy."""
    root = tmp_path_factory.mktemp("report")
    noisy = root / "noisy"
    noisy.mkdir()
    rng = np.random.default_rng(0)
    for stem in CLIPS:
        audio = read(stem)
        soundfile.write(noisy / f"{stem}.wav", audio + 0.01 * rng.standard_normal(audio.size).astype(np.float32), RATE)
    file_list = root / "list.txt"
    file_list.write_text("\n".join(wav_path(s) for s in (*CLIPS, "allison-vm-tooshort")) + "\n")
    out = str(root / "out")
    assert evaluate.main(["-f", str(file_list), "-o", out, "--wavs", f"noisy={noisy}", "--report-clips", "2",
                          "--metrics", "pesq_wb", "stoi", "log_mel_l1"]) == 0  # DNSMOS would take 5 s a clip
    return out


def test_evaluate_writes_the_page_with_the_first_clips_and_lists_the_missing_output(evaluated):
    cells = page(evaluated).cells
    assert set(cells) == {(c, s) for c in (*CLIPS, "allison-vm-tooshort") for s in ("ground_truth", "noisy")}
    assert "no such file" in cells[("allison-vm-tooshort", "noisy")]["text"]
    assert all(cells[(c, s)]["audio"] for c in CLIPS for s in ("ground_truth", "noisy"))
    text = open(os.path.join(evaluated, "report.html"), encoding="utf-8").read()
    assert "denoiser strength" in text and "noisy=" not in text and "Listen: 2 of 3 clips" in text


def test_a_negative_report_clips_is_a_one_line_error(tmp_path, capsys):
    file_list = tmp_path / "list.txt"
    file_list.write_text(wav_path(CLIPS[0]) + "\n")
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it, naming the flag (status 2)
        evaluate.main(["-f", str(file_list), "-o", str(tmp_path / "out"), "--report-clips", "-1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --report-clips: must be an integer >= 0, got '-1'" in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "out")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium here (apt-get install chromium; .ci/run installs it)")


def number_matches(text: str, value: float) -> bool:
    """Whether the page's rounded ``text`` shows ``value``."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return abs(float(text) - value) <= 0.5 * 10**-decimals + 1e-9


def test_the_page_plays_and_shows_every_file_in_chromium(evaluated):
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="no Python driver for Chromium: pip install playwright")
    browser_path = chromium()
    with open(os.path.join(evaluated, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)["systems"]
    seconds = {clip: soundfile.info(wav_path(clip)).duration for clip in CLIPS}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path)
        try:
            tab = browser.new_page()
            problems = []
            tab.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            tab.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            tab.goto(f"file://{os.path.abspath(evaluated)}/report.html")
            ready = "Array.from(document.querySelectorAll('audio')).every(a => a.readyState >= 2)"
            try:
                tab.wait_for_function(ready, timeout=20_000)
            except sync_api.TimeoutError:
                pass  # the assertion below says which
            players = tab.evaluate("""Array.from(document.querySelectorAll('audio')).map(a => ({
                clip: a.closest('tr').dataset.clip, state: a.readyState, duration: a.duration,
                error: a.error && a.error.code}))""")
            images = tab.evaluate("""Array.from(document.images).map(i => ({
                src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth}))""")
            table = tab.evaluate("""Array.from(document.querySelectorAll('table.summary td[data-system]')).map(td => ({
                metric: td.closest('tr').dataset.metric, system: td.dataset.system, text: td.textContent.trim()}))""")
        finally:
            browser.close()
    assert len(players) == 4 and {p["clip"] for p in players} == set(CLIPS)
    for player in players:
        assert player["state"] >= 2 and player["error"] is None, player
        assert abs(player["duration"] - seconds[player["clip"]]) <= 0.010, (player, seconds)
    assert len(images) == 6  # four spectrograms and a colour bar per row
    for image in images:
        assert image["complete"] and image["width"] > 0, image
    shown = {(c["system"], c["metric"]): c["text"] for c in table}
    expected = {(s, m): v for s, row in summary.items() for m, v in row.items()}
    assert set(shown) == set(expected) and sum(v is not None for v in expected.values()) == 3  # noisy's three
    for key, value in expected.items():
        assert (shown[key] == "–") if value is None else number_matches(shown[key], value), (key, shown[key], value)
    assert problems == []
