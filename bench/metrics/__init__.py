"""Evaluation engine: FID, LPIPS, SSIM and PSNR under named protocols (see README.md here).

One file per metric and per feature extractor; ``protocols.py`` fixes every choice of each
protocol; ``engine.py`` streams a folder of generated images through all metrics at once.
"""
