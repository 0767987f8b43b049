"""int8 ONNX: post-training static quantisation with onnxruntime's tools.

``quantize_onnx`` calibrates activation ranges (MinMax) on feeds made from images,
then writes a QDQ model: weights int8 per output channel (ShuffleNet's depthwise
convolutions have very different ranges per channel), activations uint8 (the u8s8
kernels onnxruntime runs fastest on x86-64 and aarch64). Only the op types in
``op_types`` are quantised (convolutions and fully connected layers by default): in
the whole detector, box decoding, top-k, NMS and the PS-RoI Align gather stay fp32,
where int8 would move boxes. :func:`fp32_nodes` says which nodes stayed fp32.

Images: a backbone's input is normalised as the detector's data preprocessor does
(BGR to RGB, ImageNet mean and std by default); the whole detector's input ``image``
takes raw pixels (it normalises inside).
"""
import os
from collections import Counter
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..utils.errors import DataError, MissingFileError, SN2DetError


class QuantizationError(SN2DetError, ValueError):
    """A quantisation request that cannot be met, e.g. a node to keep in fp32 that the
    model does not have."""


# DetDataPreprocessor of configs/_base_/lighthead_rcnn_coco.py (RGB order)
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
OP_TYPES = ('Conv', 'Gemm', 'MatMul')


def _quantization():
    from onnxruntime import quantization
    return quantization


def model_input(path: str) -> Tuple[str, List[int]]:
    """The one input of an ONNX file: name and fixed dims."""
    import onnxruntime as ort
    if not os.path.isfile(path):
        raise MissingFileError(f'ONNX file not found: {path}')
    try:
        session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    except Exception as err:  # onnxruntime's own exception types, one per cause
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f'{path} is not an ONNX model onnxruntime can load: {reason}') \
            from err
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise DataError(f'{path} has {len(inputs)} inputs; quantisation here handles one')
    dims = inputs[0].shape
    if not all(isinstance(d, int) and d > 0 for d in dims) or len(dims) != 4:
        raise DataError(f'{path} has input {inputs[0].name} of shape {dims}; a fixed '
                        f'(1, 3, H, W) is needed')
    return inputs[0].name, dims


def feeds_from_images(path: str, images: Sequence[np.ndarray], mean=MEAN, std=STD,
                      bgr_to_rgb: bool = True) -> List[Dict[str, np.ndarray]]:
    """Calibration feeds for the ONNX file ``path`` from (3, H, W) BGR pixel images of
    its input size: raw pixels for an input named ``image`` (the whole detector),
    else normalised (channel flip, ``mean``, ``std``)."""
    name, dims = model_input(path)
    feeds = []
    for image in images:
        if tuple(image.shape) != tuple(dims[1:]):
            raise DataError(f'calibration image of shape {image.shape}, the model '
                            f'takes {dims[1:]}')
        x = np.asarray(image, np.float32)
        if name != 'image':
            if bgr_to_rgb:
                x = x[::-1]
            x = (x - np.float32(mean).reshape(3, 1, 1)) / np.float32(std).reshape(3, 1, 1)
        feeds.append({name: np.ascontiguousarray(x[None], np.float32)})
    return feeds


def fp32_nodes(path: str) -> List[Tuple[str, str]]:
    """(op type, name) of the nodes of a QDQ model that compute in fp32: every node
    but the Quantize/DequantizeLinear pairs and the Constants none of whose inputs
    comes from a DequantizeLinear."""
    import onnx
    graph = onnx.load(path).graph
    dequantized = {out for node in graph.node if node.op_type == 'DequantizeLinear'
                   for out in node.output}
    return [(node.op_type, node.name) for node in graph.node
            if node.op_type not in ('QuantizeLinear', 'DequantizeLinear', 'Constant')
            and not any(i in dequantized for i in node.input)]


class _Reader:
    def __init__(self, feeds):
        self.feeds = iter(feeds)

    def get_next(self):
        return next(self.feeds, None)


def node_names(path: str) -> List[str]:
    """The names of the nodes of the ONNX file ``path``, in graph order."""
    import onnx
    return [node.name for node in onnx.load(path).graph.node]


def quantize_onnx(path: str, out: str, feeds: Sequence[Dict[str, np.ndarray]],
                  op_types: Sequence[str] = OP_TYPES, per_channel: bool = True,
                  keep_fp32: Sequence[str] = ()) -> dict:
    """Quantise the ONNX file ``path`` to ``out`` (QDQ, int8 weights, uint8
    activations, MinMax calibration on ``feeds``), but the nodes named in
    ``keep_fp32``. Returns ``out``, the calibration count and the fp32 nodes
    (:func:`fp32_nodes`) with their count per op type."""
    if not feeds:
        raise DataError('quantisation needs at least one calibration feed')
    unknown = sorted(set(keep_fp32) - set(node_names(path)))
    if unknown:
        raise QuantizationError(f'{path} has no node(s) named {unknown} (keep_fp32 takes '
                                f'node names, as the fp32 list prints them)')
    q = _quantization()
    reader = type('CalibrationReader', (_Reader, q.CalibrationDataReader), {})(feeds)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    q.quantize_static(path, out, reader, quant_format=q.QuantFormat.QDQ,
                      op_types_to_quantize=list(op_types), per_channel=per_channel,
                      activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                      calibrate_method=q.CalibrationMethod.MinMax,
                      nodes_to_exclude=list(keep_fp32))
    stayed = fp32_nodes(out)
    return dict(out=out, calibration_images=len(feeds), fp32_nodes=stayed,
                fp32_ops=dict(Counter(op for op, _ in stayed)))
