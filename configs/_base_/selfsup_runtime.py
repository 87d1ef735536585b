# Runtime shared by every aoissl_mm self-supervised config: the segmentation runtime in the
# mmpretrain scope, with mmpretrain's visualizer, no segmentation drawing and no "best mIoU"
# checkpoint (there is no validation metric).
_base_ = ['./default_runtime.py']
default_scope = 'mmpretrain'
visualizer = dict(_delete_=True, type='UniversalVisualizer', vis_backends=_base_.vis_backends)
default_hooks = dict(
    checkpoint=dict(save_best=None),
    visualization=dict(_delete_=True, type='mmpretrain.VisualizationHook', enable=False))
