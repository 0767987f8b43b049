"""Images per second of detectors (Table 7 protocol: batch 4, 800x1200, fp32).

    python tools/benchmark.py CONFIG                         # paper protocol row
    python tools/benchmark.py CONFIG --modes fp32 channels_last compile
    python tools/benchmark.py CONFIG --backbone-only         # the backbone alone
    python tools/benchmark.py --compare A B [C ...]          # interleaved, with ratios to A
    python tools/benchmark.py --official third_party/ShuffleNetV2   # vs the authors' code
    python tools/benchmark.py CONFIG --parts                 # time share of each part
    python tools/benchmark.py --ps-roi-align --rois 1000     # the op's implementations
    python tools/benchmark.py --nms                          # mmdet's NMS against ours
    ... --device cuda --runs 20 --json results.json

Pre-processing is excluded, post-processing (proposals, NMS, box decoding) included;
see sn2_det.analysis.benchmark. Without --checkpoint the weights are random and the
heads' final predictors zeroed, so that every backbone gets the same post-processing
work (all proposals and classes reach NMS: the worst case).
"""
import argparse
import json
import os

import torch

from sn2_det.analysis.benchmark import MODES, benchmark, compare


def _table(rows, key):
    lines = [f'{key:<42} {"mode":<13} {"img/s":>8} {"median ms":>10} {"spread %":>9}'
             + ('  ratio' if 'ratio_to_first' in rows[0] else '')]
    for row in rows:
        name = os.path.basename(row[key])
        line = (f'{name:<42} {row["mode"]:<13} {row["img_per_s"]:8.2f} '
                f'{row["median_ms"]:10.1f} {row["spread_pct"]:9.1f}')
        if 'ratio_to_first' in row:
            line += f'  {row["ratio_to_first"]:.3f}'
        if 'max_rel_diff' in row:
            line += f'  max rel diff {row["max_rel_diff"]:.1e}'
        lines.append(line)
    return '\n'.join(lines)


def _write_json(path, rows) -> None:
    if path:
        with open(path, 'w') as f:
            json.dump(rows, f, indent=1)


def _print_parts(args):
    from sn2_det.analysis.benchmark import build_detector, make_inputs, prepare_model
    from sn2_det.analysis.time_shares import time_shares
    for mode in args.modes:
        model = build_detector(args.config, args.device, checkpoint=args.checkpoint)
        model = prepare_model(model, mode, args.device)
        inputs, samples = make_inputs(args.batch, args.shape, args.device, mode)
        shares = time_shares(model, inputs, samples, runs=args.runs, warmup=args.warmup)
        print(f'{os.path.basename(args.config)}, {mode}, batch {args.batch}, '
              f'{args.shape[0]}x{args.shape[1]}, {args.device}:')
        for part, row in shares.items():
            print(f'  {part:<20} {row["ms"]:9.1f} ms  {100 * row["share"]:5.1f} %')


def _print_ps_roi_align(args):
    from sn2_det.analysis.op_benchmark import compare_ps_roi_align
    rows = compare_ps_roi_align(args.batch, args.shape, args.rois, args.device,
                                args.runs, args.warmup)
    print(f'PS-RoI Align, batch {args.batch} x {args.rois} RoIs, thin map of '
          f'{args.shape[0]}x{args.shape[1]}, {args.device}, {torch.get_num_threads()} '
          f'threads')
    print(f'{"impl":<12} {"median ms":>10} {"spread %":>9}  ratio  max abs diff')
    for row in rows:
        print(f'{row["impl"]:<12} {row["median_ms"]:10.2f} {row["spread_pct"]:9.1f}  '
              f'{row["ratio_to_first"]:.3f}  {row["max_abs_diff"]:.1e}')
    return rows


