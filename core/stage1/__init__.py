"""Stage 1 (paper Sec. IV-B): audio → the 37 jaw and lip landmarks, autoregressively.

- :mod:`.config` — :class:`~.config.Stage1Config` (presets from ``core.presets``).
- :mod:`.features` — E_aud's fixed front end: log-mel (+ :mod:`.formants`) or frozen
  :mod:`.wav2vec2`, aligned to 25 fps; loudness; driving-audio loading at any rate.
- :mod:`.encoder` — E_lm (landmark encoder) and the trainable audio encoder.
- :mod:`.decoder` — D_a2l: periodic position encoding, biased causal self-attention, linear
  fusion (or FaceFormer's biased cross-attention).
- :mod:`.model` — the assembled network, landmark shifting, zero-initialised output.
- :mod:`.data` — normalised landmark windows of a subject.
- :mod:`.train` — ``train_stage1(subject_dir, config, device)``, a job yielding progress.
- :mod:`.infer` — ``predict(subject_or_model, audio)`` (KV-cached), ``load_stage1``.
- :mod:`.metrics` — LMD in track space, mouth-opening correlation, ``evaluate``.

The package imports nothing heavy itself: ``from talkstudio.core.stage1.config import
Stage1Config`` stays light (no torch).
"""
