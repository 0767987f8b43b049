"""Export a backbone, or the whole Light-Head R-CNN detector, to ncnn (.param / .bin,
made by pnnx from our ONNX export) and check it against PyTorch with ncnn's Python
runtime. The arguments are those of tools/export_onnx.py:

    python tools/export_ncnn.py --backbone shufflenet_v2 --widen-factor 1.0 [--star] \\
        --shape 224 224 --out sn2_1.0x_224.ncnn.param
    python tools/export_ncnn.py CONFIG --shape 800 1200 --out b.ncnn.param  # model.backbone
    python tools/export_ncnn.py --detector CONFIG [--checkpoint CKPT] --shape 800 1200 \\
        --out lighthead.ncnn.param                       # + lighthead.ncnn.post.npz

Backbones: every output of out_indices is extracted (ncnn computes only what the
extracted blobs need). Prints the max difference from PyTorch per output, absolute
and relative to the output's largest magnitude, with ncnn's fp16 options off and on;
exits with status 1 when the fp32 run exceeds --rtol (1e-3). pnnx's default of fp16
weights in the .bin (the source of a 3e-4 to 8e-4 fp32 difference) is off unless
--fp16-weights. A layer ncnn does not have is named, and the tool exits with status 1.

Detector: ncnn runs the dense part (preprocessing, backbone, thin map, RPN convs),
numpy the rest (tools/arm_benchmark.py: proposals, NMS, PS-RoI Align, R-CNN subnet);
the check runs mmdet and that pair on --check-images toy-shapes pictures: the
detections must match (boxes 1e-3 relative, scores 1e-4) or, where NMS ties differ,
the mmAP to 0.1 point. Time the files with tools/arm_benchmark.py (docs/deploy.md).
"""
import argparse
import sys

from sn2_det.deploy import (RTOL, ExportMismatchError, check_detector, detector_from_config,
                            toy_pictures)
from sn2_det.deploy.export_cli import (add_model_arguments, build_backbone, model_shape,
                                       print_detector_check)
from sn2_det.deploy.ncnn_export import (NcnnConversionError, check_ncnn,
                                        export_backbone_ncnn, export_detector_ncnn)
from sn2_det.utils.errors import SN2DetError


def _detector(parser, args, shape):
    try:
        model = detector_from_config(args.detector, args.checkpoint)
        path = export_detector_ncnn(model, args.out, shape, args.fp16_weights)
    except SN2DetError as error:
        parser.error(str(error))
    except NcnnConversionError as error:
        sys.exit(f'FAILED: {error}')
    print(f'wrote {path} (+ .bin, .post.npz): input image 1x3x{shape[0]}x{shape[1]} '
          f'(raw pixels), outputs boxes, scores, labels')
    if args.checkpoint is None:
        print('note: no --checkpoint, so the weights are random: NMS picks among tied '
              'boxes arbitrarily and the check can only compare mmAP')
    try:
        result = check_detector(model, path, toy_pictures(shape, args.check_images),
                                runtime='ncnn')
    except ExportMismatchError as error:
        sys.exit(f'FAILED: {error}')
    print_detector_check(result, 'ncnn')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument('--batch', type=int, default=1,
                        help='batch size: 1, the only one ncnn runs')
    parser.add_argument('--out', required=True, help='the .param file to write (the .bin '
                                                     'goes beside it)')
    parser.add_argument('--rtol', type=float, default=RTOL,
                        help='backbones: largest max difference relative to the output '
                             'accepted with fp16 off (default 1e-3)')
    parser.add_argument('--fp16-weights', action='store_true',
                        help="store the weights as fp16 (pnnx's default; ours is fp32)")
    args = parser.parse_args(argv)
    shape = model_shape(parser, args)
    if args.batch != 1:
        parser.error(f'--batch must be 1: ncnn runs one image at a time, got {args.batch}')
    if not args.out.endswith('.param'):
        parser.error(f'--out must end in .param, got {args.out}')
    if args.detector:
        return _detector(parser, args, shape)
    try:
        model = build_backbone(args)
        path = export_backbone_ncnn(model, args.out, shape, args.fp16_weights)
    except SN2DetError as error:
        parser.error(str(error))
    except NcnnConversionError as error:
        sys.exit(f'FAILED: {error}')
    print(f'wrote {path} (+ .bin): input 1x3x{shape[0]}x{shape[1]}'
          f'{", fp16 weights" if args.fp16_weights else ""}')
    try:
        result = check_ncnn(model, path, rtol=args.rtol)
    except ExportMismatchError as error:
        sys.exit(f'FAILED: {error}')
    print('max difference from PyTorch per output (ncnn; relative = over the output\'s '
          'largest magnitude):')
    for name in result['fp32']:
        fp32, fp16 = result['fp32'][name], result['fp16'][name]
        print(f'  {name}: fp16 options off {fp32["abs"]:.3g} abs, {fp32["rel"]:.3g} '
              f'relative; on {fp16["abs"]:.3g} abs, {fp16["rel"]:.3g} relative')
    worst = max(d['rel'] for d in result['fp32'].values())
    print(f'max relative difference with fp16 options off: {worst:.3g} <= {args.rtol:g}')


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
