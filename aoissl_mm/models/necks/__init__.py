"""Necks of the self-supervised algorithms (mmpretrain ``MODELS``): the MAE decoder."""
