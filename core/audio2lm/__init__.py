"""Stage 1 (paper Sec. IV-B): audio features, landmark encoder, decoder, training, inference."""
