"""Torso: the deformable-convolution UNet that completes the frame (paper Fig. 4)."""
