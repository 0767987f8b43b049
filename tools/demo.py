"""``make demo``: train and evaluate Light-Head ShuffleNet V2 on the toy dataset."""
import argparse

from mmengine.config import DictAction

from sn2_det.apis.demo import TOY_CONFIG, run_demo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--config', default=TOY_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    run_demo(args.config, args.work_dir, args.cfg_options)


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
