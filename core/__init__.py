"""Talkstudio's engine: media, subjects, preprocessing, the two stages, editing and export.

Pure Python, NumPy and PyTorch. Nothing in this package imports Qt, pyqtgraph or the GUI
packages; an import-linter contract and ``tests/test_core_no_qt.py`` enforce it.
"""
