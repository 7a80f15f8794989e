"""Objective quality of vocoded speech: PESQ, STOI, log-mel L1, MCD, F0 error, DNSMOS.

Every metric compares a degraded clip with its reference sample for sample (copy synthesis is
aligned, so nothing is time-warped), except DNSMOS, which scores the degraded clip alone. Each
comes from the maintained library for it where one exists:

- ``pesq_wb``: ITU-T P.862.2 wide-band PESQ (``pesq``), both clips resampled to 16 kHz with
  ``scipy.signal.resample_poly``. MOS-LQO from about 1.04 (noise) to 4.64 (identical).
- ``stoi``: short-time objective intelligibility (``pystoi``, which resamples to 10 kHz). 0 .. 1.
- ``log_mel_l1``: mean |log-mel(reference) - log-mel(degraded)| in the model's own features.
- ``mcd_db``: mel-cepstral distortion in dB, see :func:`mel_cepstrum` and :func:`mcd_db`.
- ``f0_rmse_cents``, ``vuv_error``: pitch error over frames both clips call voiced, and the share
  of frames whose voicing decisions differ (``librosa.pyin``), see :func:`f0_metrics`.
- ``dnsmos_ovrl``, ``dnsmos_p808``: Microsoft's DNSMOS P.835 overall and P.808 predicted MOS
  (``speechmos``; its ONNX models ship in its wheel and run offline on onnxruntime), 1 .. 5.
- ``test_ll``: the exact log-likelihood of the original clip under a model, nats per sample
  (:mod:`waveglow.likelihood`); a score of the model, not of audio, so only model systems have it.
- ``energy_correlation``: Pearson correlation of the two clips' per-frame energies in dB, see
  :func:`energy_correlation`; -1 .. 1, 1 follows the loudness envelope exactly. Scored only when
  asked for (the demo does), so it is not among :data:`METRICS`, ``waveglow-evaluate``'s set.

:mod:`waveglow.evaluation_output` runs these over lists of clips and systems and writes the
results; ``waveglow-evaluate`` and ``scripts/demo.py`` both go through it.

A metric whose package is not installed is left out with one message
(:func:`available_metrics`); the others are still computed. A metric that cannot be computed
for one clip (PESQ finds no speech in it, say) is NaN for that clip.
"""

from __future__ import annotations

import importlib
import math
import warnings
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from .audio import MelSpectrogram, load_audio
from .registry import family_of
from .synthesis import synthesize

__all__ = [
    "METRICS", "ON_REQUEST", "REFERENCE_FREE", "MODEL_METRICS", "TRAINING_METRICS", "MissingMetricWarning",
    "available_metrics", "resample", "pesq_wb", "stoi", "log_mel", "log_mel_l1", "mel_cepstrum", "mcd_db",
    "f0_metrics", "dnsmos", "frame_energy_db", "correlation", "energy_correlation", "align", "score_clip",
    "griffin_lim", "model_features", "default_sigma", "prepare_reference", "vocode", "evaluate_model",
]

# Metric -> the package it needs (None: only this project's own code).
METRIC_PACKAGES = {
    "pesq_wb": "pesq",
    "stoi": "pystoi",
    "log_mel_l1": None,
    "mcd_db": "librosa",
    "f0_rmse_cents": "librosa",
    "vuv_error": "librosa",
    "dnsmos_ovrl": "speechmos.dnsmos",
    "dnsmos_p808": "speechmos.dnsmos",
    "test_ll": None,
    "energy_correlation": None,
}
ON_REQUEST = ("energy_correlation",)  # scored only when named: not in METRICS, waveglow-evaluate's set
METRICS = tuple(m for m in METRIC_PACKAGES if m not in ON_REQUEST)
MODEL_METRICS = ("test_ll",)  # scores of a model on the original clip (waveglow.likelihood), not of audio
REFERENCE_FREE = ("dnsmos_ovrl", "dnsmos_p808")
TRAINING_METRICS = ("pesq_wb", "stoi", "log_mel_l1")

