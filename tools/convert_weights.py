"""Convert a public ImageNet ShuffleNet V2 checkpoint for sn2_det's backbone.

    python tools/convert_weights.py shufflenetv2_x1-5666bf0f80.pth sn2_x1.0_tv.pth
    python tools/convert_weights.py ShuffleNetV2.1.0x.pth.tar sn2_x1.0_official.pth

Layouts (detected from the keys, or forced with --layout): the authors'
megvii-model/ShuffleNet-Series code, torchvision's shufflenet_v2_x*, mmpretrain's.
Use the result with ``backbone=dict(..., init_cfg=dict(type='Pretrained',
checkpoint='sn2_x1.0_tv.pth'))`` and the printed backbone and data_preprocessor keys.
"""
import argparse

from sn2_det.models.backbones.shufflenet_v2_weights import LAYOUTS, convert_checkpoint_file


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='public checkpoint (.pth / .pth.tar)')
    parser.add_argument('dst', help='output checkpoint for ShuffleNetV2')
    parser.add_argument('--layout', choices=LAYOUTS, help='source layout (default: detect)')
    args = parser.parse_args(argv)
    meta = convert_checkpoint_file(args.src, args.dst, args.layout)
    print(f'converted {args.src} ({meta["source_layout"]} layout) -> {args.dst}')
    print(f'backbone keys it needs:  {meta["backbone"]}')
    print(f'input it was trained on: {meta["data_preprocessor"]}')


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
