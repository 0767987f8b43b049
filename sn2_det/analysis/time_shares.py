"""Where a Light-Head R-CNN spends its time, part by part (the paper's Figure 2).

Parts: backbone; thin feature map (the neck); RPN and proposals (head convs,
decoding, NMS); PS-RoI Align (the RoI extractor); R-CNN subnet (the bbox head);
post-processing (box decoding and class-wise NMS: the rest of the R-CNN predict).
The detector's predict runs stage by stage as ``LightHeadRCNN.predict`` runs it
(features, proposals, R-CNN), each stage timed, and the modules inside a stage timed
by forward hooks, for ``runs`` batches after warm-up; on GPU the device is
synchronised around every part, which adds a little time.
"""
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from typing import Dict

import torch

PARTS = ('backbone', 'thin map', 'RPN and proposals', 'PS-RoI Align', 'R-CNN subnet',
         'post-processing')


def _predict_by_stages(model, inputs, samples, clock):
    """``model.predict(inputs, samples, rescale=False)``'s work, each stage under
    ``clock(part)``; returns the R-CNN's results."""
    x = model.extract_feat(inputs)
    rpn_x, rcnn_x = x[:-1], x[-1:]  # as LightHeadRCNN splits them
    with clock('RPN and proposals'):
        proposals = model.rpn_head.predict(rpn_x, samples, rescale=False)
    with clock('R-CNN all'):
        return model.roi_head.predict(rcnn_x, proposals, samples, rescale=False)


def time_shares(model, inputs, samples, runs: int = 3, warmup: int = 1) -> Dict[str, dict]:
    """{part: dict(ms=per batch, share=fraction of the whole predict)} plus 'total'."""
    sync = torch.cuda.synchronize if inputs.is_cuda else (lambda: None)
    bucket: Dict[str, float] = defaultdict(float)

    @contextmanager
    def clock(part):
        sync()
        t0 = time.perf_counter()
        yield
        sync()
        bucket[part] += time.perf_counter() - t0

    roi = model.roi_head
    modules = {'backbone': model.backbone, 'thin map': model.neck,
               'PS-RoI Align': roi.bbox_roi_extractor, 'R-CNN subnet': roi.bbox_head}
    with torch.no_grad():
        for _ in range(warmup):
            _predict_by_stages(model, inputs, samples, lambda part: nullcontext())
        handles = []
        for part, module in modules.items():
            started = {}

            def start(module, args, part=part, started=started):
                sync()
                started[part] = time.perf_counter()

            def stop(module, args, output, part=part, started=started):
                sync()
                bucket[part] += time.perf_counter() - started[part]

            handles += [module.register_forward_pre_hook(start),
                        module.register_forward_hook(stop)]
        try:
            with clock('total'):
                for _ in range(runs):
                    _predict_by_stages(model, inputs, samples, clock)
        finally:
            for handle in handles:
                handle.remove()
    total = bucket.pop('total')
    bucket['post-processing'] = (bucket.pop('R-CNN all') - bucket['PS-RoI Align']
                                 - bucket['R-CNN subnet'])
    result = {part: dict(ms=1000 * bucket[part] / runs, share=bucket[part] / total)
              for part in PARTS}
    result['total'] = dict(ms=1000 * total / runs, share=1.0)
    return result