def _print_nms(args):
    from sn2_det.analysis.op_benchmark import NMS_PATTERNS, compare_nms
    rows = []
    print(f'NMS, cpu, {torch.get_num_threads()} threads: median ms, speed ratio to mmdet')
    for pattern in NMS_PATTERNS:
        for row in compare_nms(pattern, args.runs, args.warmup):
            rows.append(row)
            print(f'{pattern:<10} {row["stage"]:<22} {row["impl"]:<15} '
                  f'{row["median_ms"]:9.2f} ms  {row["ratio_to_first"]:6.1f}x  '
                  f'kept {row["kept"]}  same output: {row["same_output"]}')
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='config to time')
    parser.add_argument('--compare', nargs='+', metavar='CONFIG',
                        help='time these configs interleaved and print ratios to the first')
    parser.add_argument('--official', metavar='DIR',
                        help="the authors' ShuffleNetV2 folder (megvii-model/ShuffleNet-"
                             'Series, a local copy): their backbone to conv5 against ours '
                             'on the same weights, as trained and with deploy()')
    parser.add_argument('--widen-factor', type=float, default=1.0, help='for --official')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1200), metavar=('H', 'W'))
    parser.add_argument('--runs', type=int, default=10, help='timed runs (rounds for --compare)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--modes', nargs='+', choices=MODES, default=['fp32'])
    parser.add_argument('--backbone-only', action='store_true')
    parser.add_argument('--parts', action='store_true',
                        help='time share of each part of a Light-Head R-CNN (paper Fig. 2)')
    parser.add_argument('--ps-roi-align', action='store_true',
                        help="PS-RoI Align alone: torchvision's kernel (where it imports), "
                             'our fused path and its gather form, interleaved')
    parser.add_argument('--nms', action='store_true',
                        help="mmdet's class-wise and RPN NMS against sn2_det's top-k NMS "
                             'on tied, random and clustered scores, interleaved')
    parser.add_argument('--rois', type=int, default=1000,
                        help='RoIs an image for --ps-roi-align')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--checkpoint', help='trained weights (default: random weights)')
    parser.add_argument('--json', help='write the rows to this JSON file')
    args = parser.parse_args(argv)
    if args.ps_roi_align or args.nms:
        _write_json(args.json, _print_ps_roi_align(args) if args.ps_roi_align
                    else _print_nms(args))
        return
    if not (args.config or args.compare or args.official):
        parser.error('give a CONFIG, --compare CONFIG [CONFIG ...], --official DIR, '
                     '--ps-roi-align or --nms')
    if args.parts and not args.config:
        parser.error('--parts times one CONFIG')
    if args.checkpoint and not args.config:
        parser.error('--checkpoint applies to one CONFIG (not --compare / --official)')
    if args.official:  # the authors' code is timed on CPU in fp32 and deploy() rows
        args.device, args.modes = 'cpu', ['fp32']
    import sn2_det  # noqa: F401
    common = dict(batch=args.batch, shape=args.shape, device=args.device,
                  backbone_only=args.backbone_only)
    if args.parts:
        _print_parts(args)
        return
    rows = []
    if args.official:
        from sn2_det.analysis.official_reference import compare_with_official
        rows = compare_with_official(args.official, args.widen_factor, args.batch,
                                     args.shape, args.runs, args.warmup)
        args.backbone_only = True
    elif args.compare:
        for mode in args.modes:
            rows += compare(args.compare, rounds=args.runs, warmup=args.warmup, mode=mode,
                            **common)
    else:
        for mode in args.modes:
            rows.append(dict(benchmark(args.config, runs=args.runs, warmup=args.warmup,
                                       mode=mode, checkpoint=args.checkpoint, **common),
                             config=args.config))
    what = 'backbone' if args.backbone_only else 'detector'
    print(f'{what}, batch {args.batch}, {args.shape[0]}x{args.shape[1]}, {args.device}, '
          f'{torch.get_num_threads()} threads, torch {torch.__version__}')
    print(_table(rows, 'config'))
    _write_json(args.json, rows)


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
