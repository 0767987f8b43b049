"""Draw a detector's detections on an image, a folder of images, a video or a camera:

    python tools/infer.py CONFIG CHECKPOINT demo.jpg --out dets.png
    python tools/infer.py CONFIG CHECKPOINT images/ --out dets/
    python tools/infer.py CONFIG CHECKPOINT clip.mp4 --out clip_dets.mp4
    python tools/infer.py CONFIG CHECKPOINT 0 --out camera.mp4 [--max-frames 300]

A video or a camera gives an annotated video (.mp4 with the mp4v codec, or .avi with
MJPG) at the input's frame rate; a camera runs until Ctrl-C or --max-frames. A progress
bar runs over the frames; the frames per second of the model and of the whole loop
are printed at the end.
"""
import argparse

from sn2_det.apis.inference import infer_media, shown_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('input', help='an image, a folder of images, a video file or a '
                                      'camera index (0 is the first camera)')
    parser.add_argument('--out', help='picture, folder or video to write (default '
                                      'detections.png, detections/ or detections.mp4)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw detections with at least this score (default 0.3)')
    parser.add_argument('--max-frames', type=int, help='stop a video or camera after N frames')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    import sn2_det  # noqa: F401  (registers the modules, safe checkpoint loading)
    result = infer_media(args.config, args.checkpoint, args.input, args.out,
                         args.score_thr, args.device, args.max_frames,
                         progress=not args.no_progress)
    outputs = result['outputs']
    where = (f'{len(outputs)} pictures in {shown_path(result["out"])}'
             if result['kind'] == 'folder' else shown_path(outputs[0]))
    print(f'{result["frames"]} frame{"" if result["frames"] == 1 else "s"}, '
          f'{result["detections"]} detections with score >= {args.score_thr} -> {where}')
    print(f'frames per second: {result["model_fps"]:.1f} (model and pipeline), '
          f'{result["fps"]:.1f} (with decoding, drawing and writing), device {args.device}')
    if result['unreadable']:
        print(f'{len(result["unreadable"])} unreadable images skipped: '
              + ', '.join(map(shown_path, result['unreadable'])))


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
