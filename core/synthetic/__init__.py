"""Synthetic subjects with exact ground truth: a parametric 3D head, speech-like audio, renders."""
