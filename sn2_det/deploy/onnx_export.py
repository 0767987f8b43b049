"""ONNX export of a backbone alone, and its numerical check against PyTorch.

``export_backbone`` writes the backbone's forward pass (every output of its
``out_indices``, named ``out<i>``) at a fixed input size and batch; ``check_onnx``
runs the file with onnxruntime on a random standard-normal input (what an image
looks like after mean/std normalisation) and returns the largest absolute
difference from PyTorch, raising :class:`ONNXMismatchError` above ``atol``.

Backbones come from an mmdet config (its ``model.backbone``, built with the
config's ``init_cfg``) or from a name and width. The export uses torch's
TorchScript-based exporter (``dynamo=False``): torch >= 2.9 defaults to the
``torch.export``-based one, which needs the ``onnxscript`` package; our backbones
hold only convolutions, BN, ReLU / ReLU6, max- and average-pooling, additions,
concatenation and channel reshapes, which the TorchScript exporter covers at
opset 17.
"""
import logging
import os
import warnings
from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import MMLogger

from ..utils.config import build_in_mmdet_scope, read_config
from ..utils.validation import check_choice

ATOL = 1e-4
OPSET = 17
CLASSIFICATION_SHAPE = (224, 224)
DETECTION_SHAPE = (800, 1200)
BACKBONES = {'shufflenet_v2': 'ShuffleNetV2'}
SHUFFLENET_OUTPUTS = (0, 1, 2, 3)


class ONNXMismatchError(RuntimeError):
    """The ONNX model's outputs differ from the PyTorch model's."""


def _build(cfg: dict) -> nn.Module:
    """Build under the mmdet scope and initialise, without mmengine's per-parameter log."""
    model = build_in_mmdet_scope(cfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model.eval()


def backbone_from_config(config: str) -> nn.Module:
    """The ``model.backbone`` of an mmdet config file (after its ``custom_imports``),
    initialised, in eval mode."""
    cfg = read_config(config)
    backbone = cfg.get('model', {}).get('backbone')
    if not backbone:
        raise ValueError(f'config {config} has no model.backbone to export')
    return _build(backbone.to_dict() if hasattr(backbone, 'to_dict') else dict(backbone))


def backbone_from_name(name: str = 'shufflenet_v2', widen_factor: float = 1.0,
                       star: bool = False,
                       out_indices: Sequence[int] = SHUFFLENET_OUTPUTS) -> nn.Module:
    """A backbone by name (``shufflenet_v2``; ``star=True`` for V2*), every output by
    default (stage2, stage3, stage4, conv5), Kaiming-initialised, in eval mode."""
    check_choice('backbone', name, tuple(BACKBONES))
    return _build(dict(type=BACKBONES[name], widen_factor=widen_factor, star=star,
                       out_indices=tuple(out_indices)))


def check_shape(shape: Sequence[int]) -> Tuple[int, int]:
    """An export's input size: two positive ints (H, W), as a tuple."""
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)):
        raise ValueError(f'shape must be two positive ints (H, W), got {shape!r}')
    return tuple(shape)


def _check_size(shape: Sequence[int], batch: int) -> Tuple[int, int]:
    shape = check_shape(shape)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f'batch must be a positive int, got {batch!r}')
    return shape


def _as_tuple(outputs) -> tuple:
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


def _output_names(model: nn.Module, num_outputs: int) -> list:
    """``out<i>`` for each entry i of the model's ``out_indices`` (else its position)."""
    indices = getattr(model, 'out_indices', None)
    if indices is None or len(indices) != num_outputs:
        indices = range(num_outputs)
    return [f'out{i}' for i in indices]


def export_backbone(model: nn.Module, out: str, shape: Sequence[int] = CLASSIFICATION_SHAPE,
                    batch: int = 1, in_channels: int = 3, opset: int = OPSET) -> str:
    """Export ``model`` (eval mode) at input (batch, in_channels, H, W) to ``out``.

    The input is named ``input``, the outputs ``out<i>`` after ``out_indices``; all
    sizes are fixed. Returns ``out``.
    """
    h, w = _check_size(shape, batch)
    model.eval()
    x = torch.zeros(batch, in_channels, h, w)
    with torch.no_grad():
        names = _output_names(model, len(_as_tuple(model(x))))
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='You are using the legacy TorchScript',
                                category=DeprecationWarning)
        torch.onnx.export(model, (x,), out, dynamo=False, input_names=['input'],
                          output_names=names, opset_version=opset)
    return out


def check_onnx(model: nn.Module, onnx_path: str, atol: float = ATOL, seed: int = 0) -> float:
    """Max absolute difference between ``model`` and ``onnx_path`` run by onnxruntime.

    The input is standard-normal noise (``seed``) of the ONNX model's input shape.
    Raises ONNXMismatchError when the outputs differ in number or shape, or when the
    difference exceeds ``atol`` (or is not finite).
    """
    import onnxruntime as ort
    session = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValueError(f'{onnx_path} has {len(inputs)} inputs; a backbone has one')
    shape = inputs[0].shape
    if not all(isinstance(d, int) for d in shape):
        raise ValueError(f'{onnx_path} has dynamic input dims {shape}; export it with '
                         f'a fixed size')
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in _as_tuple(model.eval()(torch.from_numpy(x)))]
    got = session.run(None, {inputs[0].name: x})
    names = [o.name for o in session.get_outputs()]
    if len(got) != len(expected):
        raise ONNXMismatchError(f'{onnx_path} has {len(got)} outputs {names}, the '
                                f'PyTorch model {len(expected)}')
    diffs = {}
    for name, g, e in zip(names, got, expected):
        if g.shape != e.shape:
            raise ONNXMismatchError(f'{onnx_path} output {name} has shape {g.shape}, '
                                    f'PyTorch {e.shape}')
        diffs[name] = float(np.max(np.abs(g.astype(np.float64) - e))) if g.size else 0.0
    worst_name = max(diffs, key=lambda n: (np.isnan(diffs[n]), diffs[n]))
    worst = diffs[worst_name]
    if not worst <= atol:
        raise ONNXMismatchError(f'{onnx_path} differs from the PyTorch model: max abs '
                                f'difference {worst:.3g} (output {worst_name}) exceeds '
                                f'{atol:g}')
    return worst
