"""Generate the toy-shapes COCO dataset: ``python tools/make_toy_dataset.py [ROOT]``."""
import argparse

from sn2_det.datasets.toy_shapes import generate_toy_shapes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root', nargs='?', default='data/toy_shapes')
    parser.add_argument('--num-train', type=int, default=600)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    anns = generate_toy_shapes(args.root, args.num_train, args.num_val, seed=args.seed)
    print('\n'.join(f'{split}: {path}' for split, path in anns.items()))


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
