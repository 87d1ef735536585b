# Patch-level retrieval with frozen DINOv2 ViT-S/14 (spec §8.6, the paper's strongest baseline):
# 532² crops (38 x 38 patches of 14 px), third input channel = the mean of the two, k = 30,
# similarity aggregation. The ImageNet weights come from a file you give; nothing is downloaded:
#   python tools/test.py configs/retrieval/retrieval-patch-sim_dinov2-s_aoi-532.py \
#       vit-small-p14_dinov2-pre_3rdparty_20230426-5641ca5a.pth
# (mmpretrain's converted checkpoint, keys under backbone.; any backbone.* checkpoint works).
_base_ = ['./retrieval-patch-sim_vit-tiny_aoi-512.py']
crop_size = (532, 532)
eval_pipeline = [
    dict(type='LoadAOIImage'),
    dict(type='LoadMultiLabelAnnotations'),
    dict(type='PadCenterCrop', size=crop_size),
    dict(type='PackMultiLabelSegInputs'),
]
model = dict(backbone=dict(_delete_=True, type='DINOv2Tokens', arch='dinov2-small',
                           img_size=518, patch_size=14))
val_dataloader = dict(dataset=dict(pipeline=eval_pipeline))
test_dataloader = dict(dataset=dict(pipeline=eval_pipeline))
custom_hooks = [
    dict(type='RetrievalMemoryHook',
         dataloader=dict(_base_.memory_dataloader, dataset=dict(
             _base_.memory_dataloader.dataset, pipeline=eval_pipeline)))
]
