"""Paper Table 7 with our figures beside the paper's.

    python tools/table7.py --subset                       # 2-core CPU: a few minutes
    python tools/table7.py --device cuda --rounds 20      # all twenty cells, GPU
    python tools/table7.py --backbones shufflenet_v2 mobilenet_v2 --levels 140
    python tools/table7.py --results work_dirs/*/metrics.json   # with our mmAP

Speeds: batch 4 at 800x1200 by default (the paper's protocol), the five backbones
of each level timed interleaved. mmAP: from ``tools/test.py --metrics-json`` files
of trained models. Writes table7.md, table7.csv, table7.json and table7.png
(speed against mmAP, like the paper's Figure 1) to --out-dir.
"""
import argparse
import platform

import torch

from sn2_det.analysis.table7 import (markdown, measure_speeds, ratio_lines, read_mmaps,
                                     table_rows, write_outputs)
from sn2_det.models.backbones.table7 import TABLE7_BACKBONES, TABLE7_LEVELS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--backbones', nargs='+', choices=TABLE7_BACKBONES,
                        default=list(TABLE7_BACKBONES))
    parser.add_argument('--levels', nargs='+', type=int, choices=TABLE7_LEVELS,
                        default=list(TABLE7_LEVELS))
    parser.add_argument('--subset', action='store_true',
                        help='CPU-sized run: levels 40 and 140, 5 rounds, 1 warm-up')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1200), metavar=('H', 'W'))
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--results', nargs='*', default=[],
                        help='tools/test.py --metrics-json files of trained cells')
    parser.add_argument('--out-dir', default='work_dirs/table7')
    args = parser.parse_args(argv)
    if args.subset:
        args.levels, args.rounds, args.warmup = [40, 140], 5, 1
    import sn2_det  # noqa: F401
    mmaps = read_mmaps(args.results)  # before the timing run, which takes minutes
    speeds = measure_speeds(args.backbones, args.levels, args.batch, args.shape,
                            args.rounds, args.warmup, args.device)
    device = torch.cuda.get_device_name() if args.device.startswith('cuda') else \
        f'CPU ({platform.machine()}, {torch.get_num_threads()} threads)'
    header = (f'Table 7, ours (paper): batch {args.batch}, {args.shape[0]}x{args.shape[1]}, '
              f'{device}, torch {torch.__version__}, median of {args.rounds} interleaved '
              'rounds. Paper speeds: GTX 1080Ti.')
    print(markdown(table_rows(speeds, mmaps), ratio_lines(speeds), header))
    paths = write_outputs(args.out_dir, speeds, mmaps, header, device)
    print('written: ' + ', '.join(paths.values()))


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
