"""synthesize(): exactness, batching, chunked long audio, bounded memory, WAV output."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from waveglow import synthesize
from waveglow.synthesis import (
    MelError,
    check_mel,
    chunk_windows,
    crossfade_weights,
    load_mel,
    to_int16,
    write_wav,
)

# Chunked vs whole at sigma 0 on configs/tiny.json (receptive field 12 group steps, less than a
# frame): exact up to float32 rounding. Documented in the README.
TINY_CHUNK_TOLERANCE = 1e-5


def _mel(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(80, frames, generator=torch.Generator().manual_seed(seed)) - 5  # (80, frames)


@pytest.fixture
def model(tiny_model):
    return tiny_model.remove_weight_norm()


@pytest.mark.parametrize("overlap_frames", [0, 32])
def test_one_window_equals_model_infer(model, overlap_frames):
    """Unchunked synthesis is the reference's audio for the same weights and noise, to the bit."""
    mel = _mel(30)
    expected = model.infer(mel[None], sigma=0.7, generator=torch.Generator().manual_seed(3))[0]
    audio = synthesize(model, mel, sigma=0.7, overlap_frames=overlap_frames,
                       generator=torch.Generator().manual_seed(3))
    assert audio.shape == (256 * 30,) and audio.dtype == torch.float32
    assert torch.equal(audio, expected)


def test_batch_members_equal_model_infer_alone(model):
    mels = [_mel(n, seed=n) for n in (13, 40)]
    batch = synthesize(model, mels, sigma=0.0)
    for mel, audio in zip(mels, batch):
        torch.testing.assert_close(audio, model.infer(mel[None], sigma=0.0)[0], atol=1e-5, rtol=0)


def test_output_shapes(model):
    mels = [_mel(5), _mel(9)]
    assert synthesize(model, torch.stack([_mel(7), _mel(7)]), sigma=0).shape == (2, 256 * 7)
    assert synthesize(model, _mel(7)[None].numpy(), sigma=0).shape == (1, 256 * 7)
    assert [a.shape for a in synthesize(model, mels, sigma=0)] == [(256 * 5,), (256 * 9,)]


@pytest.mark.parametrize("chunk_frames", [None, 16])
def test_batch_of_unequal_lengths_equals_one_by_one(model, chunk_frames):
    mels = [_mel(n, seed=n) for n in (13, 57, 31)]
    batch = synthesize(model, mels, sigma=0.8, chunk_frames=chunk_frames, overlap_frames=8,
                       generator=[torch.Generator().manual_seed(100 + i) for i in range(3)])
    for i, mel in enumerate(mels):
        alone = synthesize(model, mel, sigma=0.8, chunk_frames=chunk_frames, overlap_frames=8,
                           generator=torch.Generator().manual_seed(100 + i))
        assert batch[i].shape == (256 * mel.size(1),)
        torch.testing.assert_close(batch[i], alone, atol=1e-5, rtol=0)


def test_one_generator_is_drawn_utterance_by_utterance(model):
    mels = [_mel(11), _mel(6)]
    batch = synthesize(model, mels, sigma=1.0, generator=torch.Generator().manual_seed(5))
    shared = torch.Generator().manual_seed(5)
    for mel, audio in zip(mels, batch):
        torch.testing.assert_close(audio, synthesize(model, mel, sigma=1.0, generator=shared), atol=1e-5, rtol=0)


@pytest.mark.parametrize("sigma", [0.0, 1.0])
def test_chunked_matches_whole(model, sigma):
    mel = _mel(300)
    whole = synthesize(model, mel, sigma=sigma, overlap_frames=8, generator=torch.Generator().manual_seed(1))
    chunked = synthesize(model, mel, sigma=sigma, chunk_frames=64, overlap_frames=8,
                         generator=torch.Generator().manual_seed(1))
    assert whole.abs().max() > 0.01  # the model does something
    assert (chunked - whole).abs().max() <= TINY_CHUNK_TOLERANCE * max(1.0, whole.abs().max().item())


def test_chunking_without_context_differs(model):
    """The comparison above can fail: cutting without overlap leaves seams."""
    mel = _mel(300)
    whole = synthesize(model, mel, sigma=0, overlap_frames=0)
    chunked = synthesize(model, mel, sigma=0, chunk_frames=64, overlap_frames=0)
    assert (chunked - whole).abs().max() > 1e-3


def test_chunk_windows_cover_and_bound():
    for frames in (1, 40, 100, 101, 250, 1000):
        windows = chunk_windows(frames, 32, 8)
        assert windows[0].core_start == 0 and windows[-1].core_stop == frames
        assert all(a.core_stop == b.core_start for a, b in zip(windows, windows[1:]))
        assert all(w.stop - w.start <= 32 + 2 * 8 for w in windows)
        hop = 4
        total = torch.zeros(frames * hop, dtype=torch.float64)
        for w in windows:
            total[w.start * hop : w.stop * hop] += crossfade_weights(w, hop).double()
        torch.testing.assert_close(total, torch.ones_like(total), atol=1e-6, rtol=0)


