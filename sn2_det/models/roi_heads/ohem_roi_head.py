"""mmdet's ``StandardRoIHead`` with OHEM pooled over the images of a batch, as the
Light-Head R-CNN authors' ``sum_ohem_loss`` (the hardest ``num * images`` RoIs of a
GPU's batch); ranking in :class:`~sn2_det.models.task_modules.HardestRoISampler`."""
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS

from ...utils.errors import ConfigError


@MODELS.register_module()
class OHEMRoIHead(StandardRoIHead):
    """Assigns per image, then lets ``HardestRoISampler(pool='batch')`` choose the
    RoIs of all images at once; the box losses are mmdet's. Any other sampler:
    ``StandardRoIHead``'s per-image flow."""

    def loss(self, x, rpn_results_list, batch_data_samples) -> dict:
        if getattr(self.bbox_sampler, 'pool', None) != 'batch':
            return super().loss(x, rpn_results_list, batch_data_samples)
        if self.with_mask:
            raise ConfigError('OHEMRoIHead has no mask branch')
        gt_instances, gt_ignore, _ = unpack_gt_instances(batch_data_samples)
        assign_results = []
        for rpn_results, gts, ignore in zip(rpn_results_list, gt_instances, gt_ignore):
            rpn_results.priors = rpn_results.pop('bboxes')
            assign_results.append(self.bbox_assigner.assign(rpn_results, gts, ignore))
        sampling_results = self.bbox_sampler.sample_batch(
            assign_results, rpn_results_list, gt_instances, feats=x)
        return dict(self.bbox_loss(x, sampling_results)['loss_bbox'])
