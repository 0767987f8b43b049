"""Randomness as a function of the seed and the position in the run (faults).

A run resumed from a checkpoint must draw the same random numbers as the
uninterrupted run from there on. mmengine seeds Python's, NumPy's and torch's
generators once when the runner starts, so after a resume the model's random draws
(the RPN's anchor sampling, dropout) continue from the start-of-run state instead of
the state at the checkpoint. :class:`IterationSeedHook` reseeds them before every
training iteration from (seed, iteration); :func:`derive_seed` and
:func:`seeded_generators` are shared with :mod:`sn2_det.datasets.seeded_sampling`,
which does the same for each sample's augmentation.
"""
import contextlib
import random
from typing import Iterator

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import set_random_seed

from mmdet.registry import HOOKS


def derive_seed(*keys: int) -> int:
    """A 32-bit seed mixed from integers (the run's seed first); different keys give
    independent streams (NumPy's ``SeedSequence``)."""
    return int(np.random.SeedSequence([k % (1 << 64) for k in keys]).generate_state(1)[0])


@contextlib.contextmanager
def seeded_generators(seed: int) -> Iterator[None]:
    """Run the block with Python's, NumPy's and torch's CPU generator seeded by
    ``seed``, and give them back their previous states afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.default_generator.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


@HOOKS.register_module()
class IterationSeedHook(Hook):
    """Before each training iteration, seed the generators from (the runner's seed,
    the iteration), so that a resumed run's random draws equal the uninterrupted
    run's. With ``randomness.diff_rank_seed`` the runner's seed differs by rank."""

    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        set_random_seed(derive_seed(runner.seed, runner.iter))
