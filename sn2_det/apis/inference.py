"""Detections of a trained model on one image, drawn and saved as a picture."""
import os.path as osp

import cv2
import numpy as np


def draw_detections(image: np.ndarray, bboxes, labels, scores, classes,
                    score_thr: float = 0.3) -> np.ndarray:
    """Boxes with class name and score on a copy of a BGR image."""
    canvas = image.copy()
    rng = np.random.default_rng(1)
    colours = rng.integers(64, 256, size=(max(len(classes), 1), 3))
    for box, label, score in zip(bboxes, labels, scores):
        if score < score_thr:
            continue
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        colour = tuple(int(c) for c in colours[int(label) % len(colours)])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
        text = f'{classes[int(label)]} {float(score):.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        top = max(y1 - th - base - 2, 0)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2, top + th + base + 2), colour, -1)
        cv2.putText(canvas, text, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def detect_and_draw(config, checkpoint: str, image_path: str, out_path: str,
                    score_thr: float = 0.3, device: str = 'cpu') -> dict:
    """Run the detector on ``image_path`` and write the drawing to ``out_path``."""
    from mmdet.apis import inference_detector

    from .detector_checkpoint import init_checked_detector

    image = cv2.imread(image_path) if osp.isfile(image_path) else None
    if image is None:
        raise FileNotFoundError(f'cannot read image {image_path}: '
                                f'{"not a readable image" if osp.isfile(image_path) else "no such file"}')
    model = init_checked_detector(config, checkpoint, device=device)
    result = inference_detector(model, image).pred_instances
    classes = model.dataset_meta['classes']
    drawn = draw_detections(image, result.bboxes.cpu().numpy(), result.labels.cpu().numpy(),
                            result.scores.cpu().numpy(), classes, score_thr)
    if not cv2.imwrite(out_path, drawn):
        raise OSError(f'cannot write {out_path}')
    keep = result.scores >= score_thr
    return dict(num_detections=int(keep.sum()), out=out_path)
