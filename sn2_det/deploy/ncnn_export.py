"""ncnn writer: a backbone, or the dense part of Light-Head R-CNN with the numbers its
numpy post-processing needs, as an ncnn ``.param`` / ``.bin`` pair made by pnnx.

The model goes to ONNX first (:mod:`sn2_det.deploy.onnx_export`) and pnnx converts
that file (pnnx reads ONNX as well as TorchScript; from ONNX it needs nothing of the
torch that made it). Two settings of ours on top of pnnx's output:

- ``fp16=0``: pnnx stores the weights in the .bin as fp16 by default, which rounds
  every weight to 11 significant bits (relative error up to 2**-11 = 4.9e-4): that,
  not ncnn's fp32 arithmetic, is what puts ncnn's fp32 outputs 3e-4 to 8e-4 away from
  PyTorch's. With fp32 weights the difference is that of a reordered float32 sum
  (about 1e-6 relative). ``fp16_weights=True`` keeps pnnx's default (a .bin half as
  large).
- The blobs are renamed after the ONNX file (input ``input`` or ``image``, outputs
  ``out<i>`` or ``rpn_cls`` / ``rpn_reg`` / ``thin``; pnnx numbers them ``in0``,
  ``out0``, ...), and the Input layer states its shape (``0=W 1=H 2=C``), so the
  .param alone says what to feed.

A layer ncnn does not have (pnnx leaves ops it cannot map under their PyTorch or pnnx
names) is named in the error, with the layer's name in the .param.
"""
import os
import subprocess
import tempfile
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from . import runners
from .arm_benchmark import post_path, read_ncnn_param
from .comparison import (RTOL, backbone_input, output_differences,
                         torch_outputs, worst_output)
from .detector_graph import DenseDetector, WH_RATIO_CLIP
from .models import CLASSIFICATION_SHAPE
from .onnx_export import backbone_example, export_graph
from .pictures import toy_pictures
from ..utils.errors import ConfigError, ExportMismatchError, NcnnConversionError


def _pnnx():
    try:
        import pnnx
    except ImportError as error:
        raise ImportError('the ncnn export needs pnnx and ncnn: pip install -r '
                          'requirements/deploy.txt (or pip install .[deploy])') from error
    return pnnx.EXEC_PATH


def unknown_layers(param: str) -> List[Tuple[str, str]]:
    """(type, name) of every layer of ``param`` that ncnn cannot create."""
    import ncnn
    return [(kind, name) for kind, name, *_ in read_ncnn_param(param)
            if ncnn.layer_to_index(kind) < 0]


