"""Streaming vocoding (waveglow.streaming): exact against whole-utterance inference for every family,
however the frames are pushed, in bounded memory and work, with one-line errors for bad frames."""

from __future__ import annotations

import math
import os
import wave

import numpy as np
import pytest
import torch
from test_families import tiny_config, tiny_model

from waveglow.errors import MelError, StreamClosedError
from waveglow.models import ReceptiveField
from waveglow.registry import FAMILIES, family_named
from waveglow.streaming import StreamingVocoder, stream_latent, windows_per_frame_bound

SIGMA = 0.8
FRAMES = 30


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small windows run faster on one thread (and far faster than two on a loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request):
    family = family_named(request.param)
    return family, tiny_model(family, tiny_config(request.param))


def mel_of(model, frames: int, seed: int = 5, dtype=torch.float32) -> torch.Tensor:
    return (torch.randn(model.n_mel_channels, frames, generator=torch.Generator().manual_seed(seed)) - 5).to(dtype)


def stream(model, mel: torch.Tensor, sizes: list[int], **kwargs) -> torch.Tensor:
    vocoder = StreamingVocoder(model, sigma=SIGMA, **kwargs)
    bounds = np.cumsum([0] + sizes)
    assert bounds[-1] == mel.size(1)
    pieces = [vocoder.push(mel[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    return torch.cat(pieces + [vocoder.flush()])


def random_sizes(total: int, seed: int) -> list[int]:
    rng, sizes = np.random.default_rng(seed), []
    while sum(sizes) < total:
        sizes.append(int(min(rng.choice([0, 1, 2, 5, 9]), total - sum(sizes))))
    return sizes


def test_stream_equals_whole_utterance_for_every_chunking(family_model):
    """The default (exact) lookahead gives model.infer on stream_latent, to 1e-4, for many chunkings."""
    family, model = family_model
    mel = mel_of(model, FRAMES)
    whole = model.infer(mel[None], SIGMA, z=stream_latent(model, FRAMES, sigma=SIGMA, seed=7))[0]
    assert whole.abs().max() > 0.1
    chunkings = [[FRAMES], [1] * FRAMES, [0, 4, 0, 0, 26], random_sizes(FRAMES, 1), random_sizes(FRAMES, 2)]
    for sizes in chunkings:
        audio = stream(model, mel, sizes, seed=7)
        assert audio.shape == whole.shape
        assert (audio - whole).abs().max() <= 1e-4, (family.name, sizes)
    # a lookahead beyond the field is exact too (it only waits longer)
    longer = model.receptive_field().future + 3
    assert (stream(model, mel, [2] * 15, seed=7, lookahead_frames=longer) - whole).abs().max() <= 1e-4
    # the plain path (no fast object) too, and a different seed gives different audio
    assert (stream(model, mel, [3] * 10, seed=7, fast=False) - whole).abs().max() <= 1e-4
    assert (stream(model, mel, [FRAMES], seed=8) - whole).abs().max() > 1e-2


def test_stream_latent_is_per_frame_noise(family_model):
    """Frame f's noise depends on (seed, f) only: a longer utterance starts with a shorter one's latent."""
    _, model = family_model
    short, long = stream_latent(model, 5, seed=3), stream_latent(model, 9, seed=3)
    steps = model.latent_steps_per_frame
    assert long.shape[-1] == 9 * steps and long.shape[:-1] == model.sample_latent(1, 1, 1.0, None, "cpu").shape[:-1]
    assert torch.equal(long[..., : 5 * steps], short)
    assert 0.6 < float(long.std() / SIGMA) < 1.4  # sigma * N(0, 1) at the family's default sigma 0.8 or 1


def test_receptive_field_bounds_dependence(family_model):
    """Float64: a window with the reported context reproduces frame f exactly; mel and latent outside it
    change nothing; a mel frame inside it changes frame f."""
    family, _ = family_model
    model = tiny_model(family, tiny_config(family.name), torch.float64)
    field, hop, steps = model.receptive_field(), model.hop_length, model.latent_steps_per_frame
    frames, f = field.past + field.future + 9, field.past + 4
    mel, z = mel_of(model, frames, dtype=torch.float64), stream_latent(model, frames, seed=1).double()

    def frame_audio(mel, z, s=0, e=frames):
        return model.infer(mel[None, :, s:e], SIGMA, z=z[..., s * steps : e * steps])[0, (f - s) * hop : (f - s + 1) * hop]

    reference = frame_audio(mel, z)
    torch.testing.assert_close(frame_audio(mel, z, f - field.past, f + 1 + field.future), reference, atol=1e-12, rtol=0)
    outside = [j for j in range(frames) if not f - field.past <= j <= f + field.future]
    assert outside
    far_mel, far_z = mel.clone(), z.clone()
    far_mel[:, outside] += 3.0
    for j in outside:
        far_z[..., j * steps : (j + 1) * steps] += 1.0
    assert torch.equal(frame_audio(far_mel, far_z), reference)
    for j in (f - 1, f + 1):
        near = mel.clone()
        near[:, j] += 3.0
        assert (frame_audio(near, z) - reference).abs().max() > 1e-6, j
    if family.name == "waveglow":  # tight: one frame less context on either side is not exact
        assert (frame_audio(mel, z, f - field.past + 1, f + 1 + field.future) - reference).abs().max() > 1e-9
        assert (frame_audio(mel, z, f - field.past, f + field.future) - reference).abs().max() > 1e-9


def test_receptive_field_of_the_default_models():
    """WaveGlow's default model reaches 96 frames ahead (12 flows x 255 steps of 8 samples), FloWaveNet's 50."""
    from waveglow.models.flowavenet.model import FloWaveNet
    from waveglow.models.waveglow.model import WaveGlow

    wn = {"n_layers": 8, "n_channels": 8, "kernel_size": 3}  # narrow: the field depends on the structure only
    field = WaveGlow(80, 12, 8, 4, 2, wn).receptive_field()
    assert (field.past, field.future, field.alignment) == (99, 96, 1)
    field = FloWaveNet(n_channels=4).receptive_field()
    assert (field.past, field.future, field.alignment) == (50, 50, 1)
    assert FloWaveNet(n_block=9, n_flow=1, n_layer=1, n_channels=4).receptive_field().alignment == 2
    from waveglow.models.waveflow.model import WaveFlow  # 8 flows x 255 columns of 16 samples, and the upsampler

    assert WaveFlow(res_channels=2, n_layer=8, n_flow=8).receptive_field() == ReceptiveField(129, 129, 1)


def test_smaller_lookahead_is_allowed_and_approximate(family_model):
    """Lookahead 0 is not exact on a perturbed model; flush still ends exactly; latency_frames reports it."""
    _, model = family_model
    mel = mel_of(model, FRAMES)
    whole = model.infer(mel[None], SIGMA, z=stream_latent(model, FRAMES, sigma=SIGMA))[0]
    vocoder = StreamingVocoder(model, sigma=SIGMA, lookahead_frames=0)
    assert vocoder.latency_frames == 0
    first = vocoder.push(mel[:, :1])
    assert first.numel() == model.hop_length  # audio out as soon as a frame arrives
    audio = torch.cat([first] + [vocoder.push(mel[:, i : i + 1]) for i in range(1, FRAMES)] + [vocoder.flush()])
    error = (audio - whole).abs()
    assert error.max() > 1e-4
    tail = model.receptive_field().past * model.hop_length
    assert error[-model.hop_length :].max() <= 1e-4 or tail == 0  # the last frame comes from the true end
    assert StreamingVocoder(model).latency_frames == model.receptive_field().future


def test_bad_frames_raise_one_line_errors_and_the_stream_goes_on(family_model):
    family, model = family_model
    mel = mel_of(model, FRAMES)
    whole = model.infer(mel[None], SIGMA, z=stream_latent(model, FRAMES, sigma=SIGMA))[0]
    vocoder = StreamingVocoder(model, sigma=SIGMA)
    pieces = [vocoder.push(mel[:, :10])]
    nan = mel[:, 10:12].clone()
    nan[3, 1] = float("nan")
    bad_inputs = {
        "channels": mel[:-1, 10:12],
        "NaN": nan,
        "complex": mel[:, 10:12].to(torch.complex64),
        "bool": mel[:, 10:12] > 0,
        "strings": np.array([["a"] * 2] * model.n_mel_channels),
        "shape": mel[None, :, 10:12],
    }
    for problem, bad in bad_inputs.items():
        with pytest.raises(MelError) as error:
            vocoder.push(bad)
        message = str(error.value)
        assert "\n" not in message and message, problem
        assert {"channels": str(model.n_mel_channels), "NaN": "NaN", "complex": "complex", "bool": "bool",
                "strings": "mel", "shape": "shape"}[problem] in message
    pieces += [vocoder.push(mel[:, 10:].double().numpy()), vocoder.flush()]
    assert (torch.cat(pieces) - whole).abs().max() <= 1e-4
    for call in (lambda: vocoder.push(mel[:, :1]), vocoder.flush):
        with pytest.raises(StreamClosedError, match="after flush"):
            call()


def test_ten_minutes_in_bounded_memory_and_work():
    """A 10-minute mel (51,680 frames) pushed 32 frames at a time: buffers, windows and recomputation stay bounded.

    The model is WaveGlow with 8 mel channels and 4-channel WNs: the stream's bookkeeping is what is measured.
    """
    from waveglow.models.waveglow.model import WaveGlow

    torch.manual_seed(0)
    model = WaveGlow(8, 2, 8, 2, 2, {"n_layers": 1, "n_channels": 4, "kernel_size": 3}).eval()
    model.perturb(torch.Generator().manual_seed(0))
    field, k = model.receptive_field(), 32
    frames = math.ceil(600 * 22050 / model.hop_length)
    vocoder = StreamingVocoder(model, sigma=SIGMA)
    mel = mel_of(model, k)
    covered = np.zeros(frames, dtype=np.int32)  # windows each frame was vocoded in
    samples, largest = 0, 0
    for start in range(0, frames, k):
        samples += vocoder.push(mel[:, : min(k, frames - start)]).numel()
        for s, e in vocoder.windows:
            largest = max(largest, e - s)
            covered[s:e] += 1
        vocoder.windows.clear()
        assert vocoder.buffered_frames <= field.past + vocoder.lookahead + k + field.alignment
        assert vocoder._z.shape[-1] == vocoder.buffered_frames * model.latent_steps_per_frame
    samples += vocoder.flush().numel()
    assert samples == frames * model.hop_length
    assert largest <= field.past + k + vocoder.lookahead
    assert covered[: frames - k].max() <= windows_per_frame_bound(field, vocoder.lookahead, k)


def test_stream_follows_device_and_dtype():
    """dtype= runs the model in that precision; the audio stays close to float32's."""
    family = family_named("waveglow")
    model = tiny_model(family, tiny_config("waveglow"))
    mel = mel_of(model, 12)
    reference = stream(model, mel, [12])
    double = stream(tiny_model(family, tiny_config("waveglow")), mel, [5, 7], dtype=torch.float64)
    assert double.dtype == torch.float32
    assert (double - reference).abs().max() <= 1e-4


def read_wav(path: str) -> tuple[int, np.ndarray]:
    with wave.open(os.fspath(path)) as f:
        return f.getframerate(), np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")


# ------------------------------------------------------------------------------ waveglow-inference --stream


@pytest.fixture(scope="module")
def checkpoint_and_mel(tmp_path_factory):
    from waveglow import save_checkpoint

    folder = tmp_path_factory.mktemp("stream_cli")
    config = tiny_config("waveglow")
    model = tiny_model(family_named("waveglow"), config)
    path = save_checkpoint(folder / "tiny.pt", model, config)
    mel_path = folder / "utt.pt"
    torch.save(mel_of(model, 21), mel_path)
    return str(path), str(mel_path), model


def test_cli_stream_writes_the_exact_audio_incrementally(checkpoint_and_mel, tmp_path, capsys, monkeypatch):
    from waveglow.cli import inference
    from waveglow.wav_stream import WavStreamWriter

    path, mel_path, model = checkpoint_and_mel
    sizes = []  # the WAV as a reader sees it after every chunk
    write = WavStreamWriter.write

    def watched(self, samples):
        write(self, samples)
        sizes.append(read_wav(self.path)[1].size)

    monkeypatch.setattr(WavStreamWriter, "write", watched)
    status = inference.main(["-f", mel_path, "-w", path, "-o", str(tmp_path), "--stream", "--chunk-frames", "4",
                             "--seed", "11", "-s", "0.8"])
    assert status == 0
    err = capsys.readouterr().err
    assert "first audio after" in err and "real-time factor" in err and "algorithmic latency 1 frames" in err
    rate, samples = read_wav(tmp_path / "utt_synthesis.wav")
    assert rate == 22050 and len(sizes) >= 5 and sizes == sorted(sizes) and sizes[-1] == 21 * 256
    mel = torch.load(mel_path)
    whole = model.infer(mel[None], 0.8, z=stream_latent(model, 21, sigma=0.8, seed=11))[0]
    expected = np.clip(whole.numpy() * 32768.0, -32768, 32767).astype(np.int16)
    assert np.abs(samples.astype(np.int32) - expected).max() <= 1


def test_cli_stream_to_stdout_is_raw_pcm(checkpoint_and_mel, capfdbinary):
    from waveglow.cli import inference

    path, mel_path, _ = checkpoint_and_mel
    status = inference.main(["-f", mel_path, "-w", path, "-o", "-", "--stream", "--chunk-frames", "1",
                             "--lookahead-frames", "0", "--seed", "11", "-s", "0.8"])
    out, err = capfdbinary.readouterr()
    assert status == 0
    assert len(out) == 2 * 21 * 256 and not out.startswith(b"RIFF")
    assert b"first audio after" in err and b"algorithmic latency 0 frames" in err


def test_cli_stream_bad_settings_are_one_line_errors(checkpoint_and_mel, tmp_path, capsys):
    from waveglow.cli import inference

    path, mel_path, _ = checkpoint_and_mel
    for extra, message in ((["--push_frames", "0"], "--push_frames"), (["--chunk-frames", "0"], "--push_frames"),
                           (["--lookahead_frames", "-1"], "--lookahead_frames"), (["--lookahead-frames", "-1"], "--lookahead"),
                           (["-d", "0.1"], "denoiser")):
        assert inference.main(["-f", mel_path, "-w", path, "-o", str(tmp_path), "--stream", *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert inference.main(["-f", mel_path, mel_path, "-w", path, "-o", "-", "--stream"]) == 2
    assert "exactly one input" in capsys.readouterr().err


def test_benchmark_stream_rows(tmp_path):
    """waveglow-benchmark --stream: a row per family and push size, the error table and the plot."""
    import json

    from conftest import CONFIGS, TEST_DATA

    from waveglow.cli import benchmark

    out = tmp_path / "stream.json"
    status = benchmark.main([
        "--stream", "--configs", os.path.join(CONFIGS, "tiny.json"), os.path.join(CONFIGS, "flowavenet_small.json"),
        "--chunks", "1", "4", "--pushes", "1", "--error_frames", "2", "--lookaheads", "0", "3",
        "--clip", os.path.join(TEST_DATA, "wavs", "allison-vm-tooshort.wav"),
        "--output_json", str(out), "--plot", str(tmp_path / "stream.png"),
    ])
    assert status == 0
    result = json.loads(out.read_text())
    assert [r["family"] for r in result["families"]] == ["waveglow", "flowavenet"]
    for r in result["families"]:
        assert [t["chunk_frames"] for t in r["timing"]] == [1, 4]
        assert all(t["rtf"] > 0 and t["first_audio_s"] is not None for t in r["timing"])
        errors = {e["lookahead"]: e for e in r["errors"]}
        assert errors[0]["max_abs_error"] > 1e-5  # lookahead 0 on perturbed weights is not exact
        assert errors["exact"]["max_abs_error"] <= 1e-4
    assert (tmp_path / "stream.png").stat().st_size > 10_000
    assert "real-time factor" in (tmp_path / "stream.md").read_text()
