"""Count multiply-adds (the paper's FLOPs) and parameters.

    python tools/count_flops.py                      # ShuffleNet V2 / V2*, every width, vs Table 5
    python tools/count_flops.py CONFIG               # a detector config at 800x1200
    python tools/count_flops.py CONFIG --shape 600 1000
    python tools/count_flops.py CONFIG --backbone-only   # its backbone, 224x224 + classifier
"""
import argparse

from sn2_det.analysis.complexity import (backbone_complexity, detector_complexity,
                                         shufflenet_v2_table)
from sn2_det.models.backbones.table7 import classifier_cfg


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='an mmdet config (omit for the table)')
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1200),
                        metavar=('H', 'W'), help='detector input size')
    parser.add_argument('--backbone-only', action='store_true',
                        help="the config's backbone with the 1000-way classifier at 224")
    args = parser.parse_args(argv)
    if args.config is None:
        print(shufflenet_v2_table())
        return
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    if args.backbone_only:
        result = backbone_complexity(classifier_cfg(cfg.model.backbone.to_dict()))
        print(f'{cfg.model.backbone.type} at 224x224 with classifier: '
              f'{result["macs"] / 1e6:.1f} MFLOPs, {result["params"] / 1e6:.2f} M params')
        return
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg.model.setdefault('backbone', {})['init_cfg'] = None
    result = detector_complexity(MODELS.build(cfg.model), args.shape)
    h, w = args.shape
    print(f'{args.config} at {h}x{w}: {result["macs"] / 1e9:.2f} GFLOPs, '
          f'{result["params"] / 1e6:.2f} M params')
    for name, macs in sorted(result['parts'].items(), key=lambda kv: -kv[1]):
        print(f'  {name:<16} {macs / 1e9:8.2f} GFLOPs')


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
