"""Media input/output: decode video and audio, encode MP4, probe streams (PyAV)."""
