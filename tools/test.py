"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--out preds.pkl]``.

Prints COCO bbox metrics (mmAP = bbox_mAP, AP over IoU 0.50:0.95).
"""
import argparse
import json

from sn2_det.apis.runner import add_common_args, load_config, test


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump raw predictions to this .pkl file')
    parser.add_argument('--metrics-json', help='write the metrics (and the config) here')
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.work_dir, args.data_root, args.cfg_options,
                      args.launcher)
    metrics = test(cfg, args.checkpoint, args.out)
    if args.metrics_json:
        with open(args.metrics_json, 'w') as f:
            json.dump(dict(config=args.config, checkpoint=args.checkpoint,
                           metrics=metrics), f, indent=1)


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
