"""Bad input across every console command: a non-zero exit, no traceback, the offending file or key named,
the good items still processed, and earlier outputs byte-identical after a failed run.

Each case of the table is one command run in-process (``main(argv)``) on tiny models and short clips, in
five classes: (1) a failed run must not destroy an earlier output, (2) audio too short for the features,
(3) out-of-range or contradictory settings, (4) list files from other editors (BOM, CRLF, blank lines,
comments), (5) other bad files (empty, corrupt, a folder where a file is expected, wrong channel count...).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import soundfile
import torch
from conftest import CONFIGS, TEST_DATA, randomize_end

from waveglow import WaveGlow, load_config, save_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

WAVS = os.path.join(TEST_DATA, "wavs")
GOOD_WAVS = ("allison-enabled.wav", "allison-activated.wav")  # the two shortest test clips (about 1 s)
EARLIER = b"an earlier good output\n"


@dataclass
class Workspace:
    """Shared inputs: tiny checkpoints of every family, good and bad audio, mels, lists and configs."""

    root: str
    paths: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> str:
        try:
            return self.__dict__["paths"][name]
        except KeyError:
            raise AttributeError(name) from None

    def file(self, name: str, content: bytes | str) -> str:
        path = os.path.join(self.root, name)
        with open(path, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
        self.paths[os.path.splitext(name)[0].replace("-", "_").replace(".", "_")] = path
        return path


def _flowavenet_config(training_files: str, output_directory: str) -> dict:
    return {
        "train_config": {"fp16_run": False, "output_directory": output_directory, "batch_size": 2, "max_iterations": 1,
                         "iters_per_checkpoint": 1, "learning_rate": 1e-3, "seed": 1},
        "data_config": {"training_files": training_files, "segment_length": 4096, "sampling_rate": 22050,
                        "filter_length": 1024, "hop_length": 256, "win_length": 1024, "mel_fmin": 125.0,
                        "mel_fmax": 7600.0},
        "dist_config": {"dist_backend": "gloo", "dist_url": "tcp://localhost:54321"},
        "flowavenet_config": {"n_block": 2, "n_flow": 1, "n_layer": 1, "block_per_split": 1, "n_channels": 8},
    }


def _waveflow_config(training_files: str, output_directory: str) -> dict:
    return {
        "train_config": {"fp16_run": False, "output_directory": output_directory, "batch_size": 2, "max_iterations": 1,
                         "iters_per_checkpoint": 1, "learning_rate": 1e-3, "seed": 1},
        "data_config": {"training_files": training_files, "segment_length": 4096},
        "waveflow_config": {"res_channels": 8, "n_height": 8, "n_layer": 2, "n_flow": 2, "coupling_type": "waveflow"},
    }


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    w = Workspace(str(tmp_path_factory.mktemp("bad_input")))
    for name in GOOD_WAVS:
        shutil.copy(os.path.join(WAVS, name), w.root)
    w.paths["good1"], w.paths["good2"] = (os.path.join(w.root, n) for n in GOOD_WAVS)
    short = os.path.join(w.root, "short.wav")
    soundfile.write(short, np.zeros(300, np.float32) + 0.01, 22050, subtype="PCM_16")  # < filter_length // 2
    w.paths["short"] = short
    w.file("corrupt.wav", b"RIFF\x00\x00\x00\x00WAVEjunk" + b"\x01" * 64)
    w.file("empty.wav", b"")
    w.file("plain_list.txt", f"{w.good1}\n{w.good2}\n")
    w.file("bom_list.txt", "\ufeff" + f"# a comment\r\n{w.good1}\r\n\r\n{w.good2}|a transcript\r\n")
    w.file("short_list.txt", f"{w.good1}\n{w.short}\n{w.good2}\n")
    os.makedirs(os.path.join(w.root, "a_folder.wav"))
    w.paths["folder_wav"] = os.path.join(w.root, "a_folder.wav")

    config = load_config(os.path.join(CONFIGS, "tiny.json"))
    torch.manual_seed(0)
    model = randomize_end(WaveGlow(**config.waveglow_config.to_kwargs()), std=0.05).eval()
    w.paths["ckpt"] = str(save_checkpoint(os.path.join(w.root, "tiny.pt"), model, config))
    with torch.no_grad():
        model.WN[0].end.weight.fill_(math.nan)
    w.paths["nan_ckpt"] = str(save_checkpoint(os.path.join(w.root, "diverged.pt"), model, config))
    w.file("corrupt_ckpt.pt", b"PK\x03\x04 not really a zip")

    w.paths["mel"] = os.path.join(w.root, "good_mel.pt")
    torch.save(torch.randn(80, 12) - 5, w.mel)
    torch.save(torch.randn(64, 12) - 5, os.path.join(w.root, "mel64.pt"))
    w.paths["mel64"] = os.path.join(w.root, "mel64.pt")
    nan_mel = torch.randn(80, 12)
    nan_mel[0, 0] = math.nan
    torch.save(nan_mel, os.path.join(w.root, "nan_mel.pt"))
    w.paths["nan_mel"] = os.path.join(w.root, "nan_mel.pt")
    w.file("corrupt_mel.pt", b"PK junk")
    w.file("mel_bom_list.txt", "\ufeff" + f"{w.mel}\r\n")

    w.file("wg.json", json.dumps({**config.to_dict(), "train_config": {
        **config.to_dict()["train_config"], "output_directory": os.path.join(w.root, "wg_run"), "max_iterations": 1,
        "iters_per_checkpoint": 1}, "data_config": {**config.to_dict()["data_config"], "training_files": w.plain_list}}))
    w.file("fwn.json", json.dumps(_flowavenet_config(w.plain_list, os.path.join(w.root, "fwn_run"))))
    from waveglow.config import config_from_dict
    from waveglow.models.flowavenet import FloWaveNet

    fwn_config = config_from_dict(json.load(open(w.fwn)))
    torch.manual_seed(0)
    fwn = FloWaveNet(**fwn_config.model_config.to_kwargs())
    fwn.initialized = True
    w.paths["fwn_ckpt"] = str(save_checkpoint(os.path.join(w.root, "fwn.pt"), fwn, fwn_config))
    w.file("fwn_short.json", json.dumps(_flowavenet_config(w.short_list, os.path.join(w.root, "fwn_short_run"))))
    w.file("wg_short.json", json.dumps({**json.load(open(w.wg)), "data_config": {
        **config.to_dict()["data_config"], "training_files": w.short_list}}))
    w.file("wg_bom.json", json.dumps({**json.load(open(w.wg)), "data_config": {
        **config.to_dict()["data_config"], "training_files": w.bom_list}}))
    w.file("wf.json", json.dumps(_waveflow_config(w.plain_list, os.path.join(w.root, "wf_run"))))
    from waveglow.models.waveflow import WaveFlow

    wf_config = config_from_dict(json.load(open(w.wf)))
    torch.manual_seed(0)
    w.paths["wf_ckpt"] = str(save_checkpoint(os.path.join(w.root, "wf.pt"), WaveFlow(**wf_config.model_config.to_kwargs()),
                                             wf_config))
    run = os.path.join(w.root, "run")  # a training run's checkpoints, for average-checkpoints
    os.makedirs(run)
    for iteration in (10, 20):
        shutil.copy(w.ckpt, os.path.join(run, f"waveglow_{iteration}"))
    w.paths["run"] = run
    return w


@pytest.fixture(scope="module")
def onnx_file(ws) -> str:
    """The tiny WaveGlow exported once, for the ``inference --onnx`` cases."""
    pytest.importorskip("onnxruntime")
    from waveglow.cli import export

    path = os.path.join(ws.root, "tiny.onnx")
    assert export.main(["-w", ws.ckpt, "-o", path]) == 0
    return path


# ------------------------------------------------------------------------------ the table


@dataclass
class Case:
    """One bad run: ``setup(ws, out)`` -> argv, what the message must name, the outputs good items make."""

    id: str
    command: str  # module of waveglow.cli
    kind: int  # the class, 1 .. 5
    setup: Callable[..., tuple[list[str], list[str], list[str]]]
    kept: tuple[str, ...] = ()  # names planted in out/ before the run, which must stay byte-identical
    needs_onnx: bool = False
    succeeds: bool = False  # the bad items are skipped and the command's rules call the run a success


def _inference(*argv):
    return lambda w, out: ["-w", w.ckpt, "-o", out, "--seed", "0", *argv]


def _c(id, command, kind, setup, kept=(), needs_onnx=False, succeeds=False):
    return Case(id, command, kind, setup, tuple(kept), needs_onnx, succeeds)


CASES = [
    # --------------------------------------------------------------- inference (mel files)
    _c("inference-mel-bad-files", "inference", 5, lambda w, out: (
        _inference("-f", w.mel, w.mel64, w.nan_mel, w.corrupt_mel, w.folder_wav)(w, out),
        [w.mel64, w.nan_mel, w.corrupt_mel], [os.path.join(out, "good_mel_synthesis.wav")])),
    _c("inference-mel-keeps-earlier", "inference", 1, lambda w, out: (
        _inference("-f", w.mel, w.nan_mel)(w, out), [w.nan_mel], [os.path.join(out, "good_mel_synthesis.wav")]),
       kept=["nan_mel_synthesis.wav"]),
    _c("inference-mel-bom-list", "inference", 4, lambda w, out: (
        _inference("-f", w.mel_bom_list, w.nan_mel)(w, out), [w.nan_mel], [os.path.join(out, "good_mel_synthesis.wav")])),
    *[_c(f"inference-flag{flag}={value}", "inference", 3, lambda w, out, flag=flag, value=value: (
        _inference("-f", w.mel, flag, value)(w, out), [flag], []), kept=["good_mel_synthesis.wav"])
      for flag, value in [("--sigma", "nan"), ("--sigma", "-1"), ("--denoiser_strength", "nan"),
                          ("--denoiser_strength", "-0.1"), ("--batch_size", "0"), ("--chunk_frames", "-1"),
                          ("--overlap_frames", "-2"), ("--sampling_rate", "0"), ("--sampling_rate", "-8000")]],
    _c("inference-checkpoint-folder", "inference", 5, lambda w, out: (
        ["-f", w.mel, "-w", w.root, "-o", out], [w.root], [])),
    _c("inference-checkpoint-corrupt", "inference", 5, lambda w, out: (
        ["-f", w.mel, "-w", w.corrupt_ckpt, "-o", out], [w.corrupt_ckpt], [])),
    _c("inference-output-is-a-file", "inference", 5, lambda w, out: (
        ["-f", w.mel, "-w", w.ckpt, "-o", w.plain_list], [w.plain_list], [])),
    # --------------------------------------------------------------- inference --wav
    _c("inference-wav-short", "inference", 2, lambda w, out: (
        _inference("--wav", "-f", w.good1, w.short, w.good2)(w, out), [w.short],
        [os.path.join(out, n.replace(".wav", "_synthesis.wav")) for n in GOOD_WAVS]), kept=["short_synthesis.wav"]),
    _c("inference-wav-short-in-list", "inference", 2, lambda w, out: (
        _inference("--wav", "-f", w.short_list)(w, out), [w.short],
        [os.path.join(out, n.replace(".wav", "_synthesis.wav")) for n in GOOD_WAVS])),
    _c("inference-wav-bom-list", "inference", 4, lambda w, out: (
        _inference("--wav", "-f", w.bom_list, w.corrupt)(w, out), [w.corrupt],
        [os.path.join(out, n.replace(".wav", "_synthesis.wav")) for n in GOOD_WAVS])),
    _c("inference-wav-bad-files", "inference", 5, lambda w, out: (
        _inference("--wav", "-f", w.corrupt, w.empty, w.good1)(w, out), [w.corrupt, w.empty],
        [os.path.join(out, GOOD_WAVS[0].replace(".wav", "_synthesis.wav"))])),
    # --------------------------------------------------------------- inference --onnx
    _c("inference-onnx-wav-short", "inference", 2, lambda w, out: (
        ["--onnx", w.onnx, "-o", out, "--seed", "0", "--wav", "-f", w.short, w.good1], [w.short],
        [os.path.join(out, GOOD_WAVS[0].replace(".wav", "_synthesis.wav"))]), needs_onnx=True),
    _c("inference-flowavenet-wav-short", "inference", 2, lambda w, out: (
        ["-w", w.fwn_ckpt, "-o", out, "--seed", "0", "--wav", "-f", w.short, w.good1], [w.short],
        [os.path.join(out, GOOD_WAVS[0].replace(".wav", "_synthesis.wav"))])),
    _c("inference-waveflow-wav-short", "inference", 2, lambda w, out: (
        ["-w", w.wf_ckpt, "-o", out, "--seed", "0", "--wav", "-f", w.short, w.good1], [w.short],
        [os.path.join(out, GOOD_WAVS[0].replace(".wav", "_synthesis.wav"))])),
    _c("compute-mels-flowavenet-short", "compute_mels", 2, lambda w, out: (
        ["-f", w.short_list, "-o", out, "-c", w.fwn, "--format", "npy"], [w.short],
        [os.path.join(out, n + ".npy") for n in GOOD_WAVS]), kept=["short.wav.npy"]),
    _c("inference-onnx-bad-mels", "inference", 5, lambda w, out: (
        ["--onnx", w.onnx, "-o", out, "-f", w.mel64, w.mel], [w.mel64], [os.path.join(out, "good_mel_synthesis.wav")]),
       needs_onnx=True),
    _c("inference-onnx-corrupt", "inference", 5, lambda w, out: (
        ["--onnx", w.corrupt_ckpt, "-o", out, "-f", w.mel], [w.corrupt_ckpt], [])),
    # --------------------------------------------------------------- export
    _c("export-diverged-onto-earlier", "export", 1, lambda w, out: (
        ["-w", w.nan_ckpt, "-o", os.path.join(out, "model.onnx"), "--denoiser"], [w.nan_ckpt, "WN.0.end.weight"], []),
       kept=["model.onnx", "model.denoiser.onnx"]),
    _c("export-opset-99", "export", 3, lambda w, out: (
        ["-w", w.ckpt, "-o", os.path.join(out, "model.onnx"), "--opset", "99"], ["--opset"], []), kept=["model.onnx"]),
    *[_c(f"export-opset-{value}", "export", 3, lambda w, out, value=value: (
        ["-w", w.ckpt, "-o", os.path.join(out, "model.onnx"), "--opset", value], ["--opset"], []), kept=["model.onnx"])
      for value in ("17", "abc")],
    _c("export-no-parent", "export", 5, lambda w, out: (
        ["-w", w.ckpt, "-o", os.path.join(out, "missing", "model.onnx")], [os.path.join(out, "missing")], [])),
    _c("export-output-is-a-folder", "export", 5, lambda w, out: (["-w", w.ckpt, "-o", out], [out], [])),
    _c("export-corrupt-checkpoint", "export", 5, lambda w, out: (
        ["-w", w.corrupt_ckpt, "-o", os.path.join(out, "model.onnx")], [w.corrupt_ckpt], []), kept=["model.onnx"]),
    # --------------------------------------------------------------- compute-mels
    _c("compute-mels-short", "compute_mels", 2, lambda w, out: (
        ["-f", w.short_list, "-o", out], [w.short], [os.path.join(out, n + ".pt") for n in GOOD_WAVS]),
       kept=["short.wav.pt"]),
    _c("compute-mels-bom-list", "compute_mels", 4, lambda w, out: (
        ["-f", w.bom_short_list, "-o", out], [w.short], [os.path.join(out, GOOD_WAVS[0] + ".pt")])),
    _c("compute-mels-fmin-above-fmax", "compute_mels", 3, lambda w, out: (
        ["-f", w.plain_list, "-o", out, "-c", w.fwn_bad_fmin], ["mel_fmin"], [])),
    _c("compute-mels-fmax-above-nyquist", "compute_mels", 3, lambda w, out: (
        ["-f", w.plain_list, "-o", out, "-c", w.fwn_bad_fmax], ["mel_fmax"], [])),
    _c("compute-mels-bad-files", "compute_mels", 5, lambda w, out: (
        ["-f", w.bad_list, "-o", out], [w.corrupt, w.empty, w.folder_wav],
        [os.path.join(out, GOOD_WAVS[0] + ".pt")])),
    _c("compute-mels-output-is-a-file", "compute_mels", 5, lambda w, out: (
        ["-f", w.plain_list, "-o", w.mel], [w.mel], [])),
    _c("compute-mels-list-is-folder", "compute_mels", 5, lambda w, out: (["-f", w.root, "-o", out], [w.root], [])),
    # --------------------------------------------------------------- prepare-dataset
    *[_c(f"prepare-dataset-flag{flag}={value}{''.join(extra)}", "prepare_dataset", 3, lambda w, out, flag=flag, value=value, extra=extra: (
        [w.plain_list, "-o", out, "--validation_size", "0", "--test_size", "0", flag, value, *extra],
        [flag], []), kept=["train_files.txt"])
      for flag, value, extra in [("--sampling_rate", "0", []), ("--sampling_rate", "0", ["--resample"]),
                                 ("--min_duration", "nan", []), ("--min_duration", "-1", []),
                                 ("--max_duration", "-2", []), ("--min_rms", "nan", []), ("--max_clipped", "1.5", []),
                                 ("--validation_size", "-1", [])]],
    _c("prepare-dataset-bom-list", "prepare_dataset", 4, lambda w, out: (
        [w.bom_list, "-o", out, "--validation_size", "0", "--test_size", "0", "--min_duration", "0.1"], [],
        [os.path.join(out, "train_files.txt")]), succeeds=True),
    _c("prepare-dataset-output-is-a-file", "prepare_dataset", 5, lambda w, out: (
        [w.plain_list, "-o", w.mel, "--validation_size", "0", "--test_size", "0", "--min_duration", "0.1"], [w.mel], [])),
    _c("prepare-dataset-bad-files", "prepare_dataset", 5, lambda w, out: (
        [w.bad_list, "-o", out, "--validation_size", "0", "--test_size", "0", "--min_duration", "0.1"],
        [w.corrupt, w.empty], [os.path.join(out, "train_files.txt")]), succeeds=True),
    # --------------------------------------------------------------- evaluate
    _c("evaluate-short-and-bom", "evaluate", 2, lambda w, out: (
        ["-f", w.bom_short_list, "-o", out, "--metrics", "log_mel_l1", "--report-clips", "0"], [w.short],
        [os.path.join(out, "summary.json")]), succeeds=True),
    _c("evaluate-sigma-nan", "evaluate", 3, lambda w, out: (
        ["-f", w.plain_list, "-o", out, "-w", w.ckpt, "--sigma", "nan", "--metrics", "log_mel_l1"], ["--sigma"], []),
       kept=["summary.json"]),
    _c("evaluate-list-is-a-folder", "evaluate", 5, lambda w, out: (
        ["-f", w.root, "-o", out, "--metrics", "log_mel_l1"], [w.root], []), kept=["summary.json"]),
    _c("evaluate-nothing-readable", "evaluate", 1, lambda w, out: (
        ["-f", w.bad_list_only, "-o", out, "--metrics", "log_mel_l1"], [w.corrupt], []), kept=["summary.json"]),
    # --------------------------------------------------------------- benchmark
    *[_c(f"benchmark-flag{flag}={value}", "benchmark", 3, lambda w, out, flag=flag, value=value: (
        ["--config", os.path.join(CONFIGS, "tiny.json"), "--output_json", os.path.join(out, "b.json"), "--modes",
         "plain", "--lengths", "0.05", "--repeats", "1", "--warmup", "0", "--no_accuracy", flag, value], [flag], []),
        kept=["b.json"])
      for flag, value in [("--repeats", "0"), ("--warmup", "-1"), ("--lengths", "0"), ("--lengths", "nan"),
                          ("--batch_sizes", "0"), ("--threads", "-1"), ("--sigma", "nan"), ("--segment_length", "0"),
                          ("--train_batch_size", "0")]],
    _c("benchmark-output-parent-is-a-file", "benchmark", 5, lambda w, out: (
        ["--config", os.path.join(CONFIGS, "tiny.json"), "--output_json", os.path.join(w.plain_list, "b.json"),
         "--modes", "plain", "--lengths", "0.05", "--repeats", "1", "--warmup", "0", "--no_accuracy"],
        [w.plain_list], [])),
    # --------------------------------------------------------------- convert-checkpoint
    _c("convert-corrupt-onto-earlier", "convert_checkpoint", 1, lambda w, out: (
        [w.corrupt_ckpt, os.path.join(out, "converted.pt")], [w.corrupt_ckpt], []), kept=["converted.pt"]),
    _c("convert-empty-input", "convert_checkpoint", 5, lambda w, out: ([w.empty, os.path.join(out, "c.pt")], [w.empty], [])),
    _c("convert-output-is-a-folder", "convert_checkpoint", 5, lambda w, out: ([w.ckpt, out], [out], [])),
    _c("convert-no-parent", "convert_checkpoint", 5, lambda w, out: (
        [w.ckpt, os.path.join(out, "missing", "c.pt")], [os.path.join(out, "missing")], [])),
    # --------------------------------------------------------------- train (WaveGlow and FloWaveNet configs)
    *[_c(f"train-{name}-{setting}", "train", 3, lambda w, out, name=name, setting=setting: (
        ["-c", getattr(w, name), "--set", setting], [setting.split("=")[0].split(".")[-1]], []))
      for name, setting in [("wg", "data_config.mel_fmin=9000"), ("wg", "data_config.mel_fmax=20000"),
                            ("wg", "data_config.win_length=0"), ("wg", "data_config.segment_length=256"),
                            ("wg", "data_config.mel_fmax=nan"), ("wg", "data_config.win_length=128"),
                            ("wg", "data_config.win_length=2048"), ("wg", "data_config.sampling_rate=0"),
                            ("fwn", "data_config.mel_fmax=nan"), ("fwn", "data_config.mel_fmin=8000"),
                            ("fwn", "data_config.sampling_rate=0"), ("fwn", "train_config.learning_rate=nan")]],
    *[_c(f"train-waveflow-{setting}", "train", 3, lambda w, out, setting=setting, named=named: (
        ["-c", w.wf, *[a for item in setting.split(" ") for a in ("--set", item)]], named, []))
      for setting, named in [("data_config.segment_length=4100", ["segment_length", "n_height"]),
                             ("waveflow_config.coupling_type=glow", ["coupling_type"]),
                             ("waveflow_config.use_weightnorm_embed=maybe", ["use_weightnorm_embed"]),
                             ("waveflow_config.n_height=0", ["n_height"]),
                             ("data_config.hop_length=128", ["hop_length"]),
                             ("train_config.lr_decay_step=5 train_config.lr_step_size=5", ["lr_decay_step", "lr_step_size"])]],
    _c("train-waveflow-short-clip", "train", 2, lambda w, out: (
        ["-c", w.wf, "--set", f"data_config.training_files={w.short_list}"], [w.short], [])),
    # --------------------------------------------------------------- average-checkpoints
    _c("average-nan-onto-earlier", "average_checkpoints", 1, lambda w, out: (
        [w.ckpt, w.nan_ckpt, "-o", os.path.join(out, "averaged.pt")], [w.nan_ckpt, "WN.0.end.weight"], []),
       kept=["averaged.pt"]),
    _c("average-families-mixed", "average_checkpoints", 5, lambda w, out: (
        [w.ckpt, w.fwn_ckpt, "-o", os.path.join(out, "averaged.pt")], ["waveglow and a flowavenet"], [])),
    _c("average-too-few", "average_checkpoints", 3, lambda w, out: (
        [w.run, "-n", "3", "-o", os.path.join(out, "averaged.pt")], [w.run, "only 2"], [])),
    _c("average-n-zero", "average_checkpoints", 3, lambda w, out: (
        [w.run, "-n", "0", "-o", os.path.join(out, "averaged.pt")], ["-n/--last"], [])),
    _c("average-corrupt", "average_checkpoints", 5, lambda w, out: (
        [w.ckpt, w.corrupt_ckpt, "-o", os.path.join(out, "averaged.pt")], [w.corrupt_ckpt], []), kept=["averaged.pt"]),
    _c("average-no-parent", "average_checkpoints", 5, lambda w, out: (
        [w.run, "-n", "2", "-o", os.path.join(out, "missing", "a.pt")], [os.path.join(out, "missing")], [])),
    _c("train-flowavenet-short-clip", "train", 2, lambda w, out: (["-c", w.fwn_short], [w.short], [])),
    _c("train-waveglow-short-clip", "train", 2, lambda w, out: (["-c", w.wg_short], [w.short], [])),
    _c("train-bom-list", "train", 4, lambda w, out: (
        ["-c", w.wg_bom, "--set", f"train_config.output_directory={out}"], [], [os.path.join(out, "waveglow_1")]), succeeds=True),
    _c("train-list-folder", "train", 5, lambda w, out: (
        ["-c", w.wg, "--set", f"data_config.training_files={w.bad_list}"], [w.folder_wav], [])),
    _c("train-list-corrupt-file", "train", 5, lambda w, out: (
        ["-c", w.fwn, "--set", f"data_config.training_files={w.corrupt_list}"], [w.corrupt], [])),
    # --------------------------------------------------------------- distributed
    *[_c(f"distributed-flag{flag}={value}", "distributed", 3, lambda w, out, flag=flag, value=value: (
        ["-c", w.wg, "-s", out, flag, value], [flag], []))
      for flag, value in [("--nproc", "-1"), ("--nproc", "0"), ("--master_port", "70000")]],
    _c("distributed-bad-config", "distributed", 3, lambda w, out: (
        ["-c", w.wg, "-s", out, "-a", "--set data_config.mel_fmin=9000"], ["mel_fmin"], [])),
    _c("distributed-unbalanced-quote", "distributed", 5, lambda w, out: (
        ["-c", w.wg, "-s", out, "-a", "--set 'train_config.seed=1"], ["-a"], [])),
]


@pytest.fixture(scope="module")
def more_inputs(ws) -> Workspace:
    ws.file("bad_list.txt", f"{ws.corrupt}\n{ws.empty}\n{ws.folder_wav}\n{ws.good1}\n")
    ws.file("bad_list_only.txt", f"{ws.corrupt}\n")
    ws.file("corrupt_list.txt", f"{ws.good1}\n{ws.corrupt}\n")
    ws.file("bom_short_list.txt", "\ufeff" + f"{ws.good1}\r\n{ws.short}\r\n")
    ws.file("fwn_bad_fmax.json", json.dumps({**json.load(open(ws.fwn)), "data_config": {
        **json.load(open(ws.fwn))["data_config"], "mel_fmax": 12000.0}}))
    ws.file("fwn_bad_fmin.json", json.dumps({**json.load(open(ws.fwn)), "data_config": {
        **json.load(open(ws.fwn))["data_config"], "mel_fmin": 7600.0, "mel_fmax": 125.0}}))
    return ws


def run_command(command: str, argv: list[str], capfd) -> tuple[int, str]:
    """``waveglow.cli.<command>.main(argv)`` -> (exit status, stdout and stderr); an escaped exception fails the case."""
    main = importlib.import_module(f"waveglow.cli.{command}").main
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    except BaseException as e:  # noqa: B036 -- reported as the case's failure, with the exception
        out, err = capfd.readouterr()
        pytest.fail(f"{command} raised {type(e).__name__}: {e}\n{out}{err}")
    out, err = capfd.readouterr()
    return rc, out + err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, more_inputs, tmp_path, capfd, request):
    w = more_inputs
    if case.needs_onnx:
        w.paths["onnx"] = request.getfixturevalue("onnx_file")
    out = str(tmp_path / "out")
    os.makedirs(out)
    for name in case.kept:
        with open(os.path.join(out, name), "wb") as f:
            f.write(EARLIER)
    argv, named, made = case.setup(w, out)
    rc, text = run_command(case.command, argv, capfd)
    if case.succeeds:
        assert rc == 0, f"exit status {rc}:\n{text}"
    else:
        assert rc not in (0, None), f"exit status {rc}:\n{text}"
    assert "Traceback" not in text, text
    assert "\ufeff" not in text, text  # a list's byte-order mark is never read as part of an entry
    for item in named:
        assert item in text, f"{item!r} not named in:\n{text}"
    for path in made:
        assert os.path.isfile(path), f"good item's output {path} missing:\n{text}"
    for name in case.kept:
        with open(os.path.join(out, name), "rb") as f:
            assert f.read() == EARLIER, f"earlier {name} changed:\n{text}"
    assert not [n for n in os.listdir(out) if ".tmp" in n], os.listdir(out)  # no temporary file left behind


def test_atomic_path_keeps_the_earlier_file_on_failure_and_its_mode_on_success(tmp_path):
    from waveglow.atomic import atomic_path

    path = tmp_path / "x.wav"
    path.write_bytes(EARLIER)
    os.chmod(path, 0o640)
    with pytest.raises(RuntimeError, match="planted"):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half a file")
            raise RuntimeError("planted")
    assert path.read_bytes() == EARLIER and os.listdir(tmp_path) == ["x.wav"]
    with atomic_path(path) as tmp:
        assert tmp.endswith(".wav") and os.path.dirname(tmp) == str(tmp_path)  # same folder, same extension
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["x.wav"]
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_config_file_with_a_byte_order_mark_loads(tmp_path):
    with open(os.path.join(CONFIGS, "tiny.json"), encoding="utf-8") as f:
        text = f.read()
    path = tmp_path / "windows.json"
    path.write_text("\ufeff" + text.replace("\n", "\r\n"), encoding="utf-8")
    assert load_config(path).to_dict() == load_config(os.path.join(CONFIGS, "tiny.json")).to_dict()


@pytest.mark.parametrize("fmt, failing", [("torchscript", "verify_export"), ("torchscript", "verify_denoiser")])
def test_export_failing_its_check_keeps_the_earlier_files(fmt, failing, ws, tmp_path, monkeypatch, capfd):
    """A graph is written, then a check fails (the vocoder's, or the denoiser's after the vocoder's passed):
    the earlier graph and denoiser graph both stay as they were."""
    from waveglow.cli import export
    from waveglow.export import ExportError

    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    output = tmp_path / f"model.{'ts' if fmt == 'torchscript' else 'onnx'}"
    denoiser = tmp_path / f"model.denoiser.{'ts' if fmt == 'torchscript' else 'onnx'}"
    for path in (output, denoiser):
        path.write_bytes(EARLIER)
    written = []

    def failing_check(path, *args, **kwargs):
        written.append((path, os.path.getsize(path)))
        raise ExportError(f"{path}: the exported graph does not reproduce the model (planted)")

    class Passed:  # the vocoder's check, passed (its real work is tested in test_export.py)
        def summary(self):
            return "checked"

    monkeypatch.setattr(export, "verify_export", lambda path, *args, **kwargs: Passed())
    monkeypatch.setattr(export, failing, failing_check)
    failed = output if failing == "verify_export" else denoiser
    rc, text = run_command("export", ["-w", ws.ckpt, "-o", str(output), "--format", fmt, "--denoiser"], capfd)
    assert rc == 1 and "Traceback" not in text
    assert f"{failed}: the exported graph does not reproduce the model (planted)" in text  # the user's path, not the temporary one
    assert written and written[0][0] != str(failed) and written[0][1] > 0  # a whole file was written under another name
    assert output.read_bytes() == EARLIER and denoiser.read_bytes() == EARLIER
    assert sorted(os.listdir(tmp_path)) == sorted([output.name, denoiser.name])

