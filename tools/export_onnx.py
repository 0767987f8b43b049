"""Export a backbone to ONNX and check it against PyTorch with onnxruntime.

    python tools/export_onnx.py CONFIG --shape 800 1200 --out sn2.onnx       # model.backbone
    python tools/export_onnx.py --backbone shufflenet_v2 --widen-factor 1.0 [--star] \\
        --shape 224 224 --out sn2_1.0x_224.onnx

Every output of the backbone's out_indices is exported, named out<i> (ShuffleNet V2
by name: out0..out3 = stage2, stage3, stage4, conv5). The default size is 800x1200
for a config (detection) and 224x224 for a name (classification). Prints the max abs
difference from PyTorch; exits with status 1 when it exceeds --atol (1e-4). Time the
file with tools/arm_benchmark.py (docs/arm.md).
"""
import argparse
import sys

from sn2_det.deploy import (ATOL, BACKBONES, CLASSIFICATION_SHAPE, DETECTION_SHAPE,
                            ONNXMismatchError, backbone_from_config, backbone_from_name,
                            check_onnx, export_backbone)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='an mmdet config: exports model.backbone')
    parser.add_argument('--backbone', choices=tuple(BACKBONES),
                        help='a backbone by name instead of a config')
    parser.add_argument('--widen-factor', type=float, default=1.0,
                        help='with --backbone: 0.5, 1.0, 1.5 or 2.0')
    parser.add_argument('--star', action='store_true', help='with --backbone: V2*')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default 800 1200 for a config, 224 224 for '
                             '--backbone)')
    parser.add_argument('--batch', type=int, default=1, help='batch size (default 1)')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--atol', type=float, default=ATOL,
                        help='largest max abs difference accepted (default 1e-4)')
    args = parser.parse_args(argv)
    if (args.config is None) == (args.backbone is None):
        parser.error('give either a CONFIG or --backbone NAME (not both)')
    try:
        if args.config:
            model = backbone_from_config(args.config)
        else:
            model = backbone_from_name(args.backbone, args.widen_factor, args.star)
        default = DETECTION_SHAPE if args.config else CLASSIFICATION_SHAPE
        shape = tuple(args.shape) if args.shape else default
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
    main()
