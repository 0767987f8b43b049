"""Train a detector: ``python tools/train.py CONFIG [--work-dir D] [--resume [CKPT]]``.

Flags as in mmdet's tools/train.py (see sn2_det.apis.runner); multi-GPU or
multi-node through tools/dist_train.sh.
"""
import argparse

from sn2_det.apis.runner import add_common_args, load_config, train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument('--resume', nargs='?', const='auto',
                        help='resume from CKPT, or from the latest one in the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed-precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale lr by total batch size / auto_scale_lr.base_batch_size')
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.work_dir, args.data_root, args.cfg_options,
                      args.launcher)
    train(cfg, resume=args.resume, amp=args.amp, auto_scale_lr=args.auto_scale_lr)


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
