"""A trained detector on an image, a folder of images, a video file or a camera
(``tools/infer.py``): detections drawn and written as pictures or as an annotated
video, with a progress bar over frames and the frames per second.

mmdet's ``inference_detector`` runs the model; the test pipeline is built once, its
loading step replaced by mmdet's ``LoadImageFromNDArray`` (frames are decoded here, so
every kind of input takes the same path: images by the project's safe decoder, which
refuses a truncated or corrupt file, videos and cameras by opencv). A file name that
is not UTF-8 is read and written through Python; ``--out`` never writes over an input.
The class names drawn are the checkpoint's (``meta['dataset_meta']``), or where it
records none (a bare state dict), the config's test (else val) dataset's.
"""
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Union

import cv2
import numpy as np

from ..utils.errors import MediaError, MissingFileError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg')
# Codecs that opencv-python-headless writes without extra libraries, by container.
VIDEO_CODECS = {'.mp4': 'mp4v', '.avi': 'MJPG'}
INPUT_KINDS = 'an image, a folder of images, a video file or a camera index such as 0'


def classify_input(source: Union[str, int]):
    """``('camera', index)``, ``('image', path)``, ``('video', path)`` or
    ``('folder', [image paths])``; raises naming what is wrong with ``source``."""
    if isinstance(source, int) or str(source).isdigit():
        return 'camera', int(source)
    if not osp.exists(source):
        raise MissingFileError(f'input {source} does not exist (give {INPUT_KINDS})')
    if osp.isdir(source):
        images = sorted(osp.join(source, name) for name in os.listdir(source)
                        if osp.splitext(name)[1].lower() in IMAGE_EXTENSIONS)
        if not images:
            raise MediaError(f'folder {source} holds no images '
                             f'(extensions {", ".join(IMAGE_EXTENSIONS)})')
        return 'folder', images
    ext = osp.splitext(source)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return 'image', source
    if ext in VIDEO_EXTENSIONS:
        return 'video', source
    raise MediaError(f'input {source}: unknown file type {ext or "(no extension)"!r}; '
                     f'images: {", ".join(IMAGE_EXTENSIONS)}; '
                     f'videos: {", ".join(VIDEO_EXTENSIONS)}')


def shown_path(path: str) -> str:
    """``path`` printable on any terminal: bytes of a file name that are not UTF-8
    (kept by Python as surrogates) shown as ``\\xNN``."""
    return os.fsencode(path).decode('utf-8', 'backslashreplace')


def _opencv_path(path: str, what: str) -> str:
    """``path`` for opencv, which takes only UTF-8 file names (others crash it)."""
    try:
        path.encode('utf-8')
    except UnicodeEncodeError:
        raise MediaError(f'{what} {shown_path(path)}: the file name is not valid UTF-8, '
                         f'which opencv cannot open; rename the file') from None
    return path


def read_image(path: str) -> np.ndarray:
    """A BGR uint8 image through the project's safe decoder
    (:func:`sn2_det.datasets.transforms.decode_image`): an empty, truncated or
    corrupt file is a MediaError naming it, never a partly decoded picture."""
    from ..datasets.transforms import UnreadableImageError, decode_image
    try:
        with open(path, 'rb') as f:
            data = f.read()
        return decode_image(data)
    except (OSError, UnreadableImageError) as err:
        reason = err if isinstance(err, UnreadableImageError) else \
            (err.strerror or type(err).__name__)
        raise MediaError(f'cannot read image {shown_path(path)}: {reason}') from err


def open_capture(kind: str, source: Union[str, int]) -> cv2.VideoCapture:
    if kind == 'video':
        _opencv_path(source, 'cannot open video')
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        if kind == 'camera':
            raise MediaError(f'cannot open camera {source}: no such device, or it is '
                             f'in use (cameras are numbered from 0: /dev/video0 is 0)')
        raise MediaError(f'cannot open video {source}: opencv cannot decode it (not a '
                         f'video, truncated, or a codec this opencv build lacks)')
    return capture


