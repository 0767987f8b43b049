"""The command line that tools/export_onnx.py and tools/export_ncnn.py share: what is
exported (a config's backbone, a backbone by name, or the whole detector), and the
printed result of a detector's check against mmdet."""
from .models import (BACKBONES, CLASSIFICATION_SHAPE, DETECTION_SHAPE, backbone_from_config,
                     backbone_from_name)


def add_model_arguments(parser) -> None:
    """The positional CONFIG and the flags that choose and size the exported model."""
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


def model_shape(parser, args) -> tuple:
    """Checks the model flags together (a usage error names the bad one) and returns
    the input size (H, W)."""
    if sum(x is not None for x in (args.config, args.backbone, args.detector)) != 1:
        parser.error('give either a CONFIG or --backbone NAME (not both), or '
                     '--detector CONFIG alone')
    if args.detector is None and args.checkpoint is not None:
        parser.error('--checkpoint goes with --detector')
    if args.check_images < 1:
        parser.error(f'--check-images must be a positive int, got {args.check_images}')
    default = CLASSIFICATION_SHAPE if args.backbone else DETECTION_SHAPE
    return tuple(args.shape) if args.shape else default


def build_backbone(args):
    """The backbone the flags name: a config's ``model.backbone`` or one by name."""
    if args.config:
        return backbone_from_config(args.config)
    return backbone_from_name(args.backbone, args.widen_factor, args.star)


def print_detector_check(result: dict, runtime: str) -> None:
    """The detections' agreement with mmdet, as ``check_detector`` found it."""
    matched = result['images'] - result['differing']
    print(f'check on {result["images"]} toy-shapes pictures, {result["detections"]} '
          f'detections (mmdet)')
    if matched:
        print(f'{matched} match: max box difference {result["box_rel"]:.3g} relative '
              f'<= 0.001, max score difference {result["score_diff"]:.3g} <= 0.0001')
    if result['differing']:
        print(f'{result["differing"]} differ (NMS ties): mmAP mmdet '
              f'{result["map_expected"]:.4f}, {runtime} {result["map_got"]:.4f}, '
              f'within 0.001')
