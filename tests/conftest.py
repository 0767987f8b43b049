import random

import numpy as np
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def mmdet_scope():
    """Build mmdet types in the 'mmdet' scope (a runner in another test may change it)."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state, so a tolerance that holds once holds
    in CI too (whatever ran before it in the process)."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
