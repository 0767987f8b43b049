"""ONNX writer: a backbone alone, or the whole Light-Head R-CNN detector with its
post-processing (:class:`~sn2_det.deploy.detector_graph.ExportableDetector`).

``export_backbone`` writes the backbone's forward pass (every output of its
``out_indices``, named ``out<i>``) at a fixed input size and batch;
``export_detector`` the detector for input ``image`` (1, 3, H, W), outputs
``boxes``, ``scores``, ``labels``. The checks against PyTorch are in
:mod:`sn2_det.deploy.comparison`.

The export uses torch's TorchScript-based exporter (``dynamo=False``): torch >= 2.9
defaults to the ``torch.export``-based one, which needs the ``onnxscript`` package;
our backbones hold only convolutions, BN, ReLU / ReLU6, max- and average-pooling,
additions, concatenation and channel reshapes, which the TorchScript exporter covers
at opset 17.
"""
import os
import warnings
from typing import Sequence, Tuple

import torch
import torch.nn as nn

from .comparison import _as_tuple
from .detector_graph import OUTPUT_NAMES, ExportableDetector
from .models import CLASSIFICATION_SHAPE, check_shape
from .pictures import toy_pictures
from ..utils.errors import ConfigError

OPSET = 17


def _check_size(shape: Sequence[int], batch: int) -> Tuple[int, int]:
    shape = check_shape(shape)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f'batch must be a positive int, got {batch!r}')
    return shape


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
    x, names = backbone_example(model, shape, batch, in_channels)
    return export_graph(model, x, out, 'input', names, opset)


def backbone_example(model: nn.Module, shape: Sequence[int], batch: int = 1,
                     in_channels: int = 3) -> Tuple[torch.Tensor, list]:
    """What a backbone export traces: zeros of (batch, in_channels, H, W), the size
    checked, and the output names ``out<i>`` (``model`` put in eval mode)."""
    h, w = _check_size(shape, batch)
    model.eval()
    x = torch.zeros(batch, in_channels, h, w)
    with torch.no_grad():
        names = _output_names(model, len(_as_tuple(model(x))))
    return x, names


def export_graph(model: nn.Module, example: torch.Tensor, out: str, input_name: str,
                 output_names: Sequence[str], opset: int = OPSET, **kwargs) -> str:
    """``torch.onnx.export`` of ``model`` traced on ``example``, warnings of the
    TorchScript exporter and of tracing data-dependent code silenced. Returns ``out``."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='Constant folding - Only steps=1')
        warnings.filterwarnings('ignore', message='You are using the legacy TorchScript',
                                category=DeprecationWarning)
        torch.onnx.export(model, (example,), out, dynamo=False, input_names=[input_name],
                          output_names=list(output_names), opset_version=opset, **kwargs)
    return out


def export_detector(detector: nn.Module, out: str, shape: Sequence[int],
                    opset: int = OPSET) -> str:
    """Write ``detector`` (a LightHeadRCNN) with its post-processing to ``out`` for
    input ``image`` (1, 3, H, W), outputs ``boxes``, ``scores``, ``labels``. Returns
    ``out``."""
    model = ExportableDetector(detector, shape)
    image = torch.from_numpy(toy_pictures(model.img_shape, 1)[0][0])[None]
    return export_graph(model, image, out, 'image', OUTPUT_NAMES, opset,
                        dynamic_axes={name: {0: 'detections'} for name in OUTPUT_NAMES})
