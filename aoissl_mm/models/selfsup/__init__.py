"""Self-supervised algorithms (mmpretrain ``MODELS``): mask-token MAE, DINO, iBOT."""
