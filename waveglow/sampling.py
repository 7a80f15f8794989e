"""The order and the random crops of training items, as pure functions of (seed, epoch, index).

:class:`EpochSampler` gives each epoch a seeded permutation, split across ranks and resumable at any
batch; :class:`_SeededItems` draws each item with torch's RNG seeded from the sampler's item seed, so
neither DataLoader workers nor a restart change which crop an iteration sees.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Sampler

from .errors import TrainingError

__all__ = ["EpochSampler"]


class _SeededItems(Dataset):
    """Wraps a dataset so item ``(index, seed)`` is drawn with torch's RNG seeded by ``seed``.

    The caller's RNG state is left untouched, so crops depend only on (seed, epoch, index).
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class EpochSampler(Sampler):
    """Seeded per-epoch permutation, split across ranks, resumable at any batch.

    Yields ``(index, item_seed)``; like DistributedSampler with drop_last, every rank gets the
    same number of items. ``set_epoch(epoch, skip_batches)`` starts mid-epoch.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0
        per_rank = n_items // world_size
        self.batches_per_epoch = per_rank // batch_size
        if self.batches_per_epoch == 0:
            raise TrainingError(
                f"{n_items} training files are fewer than batch_size {batch_size} x {world_size} process(es): "
                "add files or lower train_config.batch_size"
            )

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip = epoch, skip_batches

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.skip) * self.batch_size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n_items, generator=generator).tolist()
        used = self.batches_per_epoch * self.batch_size
        mine = order[self.rank :: self.world_size][:used]
        for index in mine[self.skip * self.batch_size :]:
            yield index, (self.seed * 1_000_003 + self.epoch * 10_007 + index) % (2**63)
