"""Light-Head R-CNN (Li et al. 2017), the detector of ShuffleNet V2's Table 7.

The neck (:class:`LargeSeparableConv`) keeps the stride-16 feature for the RPN and
turns the last stage into the thin feature map; this detector routes them: the RPN
sees every feature but the last, the R-CNN subnet (PS-RoI extractor and one FC of
2048) only the thin map.

A state dict loaded into the detector must fit it exactly and hold finite weights,
whoever loads it (mmengine's loaders, mmdet's ``init_detector`` and ``DetInferencer``
load non-strictly): the detector registers
:func:`~sn2_det.apis.detector_checkpoint.refuse_misfit_state_dict` as its state-dict
pre-hook.
"""
import copy

import torch

from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS

from ...utils.errors import ConfigError


def _check_two_features(count: int) -> None:
    if count < 2:
        raise ConfigError('LightHeadRCNN needs at least two features (RPN input, thin '
                          'map); set backbone.out_indices to two stages, e.g. (1, 2) for '
                          'ShuffleNetV2')


@MODELS.register_module()
class LightHeadRCNN(TwoStageDetector):
    """``neck.in_channels`` and ``rpn_head.in_channels`` may be left None: they are then
    read from the backbone's ``out_channels`` (last output, and the one before), so
    one config serves every backbone of a family (``configs/table7``). Likewise the
    RoI extractor's ``featmap_strides`` left None follows the backbone's last
    ``out_strides`` (16 with ``last_stage_dilation=2``); set, it must equal it."""

    def __init__(self, backbone: dict, neck: dict, rpn_head: dict, **kwargs):
        if neck.get('in_channels') is None or rpn_head.get('in_channels') is None:
            channels = MODELS.build(backbone).out_channels
            _check_two_features(len(channels))
            neck = dict(neck, in_channels=neck.get('in_channels') or channels[-1])
            rpn_head = dict(rpn_head,
                            in_channels=rpn_head.get('in_channels') or channels[-2])
        super().__init__(backbone=backbone, neck=neck, rpn_head=rpn_head, **kwargs)
        self._follow_backbone_stride()
        from ...apis.detector_checkpoint import refuse_misfit_state_dict
        self.register_load_state_dict_pre_hook(refuse_misfit_state_dict)

    def _follow_backbone_stride(self) -> None:
        extractor = self.roi_head.bbox_roi_extractor
        strides = list(getattr(self.backbone, 'out_strides', None) or [None])
        if None not in strides and strides != sorted(strides):
            raise ConfigError(
                f'model.backbone.out_indices gives outputs at strides {strides}: '
                f'LightHeadRCNN takes them shallow to deep (the RPN reads all but the last, '
                f'the thin map the last); list the indices in increasing order')
        stride = strides[-1]
        key = 'model.roi_head.bbox_roi_extractor.featmap_strides'
        if extractor.featmap_strides is None:
            if stride is None:
                raise ConfigError(f'{key} is None and the backbone '
                                  f'{type(self.backbone).__name__} has no out_strides to '
                                  f'follow; set it to the thin map\'s stride, e.g. [32]')
            extractor.featmap_strides = [stride]
        elif stride is not None and list(extractor.featmap_strides) != [stride]:
            raise ConfigError(f'{key} is {list(extractor.featmap_strides)}, but the thin '
                              f'map is at stride {stride} (the backbone\'s last output); '
                              f'set it to [{stride}] or None (follows the backbone)')

    def _split(self, batch_inputs):
        x = self.extract_feat(batch_inputs)
        _check_two_features(len(x))
        return x[:-1], x[-1:]

    def _proposals(self, rpn_x, batch_data_samples):
        if batch_data_samples[0].get('proposals', None) is not None:
            return [sample.proposals for sample in batch_data_samples]
        return self.rpn_head.predict(rpn_x, batch_data_samples, rescale=False)

    def loss(self, batch_inputs, batch_data_samples) -> dict:
        rpn_x, rcnn_x = self._split(batch_inputs)
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_samples = copy.deepcopy(batch_data_samples)
        for sample in rpn_samples:
            sample.gt_instances.labels = torch.zeros_like(sample.gt_instances.labels)
        rpn_losses, proposals = self.rpn_head.loss_and_predict(
            rpn_x, rpn_samples, proposal_cfg=proposal_cfg)
        losses = {(k if 'rpn' in k or 'loss' not in k else f'rpn_{k}'): v
                  for k, v in rpn_losses.items()}
        losses.update(self.roi_head.loss(rcnn_x, proposals, batch_data_samples))
        return losses

    def predict(self, batch_inputs, batch_data_samples, rescale: bool = True):
        rpn_x, rcnn_x = self._split(batch_inputs)
        proposals = self._proposals(rpn_x, batch_data_samples)
        results = self.roi_head.predict(rcnn_x, proposals, batch_data_samples,
                                        rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _forward(self, batch_inputs, batch_data_samples=None):
        rpn_x, rcnn_x = self._split(batch_inputs)
        proposals = self._proposals(rpn_x, batch_data_samples)
        return (self.roi_head.forward(rcnn_x, proposals, batch_data_samples),)
