"""Deployment of backbones and of the whole Light-Head R-CNN detector (docs/deploy.md).

One module per concern: ``models`` (what is exported: a backbone by name or config, a
detector from its config and checkpoint), ``detector_graph`` (the detector as one
graph with its NMS op, and its dense part), one writer per format (``onnx_export``,
``ncnn_export``; ``quantization`` for int8 ONNX), ``runners`` (onnxruntime, ncnn,
OpenVINO through ``arm_benchmark``, the torch-free file a board runs), ``comparison``
(outputs and detections against PyTorch) and ``pictures`` (test images).
"""
from .comparison import (ATOL, RTOL, ExportMismatchError, check_detector, check_onnx,
                         compare_detectors, detection_map, match_detections,
                         mmdet_detections, output_differences)
from .detector_graph import DenseDetector, ExportableDetector, NonMaxSuppression
from .models import (BACKBONES, CLASSIFICATION_SHAPE, DETECTION_SHAPE,
                     backbone_from_config, backbone_from_name, detector_from_config)
from .onnx_export import export_backbone, export_detector
from .pictures import toy_pictures
from .runners import run_detector, run_onnx_detector

__all__ = ['ATOL', 'BACKBONES', 'CLASSIFICATION_SHAPE', 'DETECTION_SHAPE', 'RTOL',
           'DenseDetector', 'ExportableDetector', 'NonMaxSuppression',
           'ExportMismatchError', 'backbone_from_config', 'backbone_from_name',
           'check_detector', 'check_onnx', 'compare_detectors', 'detection_map',
           'detector_from_config', 'export_backbone', 'export_detector',
           'match_detections', 'mmdet_detections', 'output_differences',
           'run_detector', 'run_onnx_detector', 'toy_pictures']
