"""What training shows: the reference's per-iteration line, a progress bar, TensorBoard."""

from __future__ import annotations

import sys

import torch

from .likelihood import log_likelihood_from_loss
from .plotting import figure_to_image, mel_figure

__all__ = ["ProgressLog", "mel_image"]

VALIDATION_SIGMA = 0.6
N_AUDIO_CLIPS = 3


def mel_image(mel: torch.Tensor, data_config, title: str) -> torch.Tensor:
    """(n_mel, frames) log-mel -> (3, H, W) uint8 figure: time in s, frequency in Hz, a log-magnitude colour bar.

    The colour scale runs from the features' floor log(1e-5) to the mel's maximum.
    """
    fmax = data_config.mel_fmax or data_config.sampling_rate / 2
    return figure_to_image(mel_figure(mel, data_config.sampling_rate, data_config.hop_length, title=title,
                                      frequency_range=(data_config.mel_fmin, fmax)))


class ProgressLog:
    """Prints and records one training run; silent on ranks other than 0."""

    def __init__(self, trainer, total: int) -> None:
        self.trainer = trainer
        self.enabled = trainer.is_main
        self.writer = trainer.writer
        self.bar = None
        self.ground_truth_logged = False
        self.features = None  # MelSpectrogram for the audio logs, built on first use
        if self.enabled:
            from tqdm import tqdm

            # disable=None: a bar on terminals only, so logs stay clean
            self.bar = tqdm(total=total, initial=trainer.iteration, unit="it", dynamic_ncols=True,
                            disable=None, file=sys.stderr)
            batch = trainer.config.train_config.batch_size
            trainer.log(
                f"training {total - trainer.iteration} iterations on {trainer.device} x {trainer.world_size} "
                f"process(es); global batch {batch * trainer.world_size} ({batch} per process)"
            )

    def step(self, loss: float, grad_norm: float | None, samples_per_second: float) -> None:
        if not self.enabled:
            return
        iteration = self.trainer.iteration
        learning_rate = self.trainer.optimizer.param_groups[0]["lr"]
        if self.trainer.metrics is not None:
            self.trainer.metrics.step(iteration, loss, learning_rate, grad_norm, samples_per_second)
        line = f"{iteration}:\t{loss:.9f}"
        if self.bar is not None and not self.bar.disable:
            self.bar.write(line)
            self.bar.set_postfix(loss=f"{loss:.4f}", samples_per_s=f"{samples_per_second:,.0f}")
            self.bar.update(1)
        else:
            print(line, flush=True)
        if self.writer is not None:
            self.writer.add_scalar("training.loss", loss, iteration)
            self.writer.add_scalar("learning_rate", learning_rate, iteration)
            self.writer.add_scalar("samples_per_second", samples_per_second, iteration)
            if grad_norm is not None:
                self.writer.add_scalar("grad_norm", grad_norm, iteration)

    def validation(self, loss: float) -> None:
        """Log the validation loss and, when it was taken at sigma 1, the log-likelihood it gives (nats per sample)."""
        if not self.enabled:
            return
        scalars = {"validation_loss": loss}
        if self.trainer.config.train_config.sigma == 1.0:
            scalars["validation_log_likelihood"] = log_likelihood_from_loss(loss, self.trainer.model)
        self.trainer.log(f"{self.trainer.iteration}:\t" + ", ".join(f"{k.replace('_', ' ')} {v:.9f}" for k, v in scalars.items()))
        if self.trainer.metrics is not None:
            self.trainer.metrics.write(self.trainer.iteration, **scalars)
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(name.replace("validation_", "validation."), value, self.trainer.iteration)

    def evaluation(self, scores: dict[str, float]) -> None:
        """Log the objective scores of :meth:`Trainer.evaluate` (PESQ, STOI, log-mel L1)."""
        if not self.enabled:
            return
        iteration = self.trainer.iteration
        self.trainer.log(f"{iteration}:\tevaluation " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        if self.trainer.metrics is not None:
            self.trainer.metrics.write(iteration, **scores)
        if self.writer is not None:
            for name, value in scores.items():
                self.writer.add_scalar(f"evaluation.{name}", value, iteration)

    @torch.no_grad()
    def audio(self, model, validation) -> None:
        """Vocode the first validation clips at the model's sigma; log audio and mel images.

        The plain path (``model.infer``): the fast path's operators would have to be built from
        weights that the next step changes.
        """
        if not self.enabled or self.writer is None:
            return
        data_config = self.trainer.config.data_config
        if self.features is None:
            self.features = self.trainer.family.features(data_config).to(self.trainer.device)
        features = self.features
        iteration, rate = self.trainer.iteration, data_config.sampling_rate
        model.eval()
        for i in range(min(N_AUDIO_CLIPS, len(validation))):
            mel, audio = validation[i]
            mel = mel[None].to(self.trainer.device)
            generator = torch.Generator(device=self.trainer.device).manual_seed(i)
            sigma = min(VALIDATION_SIGMA, self.trainer.model.default_sigma)
            vocoded = model.infer(mel, sigma=sigma, generator=generator).float().clamp(-1, 1)
            self.writer.add_audio(f"validation/{i}/vocoded", vocoded.cpu(), iteration, sample_rate=rate)
            self.writer.add_image(f"validation/{i}/vocoded_mel",
                                  mel_image(features(vocoded)[0], data_config, f"vocoded, iteration {iteration}"),
                                  iteration)
            if not self.ground_truth_logged:
                self.writer.add_audio(f"validation/{i}/ground_truth", audio[None], iteration, sample_rate=rate)
                self.writer.add_image(f"validation/{i}/ground_truth_mel",
                                      mel_image(mel[0], data_config, "ground truth"), iteration)
        self.ground_truth_logged = True
        model.train()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.trainer.metrics is not None:
            self.trainer.metrics.close()
        if self.writer is not None:
            self.writer.flush()
