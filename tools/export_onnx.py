"""Export a backbone, or the whole Light-Head R-CNN detector, to ONNX and check it
against PyTorch with onnxruntime.

    python tools/export_onnx.py CONFIG --shape 800 1200 --out sn2.onnx       # model.backbone
    python tools/export_onnx.py --backbone shufflenet_v2 --widen-factor 1.0 [--star] \\
        --shape 224 224 --out sn2_1.0x_224.onnx
    python tools/export_onnx.py --detector CONFIG [--checkpoint CKPT] --shape 800 1200 \\
        --out lighthead.onnx                                                 # the detector

Backbones: every output of the backbone's out_indices is exported, named out<i>
(ShuffleNet V2 by name: out0..out3 = stage2, stage3, stage4, conv5). The default size
is 800x1200 for a config (detection) and 224x224 for a name (classification). Prints
the max abs difference from PyTorch; exits with status 1 when it exceeds --atol (1e-4).

Detector: one input, image (1, 3, H, W), raw pixels resized to H x W;
outputs boxes, scores, labels, with the RPN, PS-RoI Align and NMS in the graph
(sn2_det.deploy.detector_graph). The check runs mmdet and onnxruntime on
--check-images generated toy-shapes pictures: the detections must match (boxes 1e-3
relative, scores 1e-4), or, where NMS ties differ, the mmAP to 0.1 point; exits with
status 1 otherwise. Time the file with tools/arm_benchmark.py (docs/deploy.md).
"""
import argparse
import sys

from sn2_det.deploy import (ATOL, ExportMismatchError, check_detector, check_onnx,
                            detector_from_config, export_backbone, export_detector,
                            toy_pictures)
from sn2_det.deploy.export_cli import (add_model_arguments, build_backbone, model_shape,
                                       print_detector_check)
from sn2_det.utils.errors import SN2DetError


def _detector(parser, args, shape):
    if args.batch != 1:
        parser.error('--batch must be 1 with --detector (one image a run)')
    try:
        model = detector_from_config(args.detector, args.checkpoint)
        path = export_detector(model, args.out, shape)
    except SN2DetError as error:
        parser.error(str(error))
    print(f'wrote {path}: input image 1x3x{shape[0]}x{shape[1]} (raw pixels), outputs '
          f'boxes, scores, labels')
    if args.checkpoint is None:
        print('note: no --checkpoint, so the weights are random: class scores are all '
              'nearly equal and NMS picks among tied boxes arbitrarily; the check can '
              'then only compare mmAP (about 0 for both)')
    try:
        result = check_detector(model, path, toy_pictures(shape, args.check_images))
    except ExportMismatchError as error:
        sys.exit(f'FAILED: {error}')
    print_detector_check(result, 'onnxruntime')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument('--batch', type=int, default=1, help='batch size (default 1)')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--atol', type=float, default=ATOL,
                        help='backbones: largest max abs difference accepted (default '
                             '1e-4)')
    args = parser.parse_args(argv)
    shape = model_shape(parser, args)
    if args.detector:
        return _detector(parser, args, shape)
    try:
        model = build_backbone(args)
        path = export_backbone(model, args.out, shape, args.batch)
    except SN2DetError as error:
        parser.error(str(error))
    print(f'wrote {path}: input {args.batch}x3x{shape[0]}x{shape[1]}')
    try:
        diff = check_onnx(model, path, atol=args.atol)
    except ExportMismatchError as error:
        sys.exit(f'FAILED: {error}')
    print(f'max abs difference from PyTorch (onnxruntime): {diff:.3g} <= {args.atol:g}')


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
