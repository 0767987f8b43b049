"""int8 post-training static quantisation of an ONNX backbone or whole detector
(tools/export_onnx.py) with onnxruntime's tools, then its accuracy and speed.

    python tools/quantize_onnx.py toy_256.onnx --out toy_256.int8.onnx \\
        [--calibration DIR] [--count 32] [--evaluate] [--ncnn toy_256.ncnn.param]

Calibration: the first --count images of --calibration (default: the bundled toy
dataset's train split, generated under data/toy_shapes when missing), resized to the
model's input size; raw pixels for a detector (input ``image``), normalised as the
detector's data preprocessor does for a backbone. Prints every node that stayed fp32
(count per op type, then names), and writes all of it to --json.

--evaluate: a detector's bbox mmAP on the toy dataset's 100 held-out images (its
input must be their 256x256), and every model's median latency timed interleaved on
one picture (tools/arm_benchmark.py's loop, 1 thread), with the ratio to onnxruntime
fp32: fp32 and int8 on onnxruntime and OpenVINO (where it imports), and with --ncnn
the ncnn detector (tools/export_ncnn.py --detector) with fp16 off and on. A
backbone gets its outputs' max difference from the fp32 file instead of an mmAP.
"""
import argparse
import json
import os
import sys

import numpy as np

from sn2_det.deploy import detection_map, output_differences, runners
from sn2_det.deploy.arm_benchmark import compare
from sn2_det.deploy.pictures import bundled_toy_dataset, folder_images, toy_split
from sn2_det.deploy.quantization import (feeds_from_images, model_input,
                                         quantize_onnx)
from sn2_det.utils.errors import SN2DetError


def _print_fp32(result, limit=12):
    stayed = result['fp32_nodes']
    print(f'{len(stayed)} nodes stayed fp32: ' + ', '.join(
        f'{op} x{count}' for op, count in sorted(result['fp32_ops'].items())))
    by_op = {}
    for op, name in stayed:
        by_op.setdefault(op, []).append(name)
    for op, names in sorted(by_op.items()):
        more = f' ... and {len(names) - limit} more (--json)' if len(names) > limit else ''
        print(f'  {op}: {", ".join(names[:limit])}{more}')


def _entries(args):
    entries = [('onnxruntime', args.model), ('onnxruntime', args.out)]
    labels = ['onnxruntime fp32', 'onnxruntime int8']
    try:
        import openvino  # noqa: F401
    except ImportError:
        print('openvino does not import: its rows are left out')
    else:
        entries += [('openvino', args.model), ('openvino', args.out)]
        labels += ['openvino fp32', 'openvino int8']
    if args.ncnn:
        entries += [('ncnn', args.ncnn), ('ncnn:fp16', args.ncnn)]
        labels += ['ncnn fp32', 'ncnn fp16']
    return entries, labels


def evaluate(args, name, dims, calibration):
    entries, labels = _entries(args)
    report = {}
    if name == 'image':
        pictures = toy_split(bundled_toy_dataset(args.data_root), 'val')
        if tuple(pictures[0][0].shape) != tuple(dims[1:]):
            sys.exit(f'FAILED: --evaluate needs a detector exported at the toy '
                     f'dataset\'s {pictures[0][0].shape[1:]}, this one takes {dims[2:]}')
        truths = [(b, l) for _, b, l in pictures]
        num_classes = 1 + max(int(l.max()) for _, _, l in pictures if len(l))
        for label, (runtime, path) in zip(labels, entries):
            runtime, _, option = runtime.partition(':')
            model = runners.load(path, runtime, fp16=option == 'fp16')
            detections = [runners.run_detector(model, image) for image, _, _ in pictures]
            report[label] = dict(mmap=detection_map(truths, detections, num_classes))
    else:
        x = feeds_from_images(args.model, calibration[:1])[0][name]
        reference = runners.run_outputs(runners.load(args.model), x)
        for label, (runtime, path) in zip(labels, entries):
            runtime, _, option = runtime.partition(':')
            model = runners.load(path, runtime, fp16=option == 'fp16')
            diffs = output_differences(path, model.output_names, reference,
                                       runners.run_outputs(model, x))
            report[label] = dict(max_rel_vs_fp32=max(d['rel'] for d in diffs.values()))
    timings = compare([f'{runtime}={path}' for runtime, path in entries],
                      warmup=args.warmup, runs=args.runs)
    for label, timing in zip(labels, timings):
        report[label].update(median_ms=timing['median_ms'], ratio=timing['ratio'],
                             precision=timing['precision'])
    key = 'mmap' if name == 'image' else 'max_rel_vs_fp32'
    title = ('bbox mmAP (toy val, 100 images)' if name == 'image'
             else 'max relative output difference from the fp32 file')
    print(f'\n{"model":<18} {title:>36} {"median ms":>10} {"ratio to ort fp32":>18}')
    for label in labels:
        row = report[label]
        print(f'{label:<18} {row[key]:>36.4f} {row["median_ms"]:>10.2f} '
              f'{row["ratio"]:>18.3f}')
    print(f'(timed interleaved, {args.runs} runs each after {args.warmup} warm-up, '
          f'1 thread; the machine may be shared: compare ratios)')
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='the fp32 .onnx file (backbone or detector)')
    parser.add_argument('--out', required=True, help='the int8 .onnx file to write')
    parser.add_argument('--calibration', metavar='DIR',
                        help='calibration images (default: the toy dataset\'s train split)')
    parser.add_argument('--data-root', default='data/toy_shapes',
                        help='where the bundled toy dataset is (made when missing)')
    parser.add_argument('--count', type=int, default=32,
                        help='calibration images used (default 32)')
    parser.add_argument('--keep-fp32', nargs='+', metavar='NODE', default=[],
                        help='ONNX node names to leave in fp32 (e.g. the layers whose '
                             'int8 costs accuracy)')
    parser.add_argument('--evaluate', action='store_true',
                        help='mmAP (detector) or output difference (backbone), and speed')
    parser.add_argument('--ncnn', metavar='PARAM',
                        help='with --evaluate: the ncnn detector of the same model')
    parser.add_argument('--runs', type=int, default=20, help='timed runs (default 20)')
    parser.add_argument('--warmup', type=int, default=3, help='warm-up runs (default 3)')
    parser.add_argument('--json', metavar='OUT', help='write everything to this file')
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f'--count must be a positive int, got {args.count}')
    if args.ncnn and not args.evaluate:
        parser.error('--ncnn goes with --evaluate')
    for flag, path in (('--out', args.out), ('--json', args.json)):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            parser.error(f'{flag} {path}: the folder {os.path.dirname(os.path.abspath(path))} '
                         f'does not exist')
    try:
        name, dims = model_input(args.model)
        folder = args.calibration or os.path.join(bundled_toy_dataset(args.data_root),
                                                  'train')
        calibration = folder_images(folder, dims[2:], args.count)
        result = quantize_onnx(args.model, args.out,
                               feeds_from_images(args.model, calibration),
                               keep_fp32=args.keep_fp32)
    except SN2DetError as error:
        parser.error(str(error))
    print(f'wrote {args.out}: QDQ int8 (weights int8 per channel, activations uint8, '
          f'MinMax on {result["calibration_images"]} images of {folder})')
    _print_fp32(result)
    if args.evaluate:
        result['evaluation'] = evaluate(args, name, dims, calibration)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2, default=lambda o: np.asarray(o).tolist())
        print(f'wrote {args.json}')


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
