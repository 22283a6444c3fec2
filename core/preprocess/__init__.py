"""Preprocessing: from a raw video to a subject folder (tracking, pose, masks, background)."""
