# The fine-tuned baseline of the single-device comparison (paper §5.3): the fixed 773-iteration
# FasterViT-0 CPU recipe trained from scratch on the single device's 42 labelled images, tested
# on its 24 test images (the retrieval side: configs/retrieval/
# retrieval-patch-sim_vit-tiny_single-device_aoi-512.py).
_base_ = ['./upernet_fastervit0_773it_aoi-256.py', '../_base_/datasets/single_device.py']
train_dataloader = dict(dataset=_base_.single_device_data)
val_dataloader = dict(dataset=_base_.single_device_data)
test_dataloader = dict(dataset=_base_.single_device_data)
