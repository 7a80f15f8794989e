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

import numpy as np
import pytest
import soundfile
import torch
from bad_input_cases import CASES, GOOD_WAVS
from conftest import CONFIGS, TEST_DATA, randomize_end

from waveglow import WaveGlow, load_config, save_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

WAVS = os.path.join(TEST_DATA, "wavs")
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

