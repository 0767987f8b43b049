"""Extract the backbone of an ImageNet-pretrained classifier for a detector.

    python tools/extract_backbone.py work_dirs/shufflenet_v2_1.0x_imagenet/epoch_240.pth \
        sn2_1.0x_imagenet.pth

Then set the detector's ``model.backbone.init_cfg`` to
``dict(type='Pretrained', checkpoint='sn2_1.0x_imagenet.pth')`` (docs/table7.md).
"""
import argparse

from sn2_det.apis.extract_backbone import extract_backbone


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='classifier checkpoint written by tools/train.py')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument('--config', help='the training config (default: the one stored '
                                         'in the checkpoint)')
    args = parser.parse_args(argv)
    meta = extract_backbone(args.src, args.dst, args.config)
    print(f'extracted the backbone of {args.src} -> {args.dst}')
    print(f"backbone keys it needs:  {meta.get('backbone', meta['backbone_config'])}")
    print(f"input it was trained on: {meta.get('data_preprocessor')}")


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