def convert_onnx(onnx_path: str, param: str, input_shape: Sequence[int],
                 fp16_weights: bool = False) -> str:
    """pnnx's conversion of ``onnx_path`` to ``param`` and the .bin beside it; pnnx's
    other files go to a temporary folder. Returns ``param``; raises
    NcnnConversionError naming the layers ncnn does not have."""
    executable = _pnnx()
    if not param.endswith('.param'):
        raise ConfigError(f'the ncnn file must end in .param, got {param}')
    param = os.path.abspath(param)
    os.makedirs(os.path.dirname(param), exist_ok=True)
    shape = ','.join(str(int(d)) for d in input_shape)
    with tempfile.TemporaryDirectory() as tmp:
        side = {key: os.path.join(tmp, name) for key, name in (
            ('pnnxparam', 'm.pnnx.param'), ('pnnxbin', 'm.pnnx.bin'),
            ('pnnxpy', 'm_pnnx.py'), ('pnnxonnx', 'm.pnnx.onnx'), ('ncnnpy', 'm_ncnn.py'))}
        args = [executable, os.path.abspath(onnx_path), f'inputshape=[{shape}]',
                f'fp16={int(bool(fp16_weights))}', f'ncnnparam={param}',
                f'ncnnbin={param[:-len(".param")]}.bin',
                *(f'{key}={value}' for key, value in side.items())]
        proc = subprocess.run(args, cwd=tmp, capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.isfile(param):
        raise NcnnConversionError(f'pnnx failed on {onnx_path} (exit {proc.returncode}): '
                                  f'{(proc.stdout + proc.stderr)[-2000:]}')
    unknown = unknown_layers(param)
    if unknown:
        raise NcnnConversionError(
            f'{onnx_path} converts to layers ncnn does not have: '
            + ', '.join(f'{kind} (layer {name})' for kind, name in unknown))
    return param


def rename_blobs(param: str, names: Dict[str, str], input_shape: Sequence[int]) -> None:
    """Rename blobs of ``param`` (``names``: pnnx's name -> ours) and give its Input
    layer the shape (N, C, H, W) = ``input_shape`` (ncnn keys 0=W 1=H 2=C)."""
    with open(param) as f:
        lines = f.read().splitlines()
    out = lines[:2]
    for kind, name, inputs, outputs, params in read_ncnn_param(param):
        inputs = [names.get(b, b) for b in inputs]
        outputs = [names.get(b, b) for b in outputs]
        if kind == 'Input':
            _, c, h, w = input_shape
            params = dict(params, **{'0': str(w), '1': str(h), '2': str(c)})
        out.append(' '.join([f'{kind:<24}', f'{name:<24}', str(len(inputs)),
                             str(len(outputs)), *inputs, *outputs,
                             *(f'{k}={v}' for k, v in params.items())]))
    with open(param, 'w') as f:
        f.write('\n'.join(out) + '\n')


def _write_ncnn(model: nn.Module, example, out: str, input_name: str,
                output_names: Sequence[str], fp16_weights: bool) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_graph(model, example, os.path.join(tmp, 'model.onnx'),
                                 input_name, output_names)
        convert_onnx(onnx_path, out, example.shape, fp16_weights)
    names = {'in0': input_name, **{f'out{i}': n for i, n in enumerate(output_names)}}
    rename_blobs(out, names, example.shape)
    return out


def export_backbone_ncnn(model: nn.Module, out: str,
                         shape: Sequence[int] = CLASSIFICATION_SHAPE,
                         fp16_weights: bool = False) -> str:
    """Write ``model`` (eval mode) at input (1, 3, H, W) to ``out`` (.param) and the
    .bin beside it: input ``input``, outputs ``out<i>`` after ``out_indices`` (as
    :func:`~sn2_det.deploy.onnx_export.export_backbone`). Returns ``out``."""
    x, names = backbone_example(model, shape)
    return _write_ncnn(model, x, out, 'input', names, fp16_weights)


def check_ncnn(model: nn.Module, param: str, rtol: float = RTOL, seed: int = 0,
               threads: int = 1) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Differences between ``model`` and ``param`` run by ncnn (every output
    extracted) on standard-normal noise of the .param's input shape, with ncnn's
    fp16 options off (``fp32``) and on (``fp16``): per output ``abs`` and ``rel``
    (:func:`~sn2_det.deploy.comparison.output_differences`). Raises
    ExportMismatchError when the fp32 run's relative difference exceeds ``rtol``."""
    nets = {label: runners.load(param, 'ncnn', threads, fp16)
            for label, fp16 in (('fp32', False), ('fp16', True))}
    x = backbone_input(nets['fp32'].inputs[0][1], seed)
    expected = torch_outputs(model, x)
    result = {label: output_differences(param, net.output_names, expected,
                                        runners.run_outputs(net, x))
              for label, net in nets.items()}
    name, worst = worst_output(result['fp32'], 'rel')
    if not worst <= rtol:
        raise ExportMismatchError(f'{param} differs from the PyTorch model with ncnn\'s '
                                  f'fp16 options off: max difference {worst:.3g} relative '
                                  f'(output {name}) exceeds {rtol:g}')
    return result


SUPPORTED_EXTRACTOR = ('PSRoIExtractor', 'align')


def post_parameters(dense: DenseDetector) -> Dict[str, np.ndarray]:
    """What :class:`~sn2_det.deploy.arm_benchmark.LightHeadPost` needs, from the
    detector's config and weights: anchors, the RPN and R-CNN test_cfg, the coders,
    PS-RoI Align's settings and the R-CNN subnet's FC layers. Raises ValueError naming
    the config key of anything the numpy port does not implement."""
    graph, detector = dense.graph, dense.detector
    roi_head = detector.roi_head
    extractor, head = roi_head.bbox_roi_extractor, roi_head.bbox_head
    kind = (type(extractor).__name__, getattr(extractor, 'mode', None))
    if kind[0] != SUPPORTED_EXTRACTOR[0]:
        raise ConfigError(f'roi_head.bbox_roi_extractor.type {kind[0]!r} is not supported '
                          f'by the ncnn detector; supported: {SUPPORTED_EXTRACTOR[0]!r}')
    if kind[1] != SUPPORTED_EXTRACTOR[1]:
        raise ConfigError(f'roi_head.bbox_roi_extractor.mode {kind[1]!r} is not supported '
                          f'by the ncnn detector; supported: {SUPPORTED_EXTRACTOR[1]!r}')
    if getattr(roi_head, 'with_shared_head', False):
        raise ConfigError('roi_head.shared_head is not supported by the ncnn detector')
    for key in ('num_shared_convs', 'num_cls_convs', 'num_cls_fcs', 'num_reg_convs',
                'num_reg_fcs'):
        if getattr(head, key, 0):
            raise ConfigError(f'roi_head.bbox_head.{key} must be 0 for the ncnn detector '
                              f'(it runs shared FC layers only), got {getattr(head, key)}')
    if getattr(head, 'with_avg_pool', False):
        raise ConfigError('roi_head.bbox_head.with_avg_pool is not supported by the ncnn '
                          'detector')
    for name, coder in (('rpn_head', detector.rpn_head.bbox_coder),
                        ('roi_head.bbox_head', head.bbox_coder)):
        if coder.add_ctr_clamp:
            raise ConfigError(f'{name}.bbox_coder.add_ctr_clamp is not supported by the '
                              f'ncnn detector')
    f32 = lambda x: np.asarray(x, np.float32)  # noqa: E731
    params = dict(
        anchors=f32(graph.anchors), img_shape=np.asarray(graph.img_shape, np.int64),
        rpn_topk=graph.rpn_topk, rpn_iou=graph.rpn_iou, rpn_max=graph.rpn_max,
        min_bbox_size=graph.min_bbox_size, score_thr=graph.score_thr,
        rcnn_iou=graph.rcnn_iou, rcnn_max=graph.rcnn_max,
        num_classes=head.num_classes, max_ratio=abs(np.log(WH_RATIO_CLIP)),
        rpn_means=f32(detector.rpn_head.bbox_coder.means),
        rpn_stds=f32(detector.rpn_head.bbox_coder.stds),
        rpn_clip=detector.rpn_head.bbox_coder.clip_border,
        rcnn_means=f32(head.bbox_coder.means), rcnn_stds=f32(head.bbox_coder.stds),
        rcnn_clip=head.bbox_coder.clip_border,
        roi_size=extractor.output_size, roi_channels=extractor.out_channels,
        spatial_scale=1.0 / extractor.featmap_strides[0],
        sampling_ratio=extractor.sampling_ratio, num_fcs=len(head.shared_fcs))
    layers = [(f'fc{i}', fc) for i, fc in enumerate(head.shared_fcs)]
    layers += [('cls', head.fc_cls), ('reg', head.fc_reg)]
    for name, layer in layers:
        params[f'{name}_weight'] = f32(layer.weight.detach())
        params[f'{name}_bias'] = f32(layer.bias.detach())
    return {key: np.asarray(value) for key, value in params.items()}


def export_detector_ncnn(detector: nn.Module, out: str, shape: Sequence[int],
                         fp16_weights: bool = False) -> str:
    """The whole Light-Head R-CNN for ncnn plus numpy: ``out`` (.param) and its .bin
    hold :class:`~sn2_det.deploy.detector_graph.DenseDetector` (input ``image``,
    outputs ``rpn_cls``, ``rpn_reg``, ``thin``), the ``.post.npz`` beside them
    :func:`post_parameters`. tools/arm_benchmark.py runs the three as one detector
    (outputs boxes, scores, labels). Returns ``out``."""
    dense = DenseDetector(detector, shape)
    params = post_parameters(dense)
    image = torch.from_numpy(toy_pictures(dense.graph.img_shape, 1)[0][0])[None]
    _write_ncnn(dense, image, out, 'image', DenseDetector.OUTPUTS, fp16_weights)
    np.savez(post_path(out), **params)
    return out