def open_writer(path: str, fps: float, width: int, height: int) -> cv2.VideoWriter:
    ext = check_video_out(path)
    _opencv_path(path, 'cannot write video')
    codec = VIDEO_CODECS[ext]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    if not writer.isOpened():
        raise MediaError(f'cannot write video {path} with codec {codec} ({ext})')
    return writer


def check_video_out(path: str) -> str:
    ext = osp.splitext(path)[1].lower()
    if ext not in VIDEO_CODECS:
        raise MediaError(f'--out {path}: an annotated video is written as '
                         f'{" or ".join(VIDEO_CODECS)} (got {ext or "no extension"!r})')
    return ext


def check_image_out(path: str) -> None:
    ext = osp.splitext(path)[1].lower()
    if ext not in IMAGE_EXTENSIONS:
        raise MediaError(f'--out {path}: a picture is written as one of '
                         f'{", ".join(IMAGE_EXTENSIONS)} (got {ext or "no extension"!r})')


def write_image(path: str, image: np.ndarray) -> None:
    """Encode with opencv, write with Python (any file name)."""
    ok, data = cv2.imencode(osp.splitext(path)[1].lower() or '.png', image)
    if not ok:
        raise MediaError(f'cannot encode {shown_path(path)}')
    try:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data.tobytes())
    except OSError as err:
        raise MediaError(f'cannot write {shown_path(path)}: {err.strerror or err}') from err


def _same_file(a: str, b: str) -> bool:
    return osp.realpath(a) == osp.realpath(b) or (
        osp.exists(a) and osp.exists(b) and osp.samefile(a, b))


def check_out_spares_inputs(kind: str, items, out: str) -> None:
    """Refuse an ``out`` that would write over an input: the input image or video
    itself, or for a folder, an output path (``out``/name) that is one of the images
    read (``out`` the input folder, or a link to it)."""
    if kind in ('image', 'video') and _same_file(out, items):
        raise MediaError(f'--out {shown_path(out)} is the input {shown_path(items)}: it '
                         f'would be written over; give another file')
    if kind == 'folder':
        inputs = {osp.realpath(path) for path in items}
        for path in items:
            target = osp.join(out, osp.basename(path))
            if osp.realpath(target) in inputs or _same_file(target, path):
                raise MediaError(f'--out {shown_path(out)}: the picture of '
                                 f'{shown_path(path)} would be written over the input '
                                 f'{shown_path(target)}; give a folder outside the '
                                 f'input folder')


