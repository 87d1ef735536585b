# iBOT with FasterViT-0 (HAT off, 2 channels; spec §3, §6): the CLS embedding is the mean of the
# final /32 tokens (FasterViT.forward_ssl), so the head takes 512 channels. Masks on the 32-px
# grid (AOIMultiCrop with mask_patch_size=32). The patch loss starts after the first 25 % of the
# schedule (the paper's 25 of 100 epochs); until then only the CLS loss trains.
_base_ = ['./ibot_vit-tiny.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='FasterViT',
        arch='0',
        in_channels=2,
        drop_path_rate=0.2,
        hat=False),
    head=dict(in_channels=512),
    patch_loss_start=0.25)
