"""CFLD (Lu et al., CVPR 2024) on current diffusers: model, official checkpoints, configs.

Model API (see README.md here): ``CFLDConfig`` (config.py), ``CFLDModel`` (model.py),
``load_official`` / ``from_official`` / ``save_pretrained`` / ``load_pretrained`` (checkpoint.py),
``load_unet`` / ``load_vae`` / ``build_vae`` / ``load_swin_imagenet`` (pretrained.py). Nothing is
imported here, so ``import methods.cfld`` stays cheap for the plugin registry.
"""
