# Retrieval on the synthetic AOI benchmark: the memory holds every patch of the labelled training
# images, pad + centre-cropped to 512 (spec §8.1: the evaluation pipeline); evaluation as for the
# fine-tuned models. RetrievalMemoryHook builds the memory before tools/test.py evaluates (after
# the checkpoint is loaded); set load_from / save_to to reuse one (tools/memory.py).
_base_ = ['./aoi_synthetic.py']
memory_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=_base_.dataset_type,
        data_root=_base_.data_root,
        synthetic=_base_.synthetic_cfg,
        data_prefix=dict(img_path='images/train', seg_map_path='labels/train'),
        pipeline=_base_.test_pipeline))
train_dataloader = None
val_dataloader = dict(num_workers=1, persistent_workers=False)
test_dataloader = dict(num_workers=1, persistent_workers=False)
# whole_images=True: the memory holds whole images (no 512 crop), each padded to the patch multiple
# with black as queries are (--cfg-options custom_hooks.0.whole_images=True)
custom_hooks = [dict(type='RetrievalMemoryHook', dataloader=memory_dataloader, whole_images=False)]
# evaluation only: nothing is trained
train_cfg = None
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
