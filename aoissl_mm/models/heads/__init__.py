"""Heads of the self-supervised algorithms (mmpretrain ``MODELS``): DINO / iBOT projection."""
