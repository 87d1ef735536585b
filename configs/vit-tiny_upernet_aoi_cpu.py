# Kept short name (documented command) for upernet/upernet_vit-tiny_budget22min_aoi-256.py
_base_ = ['./upernet/upernet_vit-tiny_budget22min_aoi-256.py']
