"""Multiply-add (FLOPs in the paper's sense) and parameter counts.

The ShuffleNet V2 paper counts multiply-adds of convolutions and fully-connected
layers, at 224x224 with the 1000-way classifier (Table 5); Table 7's levels use the
same count. Forward hooks on ``nn.Conv2d`` and ``nn.Linear`` count them on a real
forward pass, so any model (a backbone, a whole detector) can be measured.
"""
import copy
from typing import Dict, Sequence, Tuple

import torch
import torch.nn as nn

from ..utils.config import build_in_mmdet_scope


def count_macs(model: nn.Module, *inputs, **kwargs) -> Tuple[int, Dict[str, int]]:
    """Run ``model(*inputs, **kwargs)`` and return (total MACs, MACs per top-level child)."""
    per_child: Dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            child = name.split('.')[0] if name else ''
            handles.append(module.register_forward_hook(_hook(per_child, child)))
    try:
        with torch.no_grad():
            model(*inputs, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return sum(per_child.values()), per_child


def _hook(per_child: Dict[str, int], child: str):
    def hook(module, args, output):
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            macs = output.numel() * (module.in_channels // module.groups) * k
        else:
            macs = output.numel() * module.in_features
        per_child[child] = per_child.get(child, 0) + macs
    return hook


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def backbone_complexity(backbone_cfg: dict, input_size: int = 224,
                        num_classes: int = 1000) -> Dict[str, int]:
    """MACs and parameters of a backbone with the paper's classifier (Table 5 protocol)."""
    cfg = copy.deepcopy(backbone_cfg)
    cfg['init_cfg'] = None
    classifier = build_in_mmdet_scope(
        dict(type='ImageClassifier', backbone=cfg, num_classes=num_classes)).eval()
    macs, parts = count_macs(classifier, torch.zeros(1, 3, input_size, input_size))
    return dict(macs=macs, params=count_params(classifier),
                classifier_macs=parts.get('fc', 0))


def detector_complexity(model: nn.Module, input_hw: Sequence[int] = (800, 1200)
                        ) -> Dict[str, object]:
    """MACs of a built mmdet detector on one image of ``input_hw`` (padded to a
    multiple of 32, as the data preprocessor does), at test time.

    The count of the second stage depends on how many proposals the RPN keeps, so
    it is measured on a real forward pass; parts are reported per top-level module.
    """
    from .benchmark import make_inputs

    inputs, samples = make_inputs(1, input_hw, 'cpu')  # padded to 32, as the model runs
    torch.manual_seed(0)
    model = model.eval()
    macs, parts = count_macs(model, inputs, samples, mode='predict')
    return dict(macs=macs, params=count_params(model), parts=parts)


def shufflenet_v2_table() -> str:
    """ShuffleNet V2 and V2* at every width (224x224, classifier) beside paper Table 5."""
    from ..models.backbones.shufflenet_v2 import ARCH_CHANNELS
    from .paper import TABLE5

    lines = ['width  split     MFLOPs (paper)  params M (paper)  V2* MFLOPs (+extra)',
             '-----  --------  --------------  ----------------  -------------------']
    for wf in ARCH_CHANNELS:
        for split in ('official', 'even'):
            base = dict(type='ShuffleNetV2', widen_factor=wf, downsample_split=split)
            v2 = backbone_complexity(base)
            star = backbone_complexity(dict(base, star=True))
            paper_macs, paper_params = TABLE5[wf]
            lines.append(
                f'{wf:<5}  {split:<8}  {v2["macs"] / 1e6:6.1f} ({paper_macs:>3})    '
                f'{v2["params"] / 1e6:6.2f} ({paper_params})      '
                f'{star["macs"] / 1e6:6.1f} (+{(star["macs"] - v2["macs"]) / 1e6:.1f})')
    return '\n'.join(lines)
