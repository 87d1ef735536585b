# iBOT with ViT-Tiny (spec §6): DINO's CLS loss plus the masked-patch loss (masked tokens only,
# its own centre) through the shared DINOHead; position table built for 224 (spec §1.4).
# The masks come from the pipeline (AOIMultiCrop with mask_patch_size=16).
_base_ = ['./dino_vit-tiny.py']
model = dict(
    type='IBOT',
    backbone=dict(img_size=224),
    loss_patch=dict(
        type='IBOTPatchLoss', out_channels=768, student_temp=0.1, teacher_temp=0.04,
        center_momentum=0.9),
    patch_loss_start=0.0)
