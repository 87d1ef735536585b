# Kept short name (documented command) for upernet/upernet_fastervit0_budget8h_aoi-512.py
_base_ = ['./upernet/upernet_fastervit0_budget8h_aoi-512.py']
