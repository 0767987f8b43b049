import logging
import random

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger

from helpers import train_toy_detector

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


@pytest.fixture(scope='session')
def trained_toy_detector(tmp_path_factory):
    """The toy detector trained once for the whole test run (helpers.TRAIN_OPTIONS) on
    the toy dataset made with the bundled defaults: (dataset root, checkpoint). Tests
    read both and write elsewhere."""
    root = tmp_path_factory.mktemp('toy_trained')
    return root, train_toy_detector(root, root / 'work')


@pytest.fixture
def log_records():
    """Records (info and above) logged through mmengine's current logger."""
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
