# Kept short name (documented command) for upernet/upernet_fastervit0_budget22min_aoi-256.py
_base_ = ['./upernet/upernet_fastervit0_budget22min_aoi-256.py']
