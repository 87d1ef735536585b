# The SSL retrieval probe (RetrievalProbeHook, the reference's checkpoint check): every 1000
# iterations the student's patch tokens label the labelled synthetic validation images from a
# memory of the training images (patch level, attention, k = 30, threshold 0.3, beta = 0.02),
# logged as probe/mIoU and probe/IoU.<class>. 512² centre crops; the labelled root is generated on
# first use. Used by the paper-protocol SSL schedules, and once at the end of the 20-minute CPU
# recipes (interval=None: after the time budget, outside it).
probe_root = 'data/synthetic_aoi'
probe_pipeline = [
    dict(type='LoadAOIImage'),
    dict(type='LoadMultiLabelAnnotations'),
    dict(type='PadCenterCrop', size=(512, 512)),
    dict(type='PackMultiLabelSegInputs'),
]
probe_memory_dataloader = dict(
    batch_size=4,
    num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='AOIDataset', data_root=probe_root,
                 synthetic=dict(data_root=probe_root, seed=0),
                 data_prefix=dict(img_path='images/train', seg_map_path='labels/train'),
                 pipeline=probe_pipeline))
retrieval_probe = dict(
    type='RetrievalProbeHook',
    memory_dataloader=probe_memory_dataloader,
    query_dataloader=dict(probe_memory_dataloader, dataset=dict(
        probe_memory_dataloader['dataset'],
        data_prefix=dict(img_path='images/val', seg_map_path='labels/val'))),
    interval=1000, k=30, threshold=0.3, beta=0.02, aggregation='attention')
