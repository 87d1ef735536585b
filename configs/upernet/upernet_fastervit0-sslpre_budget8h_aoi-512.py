# Fine-tune FasterViT-0 + multi-label UPerNet from a self-supervised checkpoint (MAE / iBOT),
# paper protocol. The backbone weights are loaded weights-only; the log says how many backbone
# tensors were loaded, and none matching is an error.
#   python tools/train.py configs/upernet/upernet_fastervit0-sslpre_budget8h_aoi-512.py \
#       --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/mae_fastervit0_budget8h_aoi-512/iter_N.pth
# (N: the iteration the time budget stopped at, named in that work dir's last_checkpoint file)
_base_ = ['./upernet_fastervit0_budget8h_aoi-512.py']
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/ssl/backbone.pth',
                      prefix='backbone.')))
cpu_recipe = 'configs/upernet/upernet_fastervit0-maepre_773it_aoi-256.py'
