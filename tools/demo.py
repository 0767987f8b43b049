"""``make demo``: train and evaluate Light-Head ShuffleNet V2 on the toy dataset, then
draw held-out images (ground truth beside predictions) and the run's loss and mmAP
curves into the work dir."""
import argparse

from sn2_det.apis.demo import TOY_CONFIG, run_demo
from sn2_det.utils.config import ConfigOptionsAction


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--config', default=TOY_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--score-thr', type=float, default=0.5,
                        help='draw predictions with at least this score (default 0.5)')
    parser.add_argument('--num-images', type=int, default=12,
                        help='held-out images in the picture (default 12)')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptionsAction)
    args = parser.parse_args(argv)
    run_demo(args.config, args.work_dir, args.cfg_options, num_images=args.num_images,
             score_thr=args.score_thr)


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