def draw_detections(image: np.ndarray, bboxes, labels, scores, classes,
                    score_thr: float = 0.3) -> np.ndarray:
    """Boxes with class name and score on a copy of a BGR image; line and text size
    follow the image size."""
    canvas = image.copy()
    rng = np.random.default_rng(1)
    colours = rng.integers(64, 256, size=(max(len(classes), 1), 3))
    side = min(canvas.shape[:2])
    thickness = max(1, int(round(side / 320)))
    font_scale = max(0.4, side / 700)
    for box, label, score in zip(bboxes, labels, scores):
        if score < score_thr:
            continue
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        colour = tuple(int(c) for c in colours[int(label) % len(colours)])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness + 1)
        text = f'{classes[int(label)]} {float(score):.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                                         thickness)
        top = max(y1 - th - base - 2, 0)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2, top + th + base + 2), colour, -1)
        cv2.putText(canvas, text, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas


def recorded_classes(checkpoint: str) -> Optional[tuple]:
    """The class names a local checkpoint records in its ``meta`` (as mmdet reads
    them: ``dataset_meta['classes']`` or ``CLASSES``), None when it records none."""
    from ..utils.checkpoint import safe_torch_load
    if not osp.isfile(osp.expanduser(checkpoint)):
        return None
    loaded = safe_torch_load(checkpoint)
    meta = loaded.get('meta') if isinstance(loaded, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    dataset_meta = {str(k).lower(): v for k, v in (meta.get('dataset_meta') or {}).items()}
    classes = dataset_meta.get('classes') or meta.get('CLASSES')
    return tuple(classes) if classes else None


def config_classes(cfg) -> Optional[tuple]:
    """The classes of the config's test dataset, else its val dataset (a dataset's
    ``metainfo.classes``, or its type's ``METAINFO``), None when it has neither."""
    from .class_check import dataset_classes
    for split in ('test', 'val'):
        loader = cfg.get(f'{split}_dataloader')
        dataset = loader.get('dataset') if isinstance(loader, dict) else None
        for _, classes in dataset_classes(dataset, f'{split}_dataloader.dataset'):
            return classes
    return None


def load_detector(config, checkpoint: str, device: str = 'cpu'):
    """The detector of ``config`` with the weights of ``checkpoint``; its class names
    from the checkpoint, or where it records none, from the config (mmdet's
    ``init_detector`` would name them after COCO's)."""
    from .detector_checkpoint import init_checked_detector
    model = init_checked_detector(config, checkpoint, device=device)
    if checkpoint and recorded_classes(checkpoint) is None:
        classes = config_classes(model.cfg)
        if classes:
            model.dataset_meta = dict(model.dataset_meta or {}, classes=classes)
    return model


class FrameDetector:
    """Detections of one BGR frame at a time, the model and its test pipeline built
    once; ``model_seconds`` adds up the time spent in the pipeline and the model."""

    def __init__(self, model, score_thr: float = 0.3):
        from mmcv.transforms import Compose
        from mmdet.utils import get_test_pipeline_cfg
        self.model = model
        self.classes = model.dataset_meta['classes']
        self.score_thr = score_thr
        pipeline = get_test_pipeline_cfg(model.cfg.copy())
        pipeline[0].type = 'mmdet.LoadImageFromNDArray'
        self.pipeline = Compose(pipeline)
        self.model_seconds = 0.0
        self.frames = 0

    def __call__(self, image: np.ndarray):
        """Boxes (x1, y1, x2, y2), labels and scores at or above the threshold."""
        from mmdet.apis import inference_detector
        start = time.perf_counter()
        result = inference_detector(self.model, image, test_pipeline=self.pipeline)
        self.model_seconds += time.perf_counter() - start
        self.frames += 1
        pred = result.pred_instances
        keep = (pred.scores >= self.score_thr).cpu().numpy()
        return (pred.bboxes.cpu().numpy()[keep], pred.labels.cpu().numpy()[keep],
                pred.scores.cpu().numpy()[keep])

    def draw(self, image: np.ndarray):
        bboxes, labels, scores = self(image)
        return draw_detections(image, bboxes, labels, scores, self.classes,
                               self.score_thr), len(scores)


class _Progress:
    """mmengine's ProgressBar where the frame count is known, else a counter."""

    def __init__(self, total: int, enabled: bool):
        from mmengine.utils import ProgressBar
        self.total, self.enabled, self.count = total, enabled, 0
        self.start = time.perf_counter()
        self.bar = ProgressBar(total, file=sys.stderr) if enabled and total > 0 else None

    def update(self):
        self.count += 1
        if self.bar is not None and self.count <= self.total:
            self.bar.update()
        elif self.enabled and self.bar is None:
            elapsed = max(time.perf_counter() - self.start, 1e-9)
            sys.stderr.write(f'\rframes: {self.count}, {self.count / elapsed:.1f} '
                             f'frames/s, elapsed {elapsed:.0f}s (Ctrl-C stops)')
            sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write('\n')


def default_out(kind: str) -> str:
    return {'image': 'detections.png', 'folder': 'detections',
            'video': 'detections.mp4', 'camera': 'detections.mp4'}[kind]


def infer_media(config, checkpoint: str, source: Union[str, int],
                out: Optional[str] = None, score_thr: float = 0.3, device: str = 'cpu',
                max_frames: Optional[int] = None, progress: bool = True) -> dict:
    """Detect and draw on ``source`` (:data:`INPUT_KINDS`) and write the result.

    An image gives one picture (``out`` a file), a folder one picture per image in
    the folder ``out`` (unreadable images are skipped and listed), a video or a
    camera an annotated video (``out`` .mp4 or .avi) at the input's frame rate;
    ``max_frames`` stops a video or a camera early (a camera otherwise runs until
    Ctrl-C). Returns the kind, the output paths, the frame count, the detections at
    or above ``score_thr`` and the frames per second of the model alone
    (``model_fps``, pipeline included) and of the whole loop (``fps``, decoding,
    drawing and writing included).
    """
    kind, items = classify_input(source)
    out = out or default_out(kind)
    if max_frames is not None and max_frames < 1:
        raise MediaError(f'--max-frames must be at least 1 (got {max_frames})')
    if not 0 <= score_thr <= 1:
        raise MediaError(f'--score-thr must be between 0 and 1 (got {score_thr})')
    check_out_spares_inputs(kind, items, out)
    capture = None
    if kind == 'image':
        check_image_out(out)
        image = read_image(items)
    elif kind in ('video', 'camera'):
        check_video_out(out)
        capture = open_capture(kind, items)  # fails before the model is built

    try:
        detector = FrameDetector(load_detector(config, checkpoint, device=device),
                                 score_thr)
    except BaseException:
        if capture is not None:
            capture.release()
        raise
    result = dict(kind=kind, out=out, outputs=[], detections=0, unreadable=[])
    start = time.perf_counter()
    if kind == 'image':
        drawn, count = detector.draw(image)
        write_image(out, drawn)
        result.update(outputs=[out], detections=count)
    elif kind == 'folder':
        _infer_folder(detector, items, out, progress, result)
    else:
        _infer_stream(detector, capture, f'{kind} {items}', out, max_frames, progress,
                      result)
    elapsed = time.perf_counter() - start
    frames = detector.frames
    result.update(frames=frames, seconds=elapsed,
                  fps=frames / elapsed if elapsed > 0 else float('nan'),
                  model_fps=frames / detector.model_seconds
                  if detector.model_seconds > 0 else float('nan'))
    return result


def _infer_folder(detector: FrameDetector, images: List[str], out_dir: str,
                  progress: bool, result: dict) -> None:
    from mmengine.logging import print_log
    bar = _Progress(len(images), progress)
    for path in images:
        try:
            image = read_image(path)
        except MediaError as err:
            result['unreadable'].append(path)
            print_log(f'skipped: {err}', logger='current', level=30)
            bar.update()
            continue
        drawn, count = detector.draw(image)
        target = osp.join(out_dir, osp.basename(path))
        write_image(target, drawn)
        result['outputs'].append(target)
        result['detections'] += count
        bar.update()
    bar.close()
    if not result['outputs']:
        raise MediaError(f'none of the {len(images)} images in the folder could be read '
                         f'(first: {shown_path(images[0])})')


def _infer_stream(detector: FrameDetector, capture: cv2.VideoCapture, name: str,
                  out: str, max_frames: Optional[int], progress: bool,
                  result: dict) -> None:
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and fps > 0 else 25.0
    total = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)  # 0 for a camera
    if max_frames:
        total = min(total, max_frames) if total > 0 else max_frames
    writer, bar = None, _Progress(total, progress)
    try:
        while max_frames is None or detector.frames < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            drawn, count = detector.draw(frame)
            if writer is None:
                writer = open_writer(out, fps, drawn.shape[1], drawn.shape[0])
            writer.write(drawn)
            result['detections'] += count
            bar.update()
    except KeyboardInterrupt:
        pass  # a camera runs until stopped: keep what was written
    finally:
        bar.close()
        capture.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise MediaError(f'{name} gave no frames (an empty or undecodable stream)')
    result['outputs'].append(out)
