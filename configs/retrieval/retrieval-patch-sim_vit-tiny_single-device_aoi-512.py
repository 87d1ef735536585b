# Single-device retrieval (paper §5.3): the memory is every patch of the device's 42 labelled
# training images, evaluated on its 24 test images. Compare with
# configs/upernet/upernet_fastervit0_773it_single-device_aoi-256.py (FasterViT-0 + UPerNet
# fine-tuned on the same 42 images with the CPU recipe).
_base_ = ['./retrieval-patch-sim_vit-tiny_aoi-512.py', '../_base_/datasets/single_device.py']
val_dataloader = dict(dataset=_base_.single_device_data)
test_dataloader = dict(dataset=_base_.single_device_data)
custom_hooks = [
    dict(type='RetrievalMemoryHook',
         dataloader=dict(_base_.memory_dataloader, dataset=dict(
             _base_.memory_dataloader.dataset, **_base_.single_device_data)))
]
