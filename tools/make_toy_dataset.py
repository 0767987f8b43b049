"""Generate the toy-shapes COCO dataset: ``python tools/make_toy_dataset.py [ROOT]``.

``--coco-layout``: COCO 2017's file layout and class names (person, bicycle, car),
for a shipped COCO config with ``--data-root ROOT`` (64x64 images by default).
"""
import argparse

from sn2_det.datasets.toy_shapes import generate_toy_coco, generate_toy_shapes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root', nargs='?', default='data/toy_shapes')
    parser.add_argument('--num-train', type=int, default=600)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--coco-layout', action='store_true',
                        help="COCO 2017's layout and class names, for the COCO configs")
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'),
                        help='image size (default 256 256, with --coco-layout 64 64)')
    args = parser.parse_args(argv)
    if args.coco_layout:
        anns = generate_toy_coco(args.root, args.num_train, args.num_val,
                                 tuple(args.size or (64, 64)), seed=args.seed)
    else:
        anns = generate_toy_shapes(args.root, args.num_train, args.num_val,
                                   tuple(args.size or (256, 256)), seed=args.seed)
    print('\n'.join(f'{split}: {path}' for split, path in anns.items()))


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
