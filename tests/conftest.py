import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def mmdet_scope():
    """Build mmdet types in the 'mmdet' scope (a runner in another test may change it)."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield
