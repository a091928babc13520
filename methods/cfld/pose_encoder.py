"""Pose adapter (T2I-Adapter style): 21-channel pose map -> one feature per UNet cross-attn down block.

PixelUnshuffle(4) + 1x1 conv, then ResNet stages (diffusers ``ResnetBlock2D`` without time
embedding) separated by 2x2 average pooling. No zero init here: the official adapter starts random,
and its features reach the UNet only through the adapter path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.resnet import ResnetBlock2D
from torch import nn

from methods.cfld.config import CFLDConfig


class PoseEncoder(nn.Module):
    def __init__(self, config: CFLDConfig) -> None:
        super().__init__()
        p = config.pose
        self.unshuffle = nn.PixelUnshuffle(p.downscale_factor)
        self.conv_in = nn.Conv2d(p.pose_channels * p.downscale_factor**2, p.in_channels, kernel_size=1)
        ins = [p.in_channels, *p.channels[:-1]]
        self.resnets = nn.ModuleList(
            ResnetBlock2D(in_channels=i, out_channels=o, temb_channels=None) for i, o in zip(ins, p.channels)
        )

    def forward(self, pose_map: torch.Tensor) -> list[torch.Tensor]:
        x = self.conv_in(self.unshuffle(pose_map))
        features = []
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, None)
            features.append(x)
            if i + 1 < len(self.resnets):
                # diffusers Downsample2D(use_conv=False) = 2x2 average pooling, stride 2.
                x = F.avg_pool2d(x, kernel_size=2, stride=2)
        return features
