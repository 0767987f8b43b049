"""Deployment: ONNX export of backbones and of the whole Light-Head R-CNN detector,
and their numerical checks against PyTorch (onnxruntime)."""
from .detector_export import (ExportableDetector, NonMaxSuppression, check_detector,
                              compare_detectors, detection_map, detector_from_config,
                              export_detector, match_detections, mmdet_detections,
                              run_onnx_detector, toy_pictures)
from .onnx_export import (ATOL, BACKBONES, CLASSIFICATION_SHAPE, DETECTION_SHAPE,
                          ONNXMismatchError, backbone_from_config, backbone_from_name,
                          check_onnx, export_backbone)

__all__ = ['ATOL', 'BACKBONES', 'CLASSIFICATION_SHAPE', 'DETECTION_SHAPE',
           'ExportableDetector', 'NonMaxSuppression', 'ONNXMismatchError',
           'backbone_from_config', 'backbone_from_name', 'check_detector',
           'check_onnx', 'compare_detectors', 'detection_map', 'detector_from_config',
           'export_backbone', 'export_detector', 'match_detections',
           'mmdet_detections', 'run_onnx_detector', 'toy_pictures']
