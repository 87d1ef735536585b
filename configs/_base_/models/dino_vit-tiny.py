# DINO with ViT-Tiny (spec §5): student = AOIViT + DINOHead (384 -> 2048 -> 2048 -> 256, L2 norm,
# weight-normalised 256 -> 768); teacher = EMA of the student backbone and head (built by DINO).
# The position table is built for 512 (spec §1.4) and interpolated to the crop sizes. The teacher
# momentum and temperature schedules are in the schedule's TeacherScheduleHook.
model = dict(
    type='DINO',
    data_preprocessor=dict(type='AOISelfSupDataPreprocessor'),
    backbone=dict(
        type='AOIViT',
        arch='tiny',
        in_channels=2,
        img_size=512,
        patch_size=16,
        drop_path_rate=0.0),
    head=dict(
        type='DINOHead',
        in_channels=384,
        hidden_channels=2048,
        bottleneck_channels=256,
        out_channels=768),
    loss_cls=dict(
        type='DINOLoss', out_channels=768, student_temp=0.1, teacher_temp=0.04,
        center_momentum=0.9))