PESQ_RATE = 16000  # P.862.2 wide band
DNSMOS_RATE = 16000
F0_MIN, F0_MAX = 65.0, 600.0  # Hz: pyin's search range, low male to high female/child voices
MCD_N_MELS = 40  # mel bands of the log spectrum the cepstrum is taken of
MCD_ORDER = 24  # cepstral coefficients c1 .. c24 enter the distance (c0, the level, does not)
MCD_POWER_FLOOR = 1e-10  # mel power floor (-100 dB) before the log


class MissingMetricWarning(UserWarning):
    """A metric left out because the package it needs is not installed."""


def available_metrics(names: Iterable[str] = METRICS) -> tuple[tuple[str, ...], list[str]]:
    """(the metrics of ``names`` whose packages import, one message per missing package).

    Raises ValueError for a name that is not a metric.
    """
    names = tuple(names)
    unknown = [n for n in names if n not in METRIC_PACKAGES]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    missing: dict[str, str] = {}  # package -> why it failed to import
    for package in dict.fromkeys(METRIC_PACKAGES[n] for n in names if METRIC_PACKAGES[n]):
        try:
            importlib.import_module(package)
        except ImportError as e:
            missing[package] = str(e)
    kept = tuple(n for n in names if METRIC_PACKAGES[n] not in missing)
    messages = [
        f"{', '.join(n for n in names if METRIC_PACKAGES[n] == package)} left out: "
        f"cannot import {package} ({why}); pip install {package.split('.')[0]}"
        for package, why in missing.items()
    ]
    return kept, messages


# ------------------------------------------------------------------------------ metrics


