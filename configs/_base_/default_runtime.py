# Runtime shared by every aoissl_mm segmentation config (mmseg scope).
default_scope = 'mmseg'
custom_imports = dict(imports=['aoissl_mm'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # the GPU backend; a distributed run without CUDA gets 'gloo' at setup time
    # (aoissl_mm.utils.runner_setup.resolve_dist_backend)
    dist_cfg=dict(backend='nccl'),
)
# DDP (--launcher pytorch/slurm/mpi): some trainable parameters get no gradient in some
# iterations: the backbones' mask tokens (AOIViT, FasterViT) and FasterViT's final norm
# outside SSL, DINO's mask token, iBOT's before its patch loss starts. They stay (SSL
# checkpoints load into them), so DDP must look for them after each forward: measured
# ~3 % per iteration (FasterViT-0 UperNet, 128², batch 2, CPU). Configs whose every
# parameter always gets a gradient set it to False (the CNN baselines).
find_unused_parameters = True
vis_backends = [dict(type='LocalVisBackend')]
# no fixed ``name``: each runner gets its own visualizer instance (named after the run)
visualizer = dict(type='MultiLabelSegLocalVisualizer', vis_backends=vis_backends, alpha=0.4)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
# switch optim_wrapper to AmpOptimWrapper automatically when CUDA is present
amp_if_cuda = True
default_hooks = dict(
    # the ETA is the time left in a TimeBudgetHook's budget when there is one
    timer=dict(type='BudgetIterTimerHook'),
    # `lr` in the log / plots = the LR the iteration used, of the head (largest) group
    runtime_info=dict(type='HeadLRRuntimeInfoHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # save first, then remove old ones; atomic files (aoissl_mm.compat); no run left without one
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=3,
                    save_best='mIoU', rule='greater'),
    # random generators saved with each checkpoint and restored on --resume
    rng_state=dict(type='RNGStateHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='MultiLabelVisualizationHook', draw=False, interval=1),
)
