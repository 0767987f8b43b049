"""Deployment: ONNX export of backbones and their numerical check (onnxruntime)."""
from .onnx_export import (ATOL, BACKBONES, CLASSIFICATION_SHAPE, DETECTION_SHAPE,
                          ONNXMismatchError, backbone_from_config, backbone_from_name,
                          check_onnx, export_backbone)

__all__ = ['ATOL', 'BACKBONES', 'CLASSIFICATION_SHAPE', 'DETECTION_SHAPE',
           'ONNXMismatchError', 'backbone_from_config', 'backbone_from_name',
           'check_onnx', 'export_backbone']
