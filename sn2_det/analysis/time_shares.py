"""Where a Light-Head R-CNN spends its time, part by part (the paper's Figure 2).

Parts: backbone; thin feature map (the neck); RPN and proposals (head convs,
decoding, NMS); PS-RoI Align (the RoI extractor); R-CNN subnet (the bbox head);
post-processing (box decoding and class-wise NMS: the rest of the R-CNN predict).
Each part's method is wrapped with a timer for ``runs`` batches after warm-up; on
GPU the device is synchronised around every part, which adds a little time.
"""
import time
from collections import defaultdict
from typing import Dict

import torch

PARTS = ('backbone', 'thin map', 'RPN and proposals', 'PS-RoI Align', 'R-CNN subnet',
         'post-processing')


def _timed(fn, bucket: Dict[str, float], key: str, sync):
    def wrapper(*args, **kwargs):
        sync()
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        sync()
        bucket[key] += time.perf_counter() - t0
        return out
    return wrapper


def time_shares(model, inputs, samples, runs: int = 3, warmup: int = 1) -> Dict[str, dict]:
    """{part: dict(ms=per batch, share=fraction of the whole predict)} plus 'total'."""
    device_is_cuda = inputs.is_cuda
    sync = torch.cuda.synchronize if device_is_cuda else (lambda: None)
    bucket: Dict[str, float] = defaultdict(float)
    roi = model.roi_head
    targets = [(model.backbone, 'forward', 'backbone'), (model.neck, 'forward', 'thin map'),
               (model.rpn_head, 'predict', 'RPN and proposals'),
               (roi.bbox_roi_extractor, 'forward', 'PS-RoI Align'),
               (roi.bbox_head, 'forward', 'R-CNN subnet'), (roi, 'predict', 'R-CNN all')]
    with torch.no_grad():
        for _ in range(warmup):
            model.predict(inputs, samples, rescale=False)
        saved = [(obj, name, obj.__dict__.get(name)) for obj, name, _ in targets]
        try:
            for obj, name, key in targets:
                setattr(obj, name, _timed(getattr(obj, name), bucket, key, sync))
            total = 0.0
            for _ in range(runs):
                sync()
                t0 = time.perf_counter()
                model.predict(inputs, samples, rescale=False)
                sync()
                total += time.perf_counter() - t0
        finally:
            for obj, name, before in saved:
                if before is None:
                    obj.__dict__.pop(name, None)
                else:
                    setattr(obj, name, before)
    bucket['post-processing'] = (bucket.pop('R-CNN all') - bucket['PS-RoI Align']
                                 - bucket['R-CNN subnet'])
    result = {part: dict(ms=1000 * bucket[part] / runs, share=bucket[part] / total)
              for part in PARTS}
    result['total'] = dict(ms=1000 * total / runs, share=1.0)
    return result
