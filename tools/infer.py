"""Draw a detector's detections on an image:

    python tools/infer.py CONFIG CHECKPOINT IMAGE --out detections.png [--score-thr 0.3]
"""
import argparse

from sn2_det.apis.inference import detect_and_draw


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--out', default='detections.png')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    import sn2_det  # noqa: F401  (registers the modules, safe checkpoint loading)
    result = detect_and_draw(args.config, args.checkpoint, args.image, args.out,
                             args.score_thr, args.device)
    print(f'{result["num_detections"]} detections above {args.score_thr} -> {result["out"]}')


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
