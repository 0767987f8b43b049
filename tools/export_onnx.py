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

Detector (issue 5): one input, image (1, 3, H, W), raw pixels resized to H x W;
outputs boxes, scores, labels, with the RPN, PS-RoI Align and NMS in the graph
(sn2_det.deploy.detector_graph). The check runs mmdet and onnxruntime on
--check-images generated toy-shapes pictures: the detections must match (boxes 1e-3
relative, scores 1e-4), or, where NMS ties differ, the mmAP to 0.1 point; exits with
status 1 otherwise. Time the file with tools/arm_benchmark.py (docs/arm.md).
"""
import argparse
import sys

from sn2_det.deploy import (ATOL, BACKBONES, CLASSIFICATION_SHAPE, DETECTION_SHAPE,
                            ONNXMismatchError, backbone_from_config, backbone_from_name,
                            check_detector, check_onnx, detector_from_config,
                            export_backbone, export_detector, toy_pictures)


def _detector(parser, args, shape):
    if args.batch != 1:
        parser.error('--batch must be 1 with --detector (one image a run)')
    try:
        model = detector_from_config(args.detector, args.checkpoint)
        path = export_detector(model, args.out, shape)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(f'wrote {path}: input image 1x3x{shape[0]}x{shape[1]} (raw pixels), outputs '
          f'boxes, scores, labels')
    if args.checkpoint is None:
        print('note: no --checkpoint, so the weights are random: class scores are all '
              'nearly equal and NMS picks among tied boxes arbitrarily; the check can '
              'then only compare mmAP (about 0 for both)')
    try:
        result = check_detector(model, path, toy_pictures(shape, args.check_images))
    except ONNXMismatchError as error:
        sys.exit(f'FAILED: {error}')
    matched = result['images'] - result['differing']
    print(f'check on {result["images"]} toy-shapes pictures, {result["detections"]} '
          f'detections (mmdet)')
    if matched:
        print(f'{matched} match: max box difference {result["box_rel"]:.3g} relative '
              f'<= 0.001, max score difference {result["score_diff"]:.3g} <= 0.0001')
    if result['differing']:
        print(f'{result["differing"]} differ (NMS ties): mmAP mmdet '
              f'{result["map_expected"]:.4f}, onnxruntime {result["map_got"]:.4f}, '
              f'within 0.001')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='an mmdet config: exports model.backbone')
    parser.add_argument('--backbone', choices=tuple(BACKBONES),
                        help='a backbone by name instead of a config')
    parser.add_argument('--detector', metavar='CONFIG',
                        help='a Light-Head R-CNN config: exports the whole detector')
    parser.add_argument('--checkpoint', help='with --detector: trained weights')
    parser.add_argument('--check-images', type=int, default=2,
                        help='with --detector: pictures the check runs on (default 2)')
    parser.add_argument('--widen-factor', type=float, default=1.0,
                        help='with --backbone: 0.5, 1.0, 1.5 or 2.0')
    parser.add_argument('--star', action='store_true', help='with --backbone: V2*')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default 800 1200 for a config or --detector, '
                             '224 224 for --backbone)')
    parser.add_argument('--batch', type=int, default=1, help='batch size (default 1)')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--atol', type=float, default=ATOL,
                        help='backbones: largest max abs difference accepted (default '
                             '1e-4)')
    args = parser.parse_args(argv)
    if sum(x is not None for x in (args.config, args.backbone, args.detector)) != 1:
        parser.error('give either a CONFIG or --backbone NAME (not both), or '
                     '--detector CONFIG alone')
    if args.detector is None and args.checkpoint is not None:
        parser.error('--checkpoint goes with --detector')
    if args.check_images < 1:
        parser.error(f'--check-images must be a positive int, got {args.check_images}')
    default = CLASSIFICATION_SHAPE if args.backbone else DETECTION_SHAPE
    shape = tuple(args.shape) if args.shape else default
    if args.detector:
        return _detector(parser, args, shape)
    try:
        if args.config:
            model = backbone_from_config(args.config)
        else:
            model = backbone_from_name(args.backbone, args.widen_factor, args.star)
        path = export_backbone(model, args.out, shape, args.batch)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(f'wrote {path}: input {args.batch}x3x{shape[0]}x{shape[1]}')
    try:
        diff = check_onnx(model, path, atol=args.atol)
    except ONNXMismatchError as error:
        sys.exit(f'FAILED: {error}')
    print(f'max abs difference from PyTorch (onnxruntime): {diff:.3g} <= {args.atol:g}')


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