def test_model_sees_at_most_chunk_plus_context(model, monkeypatch):
    seen = []
    infer = model.infer

    def recording_infer(mel, *args, **kwargs):
        seen.append(mel.size(-1))
        return infer(mel, *args, **kwargs)

    monkeypatch.setattr(model, "infer", recording_infer)
    for frames in (200, 800):
        seen.clear()
        audio = synthesize(model, _mel(frames), sigma=1.0, chunk_frames=50, overlap_frames=8)
        assert audio.shape == (256 * frames,)
        assert max(seen) <= 50 + 2 * 8 and len(seen) >= frames // 50


@pytest.mark.cuda
def test_cuda_peak_memory_flat_when_chunked(tiny_config):
    from conftest import randomize_end
    from waveglow import WaveGlow

    torch.backends.cudnn.allow_tf32 = False
    model = randomize_end(WaveGlow(**tiny_config.waveglow_config.to_kwargs())).eval().remove_weight_norm().cuda()
    peaks = []
    for frames in (500, 2000):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        synthesize(model, _mel(frames), sigma=1.0, chunk_frames=64, overlap_frames=8)
        peaks.append(torch.cuda.max_memory_allocated() - base)
    assert peaks[1] <= peaks[0] * 1.1 + 2**20


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_half_precision_is_finite_and_close(tiny_config, dtype):
    from conftest import randomize_end
    from waveglow import WaveGlow

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    model = randomize_end(WaveGlow(**tiny_config.waveglow_config.to_kwargs()), std=0.02).eval().remove_weight_norm()
    mel = _mel(100)
    reference = synthesize(model, mel, sigma=0.6, generator=torch.Generator().manual_seed(0))
    half = synthesize(model.cuda().to(dtype), mel, sigma=0.6, generator=torch.Generator().manual_seed(0))
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    assert (half - reference).abs().max() < 0.05 * reference.abs().max()


# ------------------------------------------------------------------------------ inputs


@pytest.mark.parametrize(
    "mel, message",
    [
        (torch.zeros(40, 10), "40 channels, the model expects 80"),
        (torch.zeros(10, 80), "transposed"),
        (torch.zeros(80), "got shape \\(80,\\)"),
        (torch.zeros(2, 80, 10), "got shape \\(2, 80, 10\\)"),
        (torch.zeros(80, 0), "empty mel"),
        (torch.full((80, 5), float("nan")), "NaN or infinite"),
        (torch.tensor([[float("inf")] * 5] * 80), "NaN or infinite"),
    ],
)
def test_check_mel_rejects(mel, message):
    with pytest.raises(MelError, match=message):
        check_mel(mel, 80)


def test_check_mel_accepts_both_layouts():
    mel = _mel(4).double()
    assert check_mel(mel, 80).dtype == torch.float32
    assert check_mel(mel[None], 80).shape == (80, 4)
    assert check_mel(mel.numpy(), 80).shape == (80, 4)


def test_load_mel_formats_and_errors(tmp_path):
    mel = _mel(6)
    torch.save(mel, tmp_path / "a.pt")
    np.save(tmp_path / "b.npy", mel.numpy())
    torch.save({"mel": mel}, tmp_path / "dict.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a tensor file")
    assert torch.equal(load_mel(tmp_path / "a.pt", 80), mel)
    assert torch.equal(load_mel(tmp_path / "b.npy", 80), mel)
    with pytest.raises(MelError, match="holds a dict"):
        load_mel(tmp_path / "dict.pt", 80)
    with pytest.raises(MelError, match="cannot read mel file"):
        load_mel(tmp_path / "junk.pt", 80)
    with pytest.raises(MelError, match="cannot read mel file: No such file"):
        load_mel(tmp_path / "missing.npy", 80)


# ------------------------------------------------------------------------------ WAV output


def test_int16_conversion_clips_instead_of_wrapping():
    audio = torch.tensor([0.0, 0.5, -0.5, 0.999, 1.0, 1.5, -1.0, -1.5, 3.0])
    assert to_int16(audio).tolist() == [0, 16384, -16384, 32735, 32767, 32767, -32768, -32768, 32767]


@pytest.mark.parametrize("without_soundfile", [False, True])
def test_write_wav_is_16_bit_and_clipped(tmp_path, monkeypatch, without_soundfile):
    from scipy.io import wavfile

    if without_soundfile:
        monkeypatch.setitem(sys.modules, "soundfile", None)  # import soundfile -> ImportError
    audio = torch.tensor([0.25, 1.25, -1.25, -0.25])
    write_wav(tmp_path / "x.wav", audio, 16000)
    rate, data = wavfile.read(tmp_path / "x.wav")
    assert rate == 16000 and data.dtype == np.int16
    assert data.tolist() == [8192, 32767, -32768, -8192]
