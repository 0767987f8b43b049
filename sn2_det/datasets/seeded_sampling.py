"""Augmentation randomness as a function of (seed, epoch, position, index).

mmengine seeds each data worker once, so a random flip depends on every sample the
worker processed before it: a resumed run (fresh workers) augments differently from
the uninterrupted one, and non-persistent workers repeat the same draws every epoch.
:class:`SeededSampler` tags each index it yields with a seed derived from the run's
seed, the epoch, the position in the epoch and the index; :class:`SeededDataset`
prepares that sample with Python's, NumPy's and torch's generators seeded from the
tag (and restores them afterwards). The data order is the wrapped sampler's, which
for mmengine's samplers is already a function of the seed and the epoch.

Both are flat wrappers, so configs that set the dataset's or sampler's keys keep
working::

    train_dataloader = dict(
        sampler=dict(type='SeededSampler'),  # wraps sampler_type='DefaultSampler'
        dataset=dict(type='SeededDataset', dataset_type='CocoDataset'))
"""
from typing import Iterator, Optional

from mmengine.dist import sync_random_seed
from torch.utils.data import Sampler

from mmdet.registry import DATA_SAMPLERS, DATASETS

from ..engine.seeding import derive_seed, seeded_generators


class SeededIndex(int):
    """A dataset index carrying the seed of its sample's random draws."""

    def __new__(cls, index: int, seed: int):
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __reduce__(self):
        return SeededIndex, (int(self), self.seed)


@DATA_SAMPLERS.register_module()
class SeededSampler(Sampler):
    """Yields the indices of ``sampler_type`` (built with the other keyword
    arguments) as :class:`SeededIndex` objects.

    ``seed`` defaults to the runner's seed (mmengine passes it), else a seed shared
    by all ranks; the wrapped sampler gets the same seed.
    """

    def __init__(self, dataset, seed: Optional[int] = None,
                 sampler_type: str = 'DefaultSampler', **kwargs) -> None:
        self.dataset = dataset
        self.seed = sync_random_seed() if seed is None else seed
        self.sampler = DATA_SAMPLERS.build(dict(type=sampler_type, **kwargs),
                                           default_args=dict(dataset=dataset,
                                                             seed=self.seed))
        self.epoch = 0

    def __iter__(self) -> Iterator[SeededIndex]:
        for position, index in enumerate(self.sampler):
            yield SeededIndex(index, derive_seed(self.seed, self.epoch, position, index))

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)


@DATASETS.register_module()
class SeededDataset:
    """The dataset ``dataset_type`` (built with the other keyword arguments) whose
    samples are prepared under the seed their :class:`SeededIndex` carries.

    Plain integer indices (e.g. from an unwrapped sampler) are passed through
    unchanged. Other attributes are the wrapped dataset's. It is not a
    ``BaseDataset``: mmengine's dataset wrappers go inside it
    (``dataset_type='RepeatDataset', times=3, dataset=dict(...)``), not around it.
    """

    def __init__(self, dataset_type: str, **kwargs) -> None:
        self.dataset = DATASETS.build(dict(type=dataset_type, **kwargs))

    def __getitem__(self, idx: int):
        seed = getattr(idx, 'seed', None)
        if seed is None:
            return self.dataset[idx]
        with seeded_generators(seed):
            return self.dataset[int(idx)]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        if name == 'dataset' or name.startswith('__'):  # not yet set while unpickling
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __setattr__(self, name: str, value) -> None:
        """Attributes other than ``dataset`` are the wrapped dataset's (hooks that swap
        ``dataset.pipeline`` reach the real one)."""
        if name == 'dataset':
            object.__setattr__(self, name, value)
        else:
            setattr(self.dataset, name, value)
