"""Stage 2 head (paper Sec. IV-C): encodings, field, renderer, trainer."""
