"""waveglow.evaluation's metrics at their known points, and waveglow-evaluate's outputs and problem reports."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import sys

import numpy as np
import pytest
import soundfile
import torch
from scipy.signal import resample_poly

from waveglow import WaveGlow, evaluation, save_checkpoint
from waveglow.audio import MelSpectrogram
from waveglow.cli import evaluate, train
from waveglow.config import DataConfig

from conftest import REPO, TEST_DATA, randomize_end

METADATA = os.path.join(TEST_DATA, "metadata.csv")
FULL_REFERENCE = tuple(m for m in evaluation.METRICS if m not in (*evaluation.REFERENCE_FREE, *evaluation.MODEL_METRICS))
SEMITONE = 2 ** (1 / 12)


def wav_path(stem: str) -> str:
    return os.path.join(TEST_DATA, "wavs", f"{stem}.wav")


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, int]:
    audio, rate = soundfile.read(wav_path("allison-conf-hasjoin"), dtype="float32")
    return audio, rate


@pytest.fixture(scope="module")
def features() -> MelSpectrogram:
    return MelSpectrogram.from_config(DataConfig())


def noise_like(audio: np.ndarray, seed: int = 0) -> np.ndarray:
    """White noise with the RMS of ``audio``."""
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    return (np.random.default_rng(seed).standard_normal(audio.size) * rms).astype(np.float32)


# ------------------------------------------------------------------------------ metrics


def test_a_clip_scored_against_itself_is_at_every_ceiling(clip, features):
    audio, rate = clip
    scores = evaluation.score_clip(audio, audio.copy(), rate, features, FULL_REFERENCE)
    assert list(scores) == list(FULL_REFERENCE)
    assert scores["pesq_wb"] == pytest.approx(4.644, abs=0.001)  # P.862.2's MOS-LQO ceiling
    assert scores["stoi"] == pytest.approx(1.0, abs=1e-9)
    assert scores["log_mel_l1"] == 0.0
    assert scores["mcd_db"] == pytest.approx(0.0, abs=1e-9)
    assert scores["f0_rmse_cents"] == pytest.approx(0.0, abs=1e-9)
    assert scores["vuv_error"] == 0.0


def test_white_noise_at_the_same_level_is_near_the_floors(clip, features):
    audio, rate = clip
    noise = noise_like(audio)
    scores = evaluation.score_clip(audio, noise, rate, features, ("pesq_wb", "stoi", "mcd_db"))
    assert scores["pesq_wb"] < 1.1  # the floor is about 1.02
    # STOI clips the degraded envelope to 15 dB above the reference's, so unrelated noise keeps
    # some correlation with the speech envelope: its floor sits near 0.35, not at 0.
    assert scores["stoi"] < 0.45
    assert scores["mcd_db"] > 10
    mixed = audio + 0.3 * noise  # 10 dB SNR: between noise and the clean clip on both scales
    assert scores["stoi"] < evaluation.stoi(audio, mixed, rate) < 0.99
    assert scores["pesq_wb"] < evaluation.pesq_wb(audio, mixed, rate) < 4.0


def test_mcd_ignores_the_level_but_not_the_spectral_shape(clip):
    audio, rate = clip
    assert evaluation.mcd_db(audio, 0.5 * audio, rate) == pytest.approx(0.0, abs=1e-6)  # c0 is left out
    smoothed = np.convolve(audio, np.ones(4) / 4, mode="same")  # a low-pass: the upper bands drop
    assert evaluation.mcd_db(audio, smoothed, rate) > 2.0


def test_mcd_with_every_cepstrum_is_the_rms_db_difference_of_the_mel_spectra(monkeypatch, clip):
    """Parseval: with c1 .. c(K-1) of K bands, the MCD is the per-frame RMS over bands of the dB
    difference of the two mel amplitude spectra, less its mean over bands, averaged over frames."""
    import librosa

    audio, rate = clip
    smoothed = np.convolve(audio, np.ones(4) / 4, mode="same")
    monkeypatch.setattr(evaluation, "MCD_ORDER", evaluation.MCD_N_MELS - 1)

    def db(x):  # (frames, bands): 20 log10 of the mel band amplitude
        power = librosa.feature.melspectrogram(y=x.astype(np.float64), sr=rate, n_fft=1024, hop_length=256,
                                               n_mels=evaluation.MCD_N_MELS, fmin=0.0, fmax=rate / 2)
        return 10 * np.log10(np.maximum(power, 1e-10)).T

    difference = db(audio) - db(smoothed)
    difference -= difference.mean(axis=1, keepdims=True)
    expected = np.mean(np.sqrt(np.mean(difference**2, axis=1)))
    assert evaluation.mcd_db(audio, smoothed, rate) == pytest.approx(expected, rel=1e-9)


def test_a_copy_a_semitone_higher_is_100_cents_sharp():
    rate = 22050
    t = np.arange(rate) / rate
    envelope = np.minimum(1.0, 20 * np.minimum(t, 1 - t))  # 50 ms fades
    tone = 0.1 * envelope * sum(np.sin(2 * np.pi * 150.0 * k * t) / k for k in range(1, 10))  # 150 Hz, harmonics
    # Played back faster by 2^(1/12): resampled to 1/2^(1/12) of its samples, then zero-padded.
    higher = evaluation.align(resample_poly(tone, 1000, round(1000 * SEMITONE)), tone.size, rate)
    rmse, vuv = evaluation.f0_metrics(tone, higher, rate)
    assert rmse == pytest.approx(100.0, abs=3.0)
    assert vuv < 0.1  # only the frames of the padded tail differ
    assert evaluation.f0_metrics(tone, tone, rate) == (0.0, 0.0)


def test_dnsmos_rates_speech_above_noise(clip):
    audio, rate = clip
    speech, noise = evaluation.dnsmos(audio, rate), evaluation.dnsmos(noise_like(audio), rate)
    for score in (*speech, *noise):
        assert 1.0 <= score <= 5.0
    assert speech[0] > noise[0] + 1.0  # P.835 overall
    assert speech[1] > noise[1] + 0.5  # P.808


def test_a_metric_whose_package_is_missing_is_named_once_and_left_out(monkeypatch, clip, features):
    monkeypatch.setitem(sys.modules, "pesq", None)  # `import pesq` now raises ImportError
    kept, messages = evaluation.available_metrics(("pesq_wb", "stoi", "log_mel_l1"))
    assert kept == ("stoi", "log_mel_l1")
    assert len(messages) == 1 and "pesq_wb" in messages[0] and "pip install pesq" in messages[0]
    audio, rate = clip
    with pytest.warns(evaluation.MissingMetricWarning, match="pesq_wb"):
        scores = evaluation.evaluate_model(_tiny_model(), DataConfig(), [wav_path("allison-enabled")], sigma=0.6,
                                           metrics=("pesq_wb", "stoi"))
    assert list(scores) == ["stoi"]


def test_the_reference_is_prepared_as_the_features_expect(clip, features):
    audio, _ = clip
    assert np.array_equal(evaluation.prepare_reference(features, audio), audio)  # Tacotron 2: as read

    class PeakNormalised(torch.nn.Module):
        def prepare_audio(self, x):
            return x / x.abs().amax(dim=-1, keepdim=True) * 0.999

    prepared = evaluation.prepare_reference(PeakNormalised(), audio)
    assert prepared.shape == audio.shape and np.abs(prepared).max() == pytest.approx(0.999)


def test_align_trims_or_pads_within_the_tolerance_only():
    audio = np.arange(10, dtype=np.float32)
    assert evaluation.align(audio, 8, 2).tolist() == list(range(8))
    assert evaluation.align(audio, 12, 2).tolist() == list(range(10)) + [0, 0]
    with pytest.raises(ValueError, match="more than 2 apart"):
        evaluation.align(audio, 13, 2)


# ------------------------------------------------------------------------------ during training


def _tiny_model() -> WaveGlow:
    from waveglow import load_config

    torch.manual_seed(0)
    config = load_config(os.path.join(REPO, "configs", "tiny.json"))
    return randomize_end(WaveGlow(**config.waveglow_config.to_kwargs()))


def test_evaluate_model_scores_copy_synthesis_reproducibly_and_restores_the_mode():
    model = _tiny_model().train()
    files = [wav_path("allison-enabled")]
    first = evaluation.evaluate_model(model, DataConfig(), files, sigma=0.6, seed=3)
    assert model.training
    assert list(first) == list(evaluation.TRAINING_METRICS)
    assert 1.0 <= first["pesq_wb"] < 1.5 and 0 <= first["stoi"] < 0.6 and first["log_mel_l1"] > 1  # noise
    assert evaluation.evaluate_model(model, DataConfig(), files, sigma=0.6, seed=3) == first
    assert evaluation.evaluate_model(model, DataConfig(), files, sigma=0.6, seed=4) != first


def test_training_logs_the_evaluation_to_tensorboard_and_metrics_jsonl(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    clips = [wav_path(s) for s in ("allison-activated", "allison-enabled", "allison-queue-less-than")]
    (tmp_path / "train.txt").write_text("\n".join(clips) + "\n")
    (tmp_path / "val.txt").write_text("\n".join(reversed(clips)) + "\n")
    settings = {
        "data_config.training_files": tmp_path / "train.txt", "data_config.validation_files": tmp_path / "val.txt",
        "train_config.output_directory": tmp_path / "out", "train_config.max_iterations": 2,
        "train_config.iters_per_evaluation": 2, "train_config.evaluation_clips": 1,
        "train_config.with_tensorboard": "true",
    }
    argv = ["-c", os.path.join(REPO, "configs", "tiny.json")]
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    assert train.main(argv) == 0
    assert re.search(r"^2:\tevaluation pesq_wb \S+, stoi \S+, log_mel_l1 \S+$", capsys.readouterr().out, re.M)
    events = EventAccumulator(str(tmp_path / "out" / "logs")).Reload()
    for name in evaluation.TRAINING_METRICS:
        (scalar,) = events.Scalars(f"evaluation.{name}")
        assert scalar.step == 2 and math.isfinite(scalar.value)
    assert 1.0 <= events.Scalars("evaluation.pesq_wb")[0].value <= 4.65
    from waveglow.metrics import read_metrics

    (record,) = [r for r in read_metrics(str(tmp_path / "out" / "metrics.jsonl")) if "pesq_wb" in r]
    assert set(record) == {"iteration", *evaluation.TRAINING_METRICS} and record["iteration"] == 2
    assert record["stoi"] == pytest.approx(events.Scalars("evaluation.stoi")[0].value, rel=1e-6)


# ------------------------------------------------------------------------------ waveglow-evaluate


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("checkpoint") / "tiny_waveglow.pt")
    from waveglow import load_config

    save_checkpoint(path, _tiny_model(), load_config(os.path.join(REPO, "configs", "tiny.json")))
    return path


@pytest.fixture(scope="module")
def full_run(tiny_checkpoint, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("evaluation"))
    status = evaluate.main(["-f", METADATA, "-o", out, "-w", tiny_checkpoint, "--griffin-lim", "--limit", "2",
                            "--device", "cpu"])
    assert status == 0
    return out


def read_rows(out: str) -> list[dict]:
    with open(os.path.join(out, "clips.csv"), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_summary_json_has_the_documented_schema(full_run):
    with open(os.path.join(full_run, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    assert set(summary) == {"systems", "clips"} and summary["clips"] == 2
    systems = summary["systems"]
    assert list(systems) == ["tiny_waveglow.pt", "griffin_lim", "ground_truth"]
    for row in systems.values():
        assert list(row) == [*evaluation.METRICS, "rtf"]
    model, gl, truth = systems["tiny_waveglow.pt"], systems["griffin_lim"], systems["ground_truth"]
    assert all(truth[m] is None for m in FULL_REFERENCE) and truth["rtf"] is None
    assert all(1 <= truth[m] <= 5 for m in evaluation.REFERENCE_FREE)
    assert model["rtf"] > 0 and gl["rtf"] > 0
    assert 1 <= model["pesq_wb"] < gl["pesq_wb"] <= 4.65  # the random model makes noise
    assert model["stoi"] < gl["stoi"] and gl["log_mel_l1"] < model["log_mel_l1"]
    assert math.isfinite(model["test_ll"]) and gl["test_ll"] is None  # a score of the model, not of audio


def test_clips_csv_holds_every_clip_and_the_summary_their_means(full_run):
    rows = read_rows(full_run)
    assert [(r["clip"], r["system"]) for r in rows] == [
        (clip, system) for clip in ("allison-activated", "allison-conf-hasjoin")
        for system in ("tiny_waveglow.pt", "griffin_lim", "ground_truth")
    ]
    with open(os.path.join(full_run, "summary.json"), encoding="utf-8") as f:
        systems = json.load(f)["systems"]
    for name in ("tiny_waveglow.pt", "griffin_lim"):
        values = [float(r["stoi"]) for r in rows if r["system"] == name]
        assert systems[name]["stoi"] == pytest.approx(np.mean(values))
    table = open(os.path.join(full_run, "summary.md"), encoding="utf-8").read()
    for name in systems:
        assert f"| {name} |" in table
    import matplotlib.image

    image = matplotlib.image.imread(os.path.join(full_run, "spectrograms.png"))
    assert image.shape[0] > 300 and image.shape[1] > 800  # 2 rows, 3 columns and a colour bar
    page = open(os.path.join(full_run, "report.html"), encoding="utf-8").read()
    assert page.count("<audio ") == 6 and "tiny_waveglow.pt: WaveGlow, iteration" in page


def _outside_system(tmp_path) -> tuple[str, str]:
    """A file list of five clips and an unreadable one, and another system's folder for them: one
    copy exact (named as inference.py names it), one a few samples long, one far too long, one at
    16 kHz, one missing."""
    stems = ["allison-activated", "allison-enabled", "allison-queue-less-than", "allison-vm-tooshort",
             "allison-to-rerecord-it"]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav file")
    file_list = tmp_path / "list.txt"
    file_list.write_text("\n".join([wav_path(s) for s in stems] + [str(broken)]) + "\n")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(wav_path(stems[0]), other / f"{stems[0]}_synthesis.wav")  # as inference.py names its outputs
    audio, rate = soundfile.read(wav_path(stems[1]), dtype="float32")
    soundfile.write(other / f"{stems[1]}.wav", np.pad(audio, (0, 100)), rate)  # within one hop
    audio, rate = soundfile.read(wav_path(stems[2]), dtype="float32")
    soundfile.write(other / f"{stems[2]}.wav", np.pad(audio, (0, 1000)), rate)  # more than one hop
    audio, rate = soundfile.read(wav_path(stems[3]), dtype="float32")
    soundfile.write(other / f"{stems[3]}.wav", resample_poly(audio, 320, 441), 16000)
    return str(file_list), str(other)


def test_outside_outputs_with_problems_are_reported_per_clip_and_the_rest_scored(tmp_path, capsys):
    file_list, other = _outside_system(tmp_path)
    out = str(tmp_path / "out")
    assert evaluate.main(["-f", file_list, "-o", out, "--wavs", f"other={other}", "--metrics", "stoi",
                          "log_mel_l1"]) == 0
    errors = capsys.readouterr().err
    assert "broken.wav" in errors and errors.count("warning:") == 4
    notes = {r["clip"]: r["note"] for r in read_rows(out) if r["system"] == "other"}
    assert list(notes) == ["allison-activated", "allison-enabled", "allison-queue-less-than",
                           "allison-vm-tooshort", "allison-to-rerecord-it"]  # broken.wav skipped
    assert notes["allison-activated"] == notes["allison-enabled"] == ""
    assert "more than 256 apart" in notes["allison-queue-less-than"]
    assert "sampling rate 16000 Hz" in notes["allison-vm-tooshort"]
    assert "no such file" in notes["allison-to-rerecord-it"]
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["clips"] == 5
    assert summary["systems"]["other"] == {"stoi": pytest.approx(1.0), "log_mel_l1": 0.0, "rtf": None}
    table = open(os.path.join(out, "summary.md"), encoding="utf-8").read()
    assert "sampling rate 16000 Hz" in table and "broken.wav" in table


def test_a_missing_package_is_named_once_by_the_script(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pystoi", None)
    out = str(tmp_path / "out")
    assert evaluate.main(["-f", METADATA, "-o", out, "--griffin-lim", "--limit", "2", "--metrics", "stoi",
                          "log_mel_l1"]) == 0
    errors = capsys.readouterr().err
    assert errors.count("stoi left out") == 1 and "pip install pystoi" in errors
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
        assert list(json.load(f)["systems"]["griffin_lim"]) == ["log_mel_l1", "rtf"]


@pytest.mark.parametrize("argv, message", [
    (["-f", "no/such/list.txt"], "no/such/list.txt: cannot read the file list"),
    (["-f", METADATA, "--wavs", "nameonly"], "expected NAME=DIR"),
    (["-f", METADATA, "--wavs", "x=no/such/dir"], "no/such/dir is not a directory"),
    (["-f", METADATA, "-w", "no/such/checkpoint.pt"], "no/such/checkpoint.pt"),
    (["-f", METADATA, "--wavs", f"griffin_lim={TEST_DATA}", "--griffin-lim"], "two systems are named"),
])
def test_unusable_arguments_are_one_line_errors(tmp_path, capsys, argv, message):
    assert evaluate.main([*argv, "-o", str(tmp_path / "out")]) == 1
    errors = capsys.readouterr().err.strip()
    assert errors.startswith("error:") and message in errors and "\n" not in errors
