# The DINO / iBOT CPU recipes' data: a larger unlabelled synthetic set in its own root (600
# images, seed 0, no labelled splits: the root and settings of the MAE CPU recipes), since
# 60 images are memorised within minutes; smaller multi-crop (2 x 128 + 4 x 64 px, multiples of
# the 32-px FasterViT grid) so that a 2-core CPU runs enough iterations in 20 minutes.
_base_ = ['./aoi_pretrain_multicrop.py']
pretrain_cpu_root = 'data/synthetic_aoi_pretrain'
multicrop_cpu = dict(_base_.multicrop, global_size=128, local_size=64, num_local=4)
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    dataset=dict(
        data_root=pretrain_cpu_root,
        synthetic=dict(
            data_root=pretrain_cpu_root, num_pretrain=600, seed=0, num_train=0, num_val=0,
            num_test=0),
        pipeline=[dict(type='LoadAOIImage'), multicrop_cpu, dict(type='PackInputs')]))
