# The single-device benchmark (paper §5.3: one device, 42 labelled images to learn from, 24 to
# test on): every split is drawn from one device family of the synthetic generator, in its own
# root (generated on first use; the same as `tools/make_synthetic_aoi.py data/synthetic_aoi_single
# --single-device --num-train 42 --num-val 8 --num-test 24 --num-pretrain 0`). Leaves put
# `single_device_data` into their dataloaders' `dataset`.
single_device_root = 'data/synthetic_aoi_single'
single_device_data = dict(
    data_root=single_device_root,
    synthetic=dict(data_root=single_device_root, seed=0, single_device=True, num_train=42,
                   num_val=8, num_test=24, num_pretrain=0))
