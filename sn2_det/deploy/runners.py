"""Running exported files from Python: onnxruntime, ncnn and OpenVINO through the one
torch-free module a board also runs (:mod:`sn2_det.deploy.arm_benchmark`, copied as
tools/arm_benchmark.py), so the checks run exactly what the board runs."""
from typing import List, Optional, Tuple

import numpy as np

from . import arm_benchmark as board
from ..utils.errors import DataError


def load(path: str, runtime: Optional[str] = None, threads: int = 1, fp16: bool = False):
    """A loaded model (``run(feeds)`` -> every output; ``inputs``, ``output_names``,
    ``precision``): ncnn for a .param (the whole detector where a .post.npz lies
    beside it), else onnxruntime, unless ``runtime`` says."""
    return board.load_model(str(path), runtime, threads, fp16)


def run_outputs(model, x: np.ndarray) -> List[np.ndarray]:
    """Every output of a one-input ``model`` (from :func:`load`) for ``x``."""
    if len(model.inputs) != 1:
        raise DataError(f'{model.path} has {len(model.inputs)} inputs; expected one')
    return model.run({model.inputs[0][0]: np.ascontiguousarray(x, np.float32)})


def run_detector(model, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, scores, labels of a whole-detector ``model`` (from :func:`load`) for one
    (3, H, W) image of raw pixels."""
    boxes, scores, labels = model.run(
        {'image': np.ascontiguousarray(image, dtype=np.float32)[None]})
    return boxes, scores, labels


def run_onnx_detector(onnx_path: str, image: np.ndarray, session=None):
    """Detections of the exported ONNX file for one (3, H, W) image (onnxruntime, CPU;
    ``session``: an onnxruntime session or a loaded model to reuse)."""
    if session is None:
        session = load(onnx_path, 'onnxruntime')
    if hasattr(session, 'get_outputs') and not hasattr(session, 'runtime'):
        feed = np.ascontiguousarray(image, dtype=np.float32)[None]
        return tuple(session.run(['boxes', 'scores', 'labels'], {'image': feed}))
    return run_detector(session, image)