def resample(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """(T,) at ``rate`` -> (about T * target_rate / rate,) float64, polyphase (scipy)."""
    from scipy.signal import resample_poly

    audio = np.asarray(audio, dtype=np.float64)
    if rate == target_rate:
        return audio
    g = math.gcd(int(rate), int(target_rate))
    return resample_poly(audio, target_rate // g, rate // g)


def pesq_wb(reference: np.ndarray, degraded: np.ndarray, rate: int) -> float:
    """Wide-band PESQ (MOS-LQO, about 1.04 .. 4.64) at 16 kHz; NaN when PESQ finds no speech."""
    from pesq import PesqError, pesq

    score = pesq(PESQ_RATE, resample(reference, rate, PESQ_RATE), resample(degraded, rate, PESQ_RATE),
                 "wb", on_error=PesqError.RETURN_VALUES)
    return float(score) if score >= 0 else math.nan  # the library returns -1 on error


def stoi(reference: np.ndarray, degraded: np.ndarray, rate: int) -> float:
    """STOI (0 .. 1, classic, not extended); pystoi resamples to 10 kHz itself."""
    from pystoi import stoi as _stoi

    return float(_stoi(np.asarray(reference, np.float64), np.asarray(degraded, np.float64), rate, extended=False))


def log_mel(features: nn.Module, audio: np.ndarray | torch.Tensor) -> np.ndarray:
    """(T,) audio -> (n_mel, frames) features, computed on the CPU."""
    audio = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    with torch.no_grad():
        return features(audio[None])[0].float().numpy()


def log_mel_l1(reference: np.ndarray, degraded: np.ndarray, features: nn.Module) -> float:
    """Mean |features(reference) - features(degraded)| over channels and frames."""
    return float(np.abs(log_mel(features, reference) - log_mel(features, degraded)).mean())


def _mcd_frame(rate: int) -> int:
    """FFT size of the MCD and F0 analyses: the power of two at or above 40 ms (1024 at 16-24 kHz)."""
    return 1 << math.ceil(math.log2(0.04 * rate))


def mel_cepstrum(audio: np.ndarray, rate: int) -> np.ndarray:
    """Mel cepstra c0 .. c``MCD_ORDER`` of each frame: (T,) -> (frames, MCD_ORDER + 1).

    Recipe: power STFT (Hann, n_fft the power of two at or above 40 ms, hop n_fft / 4, centred),
    ``MCD_N_MELS`` Slaney mel bands from 0 Hz to rate / 2 (librosa), the natural log of the band
    amplitude ``0.5 * ln(max(power, 1e-10))``, then a DCT-II scaled so that the log amplitude of
    band k is ``c0 + sum_m c_m cos(pi m (k + 1/2) / K)`` (K bands): the convention of SPTK's
    mel-cepstra that the MCD formula assumes.
    """
    import librosa
    from scipy.fft import dct

    n_fft = _mcd_frame(rate)
    power = librosa.feature.melspectrogram(
        y=np.asarray(audio, np.float64), sr=rate, n_fft=n_fft, hop_length=n_fft // 4, window="hann",
        center=True, power=2.0, n_mels=MCD_N_MELS, fmin=0.0, fmax=rate / 2, htk=False, norm="slaney",
    )  # (n_mels, frames)
    log_amplitude = 0.5 * np.log(np.maximum(power, MCD_POWER_FLOOR))
    cepstra = dct(log_amplitude, type=2, axis=0, norm=None) / MCD_N_MELS  # (n_mels, frames); c_m, m >= 1
    cepstra[0] /= 2  # c0 is the mean log amplitude
    return cepstra[: MCD_ORDER + 1].T


def mcd_db(reference: np.ndarray, degraded: np.ndarray, rate: int) -> float:
    """Mel-cepstral distortion in dB, no time warping, averaged over all frames.

    Per frame ``10 / ln 10 * sqrt(2 * sum_{m=1..24} (c_m - c'_m)^2)`` (Kubichek 1993), c0 left
    out, so a change of level alone costs nothing. With these cepstra it is the RMS over mel bands
    of the dB difference of the two smoothed spectra after removing their mean difference.
    """
    a, b = mel_cepstrum(reference, rate), mel_cepstrum(degraded, rate)
    n = min(len(a), len(b))
    difference = a[:n, 1:] - b[:n, 1:]
    return float(np.mean(10 / math.log(10) * np.sqrt(2 * np.sum(difference**2, axis=1))))


def _pitch(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(F0 in Hz, NaN where unvoiced; voiced flags) per frame, from librosa.pyin."""
    import librosa

    n_fft = _mcd_frame(rate)
    f0, voiced, _ = librosa.pyin(np.asarray(audio, np.float64), fmin=F0_MIN, fmax=F0_MAX, sr=rate,
                                 frame_length=n_fft, hop_length=n_fft // 4, center=True)
    return f0, voiced


def f0_metrics(reference: np.ndarray, degraded: np.ndarray, rate: int) -> tuple[float, float]:
    """(F0 RMSE in cents over frames both clips call voiced, voiced/unvoiced error rate).

    pyin with F0 in 65 .. 600 Hz on frames of the MCD analysis (1024 samples, hop 256 at 22050 Hz).
    The cent error of a frame is ``1200 log2(f0_degraded / f0_reference)``; the V/UV error is
    the share of all frames where the two voicing decisions differ. The RMSE is NaN when no frame
    is voiced in both.
    """
    f0_ref, voiced_ref = _pitch(reference, rate)
    f0_deg, voiced_deg = _pitch(degraded, rate)
    n = min(len(f0_ref), len(f0_deg))
    f0_ref, f0_deg, voiced_ref, voiced_deg = f0_ref[:n], f0_deg[:n], voiced_ref[:n], voiced_deg[:n]
    both = voiced_ref & voiced_deg
    cents = 1200 * np.log2(f0_deg[both] / f0_ref[both])
    rmse = float(np.sqrt(np.mean(cents**2))) if both.any() else math.nan
    return rmse, float(np.mean(voiced_ref != voiced_deg))


def dnsmos(audio: np.ndarray, rate: int) -> tuple[float, float]:
    """(DNSMOS P.835 overall, P.808) predicted MOS of one clip, 1 .. 5; scored at 16 kHz."""
    from speechmos import dnsmos as _dnsmos

    audio = np.clip(resample(audio, rate, DNSMOS_RATE), -1.0, 1.0).astype(np.float32)
    scores = _dnsmos.run(audio, sr=DNSMOS_RATE)
    return float(scores["ovrl_mos"]), float(scores["p808_mos"])


def frame_energy_db(features: nn.Module, audio: np.ndarray) -> np.ndarray:
    """Per-frame energy of the STFT ``features`` use (their ``magnitude``): (T,) -> (frames,) in dB."""
    with torch.no_grad():
        magnitude = features.magnitude(torch.from_numpy(np.asarray(audio, np.float32)).double()[None])[0]
    return 10 * np.log10(magnitude.square().sum(0).numpy() + 1e-10)  # (n_freq, frames) -> (frames,)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length series; 0 when either is constant."""
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def energy_correlation(reference: np.ndarray, degraded: np.ndarray, features: nn.Module) -> float:
    """Correlation of the per-frame energies (dB, :func:`frame_energy_db`) of two (T,) clips:
    1 when the degraded clip follows the reference's loudness envelope exactly."""
    return correlation(frame_energy_db(features, reference), frame_energy_db(features, degraded))


# ------------------------------------------------------------------------------ one clip


def align(audio: np.ndarray, length: int, tolerance: int) -> np.ndarray:
    """Trim or zero-pad (T',) to ``length`` when |T' - length| <= ``tolerance``; else ValueError."""
    if abs(audio.size - length) > tolerance:
        raise ValueError(f"{audio.size} samples against the reference's {length} (more than {tolerance} apart)")
    return np.pad(audio[:length], (0, max(0, length - audio.size)))


def score_clip(
    reference: np.ndarray,
    degraded: np.ndarray,
    rate: int,
    features: nn.Module | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """Score one degraded (T,) clip against its (T,) reference -> {metric: value}.

    ``metrics`` defaults to every metric whose package imports (a :class:`MissingMetricWarning`
    names the others). ``features`` (an (B, T) -> (B, n_mel, frames) module) is needed for
    ``log_mel_l1`` and ``energy_correlation`` (the STFT of its ``magnitude``). Reference-free
    metrics score ``degraded`` alone.
    """
    if metrics is None:
        metrics, messages = available_metrics()
        for message in messages:
            warnings.warn(message, MissingMetricWarning, stacklevel=2)
    reference, degraded = np.asarray(reference, np.float32), np.asarray(degraded, np.float32)
    if reference.shape != degraded.shape or reference.ndim != 1:
        raise ValueError(f"expected two (T,) clips of one length, got {reference.shape} and {degraded.shape}")
    wanted, scores = set(metrics), {}
    if "pesq_wb" in wanted:
        scores["pesq_wb"] = pesq_wb(reference, degraded, rate)
    if "stoi" in wanted:
        scores["stoi"] = stoi(reference, degraded, rate)
    if features is None and wanted & {"log_mel_l1", "energy_correlation"}:
        raise ValueError("log_mel_l1 and energy_correlation need the model's features")
    if "log_mel_l1" in wanted:
        scores["log_mel_l1"] = log_mel_l1(reference, degraded, features)
    if "energy_correlation" in wanted:
        scores["energy_correlation"] = energy_correlation(reference, degraded, features)
    if "mcd_db" in wanted:
        scores["mcd_db"] = mcd_db(reference, degraded, rate)
    if wanted & {"f0_rmse_cents", "vuv_error"}:
        scores["f0_rmse_cents"], scores["vuv_error"] = f0_metrics(reference, degraded, rate)
    if wanted & {"dnsmos_ovrl", "dnsmos_p808"}:
        scores["dnsmos_ovrl"], scores["dnsmos_p808"] = dnsmos(degraded, rate)
    return {name: scores[name] for name in metrics if name not in MODEL_METRICS}


# ------------------------------------------------------------------------------ vocoding


def griffin_lim(mel: np.ndarray, data_config, length: int, n_iter: int = 60, seed: int = 0) -> np.ndarray:
    """Invert a Tacotron 2 log-mel (magnitude, Slaney) with Griffin-Lim: (n_mel, frames) -> (length,).

    The mel is mapped back to a linear magnitude by librosa's non-negative least squares, then
    ``n_iter`` Griffin-Lim iterations (momentum 0.99) start from phases drawn with ``seed``.
    """
    import librosa

    magnitude = librosa.feature.inverse.mel_to_stft(
        M=np.exp(mel.astype(np.float64)), sr=data_config.sampling_rate, n_fft=data_config.filter_length,
        power=1.0, fmin=data_config.mel_fmin, fmax=data_config.mel_fmax, htk=False, norm="slaney",
    )  # (n_freq, frames)
    audio = librosa.griffinlim(
        S=magnitude, n_iter=n_iter, hop_length=data_config.hop_length, win_length=data_config.win_length,
        n_fft=data_config.filter_length, window="hann", center=True, pad_mode="reflect", length=length,
        random_state=seed,
    )
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def model_features(model, data_config) -> nn.Module:
    """The feature extractor of ``model``'s family: (B, T) audio -> (B, n_mel, frames), on the CPU."""
    return family_of(model).features(data_config)


def default_sigma(model) -> float:
    """The noise scale ``model`` vocodes with when none is given."""
    return model.default_sigma


def prepare_reference(features: MelSpectrogram, audio: np.ndarray) -> np.ndarray:
    """The clip as ``features`` expect it, through their ``prepare_audio`` (some recipes normalise the
    level first; Tacotron 2's leaves it): (T,) -> (T,) float32."""
    with torch.no_grad():
        prepared = features.prepare_audio(torch.from_numpy(np.asarray(audio, np.float32))[None])[0]  # (1, T) -> (T,)
    return prepared.float().numpy()


def vocode(model, features: nn.Module, audio: np.ndarray, sigma: float | None,
           generator: torch.Generator | None) -> np.ndarray:
    """Copy synthesis: (T,) audio -> its features -> ``model`` -> (T,) float32 audio in [-1, 1].

    ``model``: a model or an inference object (:func:`~waveglow.synthesis.load_for_inference`);
    ``sigma`` None is the family's default.
    """
    mel = torch.from_numpy(log_mel(features, audio))  # (n_mel, frames)
    vocoded = synthesize(model, mel, sigma=sigma, generator=generator)  # (hop * frames,) >= T samples
    return vocoded[: audio.size].clamp(-1, 1).numpy()


def evaluate_model(
    model,
    data_config,
    files: Sequence[str],
    *,
    sigma: float | None,
    seed: int = 0,
    metrics: Sequence[str] = TRAINING_METRICS,
) -> dict[str, float]:
    """Copy synthesis of ``files`` with ``model`` -> the mean of each metric over them.

    For use during training (the plain ``model.infer`` path: nothing derived from the weights is
    kept): a model in training mode is put in eval mode and given back in training mode. Clip i
    draws its noise from a CPU generator seeded ``seed + i``. Metrics whose package is missing
    are left out (with a :class:`MissingMetricWarning`); NaN clips are not averaged.
    """
    metrics, messages = available_metrics(metrics)
    for message in messages:
        warnings.warn(message, MissingMetricWarning, stacklevel=2)
    features = model_features(model, data_config)
    rate, was_training = data_config.sampling_rate, getattr(model, "training", False)
    scores: dict[str, list[float]] = {name: [] for name in metrics}
    if was_training:
        model.eval()
    try:
        for i, path in enumerate(files):
            clip = load_audio(path, rate, resample=data_config.resample, downmix=data_config.downmix).numpy()
            clip = prepare_reference(features, clip)
            vocoded = vocode(model, features, clip, sigma, torch.Generator().manual_seed(seed + i))
            for name, value in score_clip(clip, vocoded, rate, features, metrics).items():
                scores[name].append(value)
    finally:
        if was_training:
            model.train()
    return {name: _nanmean(values) for name, values in scores.items()}


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan
