"""The bad-input table of tests/test_bad_input.py: one case per command run that must fail cleanly.

Each case's ``setup(ws, out)`` returns (argv, what the message must name, outputs the good items make);
``ws`` is the workspace fixture of test_bad_input.py (tiny checkpoints, configs, clips, bad files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from conftest import CONFIGS

GOOD_WAVS = ("allison-enabled.wav", "allison-activated.wav")  # the two shortest test clips (about 1 s)

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
