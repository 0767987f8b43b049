"""Our ShuffleNet V2 against the authors' code, on the same weights (docs/performance.md).

The authors' code (megvii-model/ShuffleNet-Series, ``ShuffleNetV2/network.py`` and
``blocks.py``) is never part of this project: point ``path`` at a local copy (for
example a git-ignored ``third_party/ShuffleNetV2``). Its network is built with random
weights and random BN statistics; those weights are converted to our layout
(:func:`convert_shufflenet_v2`), so both compute the same function; features up to
conv5 are compared, then timed interleaved.
"""
import copy
import importlib.util
import os
import sys

import torch
import torch.nn as nn

from ..engine.inference_mode import deploy
from ..models.backbones import ShuffleNetV2
from ..models.backbones.shufflenet_v2_weights import convert_shufflenet_v2
from .benchmark import summarise, time_runs
from ..utils.errors import MissingFileError


def load_official_class(path: str):
    """``ShuffleNetV2`` from the authors' ``network.py`` in ``path``."""
    network = os.path.join(path, 'network.py')
    if not os.path.isfile(network):
        raise MissingFileError(f'{network} not found: point --official at the '
                               'ShuffleNetV2 folder of megvii-model/ShuffleNet-Series')
    sys.path.insert(0, path)  # network.py imports its sibling blocks.py
    try:
        spec = importlib.util.spec_from_file_location('official_shufflenetv2', network)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(path)
    return module.ShuffleNetV2


class OfficialFeatures(nn.Module):
    """The authors' network up to conv5 (no pooling, no classifier)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        net = self.net
        return net.conv_last(net.features(net.maxpool(net.first_conv(x))))


def official_and_ours(path: str, widen_factor: float = 1.0, seed: int = 0):
    """(authors' features, our backbone to conv5) with the same random weights."""
    torch.manual_seed(seed)
    official = load_official_class(path)(model_size=f'{widen_factor}x')
    for m in official.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    state, arch = convert_shufflenet_v2(official.state_dict(), 'official')
    ours = ShuffleNetV2(widen_factor, out_indices=(3,),
                        downsample_split=arch['downsample_split'])
    ours.load_state_dict(state, strict=True)
    return OfficialFeatures(official).eval(), ours.eval()


def _conv5(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = net(x)
    return out[0] if isinstance(out, tuple) else out


def compare_with_official(path: str, widen_factor: float = 1.0, batch: int = 4,
                          shape=(800, 1200), rounds: int = 10, warmup: int = 2) -> list:
    """Rows for the authors' code, ours as trained, ours in the inference mode.

    Each row has images/s, the ratio to the authors' code, and the largest
    difference of its conv5 output from theirs relative to their largest value.
    """
    official, ours = official_and_ours(path, widen_factor)
    fused = deploy(copy.deepcopy(ours))
    x = torch.randn(batch, 3, *shape, generator=torch.Generator().manual_seed(1))
    x_last = x.contiguous(memory_format=torch.channels_last)
    runs = [('authors\' code (eager)', official, x), ('ours, as trained', ours, x),
            ('ours, deploy()', fused, x_last)]
    with torch.no_grad():
        reference = official(x)
        diffs = [float((_conv5(net, inp) - reference).abs().max() / reference.abs().max())
                 for _, net, inp in runs]
    callables = [(lambda n=net, i=inp: n(i)) for _, net, inp in runs]
    with torch.no_grad():
        for run in callables:
            time_runs(run, warmup)
        times = [[] for _ in callables]
        for _ in range(rounds):
            for run, bucket in zip(callables, times):
                bucket.extend(time_runs(run, 1))
    rows = [dict(summarise(t, batch), config=name, mode='fp32', max_rel_diff=d)
            for (name, _, _), t, d in zip(runs, times, diffs)]
    for row in rows:
        row['ratio_to_first'] = row['img_per_s'] / rows[0]['img_per_s']
    return rows
