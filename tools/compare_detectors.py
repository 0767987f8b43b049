"""Train every detector family on ShuffleNet V2 0.5x from scratch on the toy shapes on
one budget, and print one table (mmAP, AP small / medium / large, training s/iter,
inference ms/image, parameters, FLOPs) with its conditions, plus the speed-against-
mmAP picture (logic and conditions: sn2_det/analysis/detector_comparison.py).

    python tools/compare_detectors.py               # every family (docs/detectors.md)
    python tools/compare_detectors.py --families ssdlite yolox-nano --epochs 1
    python tools/compare_detectors.py --estimate    # each family's cost, the minutes

Writes WORK_DIR/comparison.md, comparison.json and speed_vs_mmap.png; a family whose
WORK_DIR/<family>/result.json holds the same budget is not trained again (--rerun).
"""
import argparse

from sn2_det.analysis.detector_comparison import (FAMILIES, Budget, compare,
                                                  estimate_minutes, iteration_cost)
from sn2_det.datasets.toy_shapes import generate_toy_shapes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--families', nargs='+', choices=list(FAMILIES),
                        default=list(FAMILIES), metavar='FAMILY',
                        help=f'rows, in order (default: all of {", ".join(FAMILIES)})')
    defaults = Budget()
    parser.add_argument('--epochs', type=int, default=defaults.epochs,
                        help='epochs of every family (default %(default)s)')
    parser.add_argument('--batch-size', type=int, default=defaults.batch_size)
    parser.add_argument('--threads', type=int, default=defaults.threads,
                        help='torch / onnxruntime threads (default %(default)s)')
    parser.add_argument('--data-root', default='data/toy_shapes',
                        help='toy shapes, generated there when missing')
    parser.add_argument('--num-train', type=int, default=600)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--work-dir', default='work_dirs/compare_detectors')
    parser.add_argument('--rerun', action='store_true',
                        help='train families whose result.json exists again')
    parser.add_argument('--estimate', action='store_true',
                        help='train nothing: CPU seconds an iteration and ms an image of '
                             'each family (a few iterations, one thread) and the minutes '
                             'the whole run takes on one thread')
    args = parser.parse_args(argv)
    for name in ('epochs', 'batch_size', 'threads', 'num_train', 'num_val'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    budget = Budget(epochs=args.epochs, batch_size=args.batch_size, threads=args.threads)
    if args.estimate:
        generate_toy_shapes(args.data_root, args.num_train, args.num_val)
        costs = []
        print('| detector | CPU s/iter | CPU ms/img | params M | GFLOPs |\n'
              '|---|---|---|---|---|')
        for family in args.families:
            c = iteration_cost(family, budget, args.data_root)
            costs.append(c)
            print(f"| {c['label']} | {c['cpu_s_per_iter']:.3f} | {c['cpu_ms_per_image']:.1f} "
                  f"| {c['params'] / 1e6:.2f} | {c['macs'] / 1e9:.2f} |", flush=True)
        minutes = estimate_minutes(costs, budget, args.num_train, args.num_val)
        print(f'estimated run ({budget.epochs} epochs of {args.num_train} images, batch '
              f'{budget.batch_size}): {minutes:.0f} min on one thread')
        return
    result = compare(args.families, budget, args.data_root, args.work_dir,
                     args.num_train, args.num_val, args.rerun)
    print(result['table'])
    print()
    print(result['conditions'])
    print(f'picture: {result["picture"]}')


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
