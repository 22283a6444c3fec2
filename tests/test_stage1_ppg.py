"""Phone posteriors from PocketSphinx's acoustic model, read directly (core/stage1/ppg.py).

Known utterances are spoken by espeak-ng (skipped with the reason when it is absent); the phone
loop of the phonetic front end is the reference for what was said.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from talkstudio.core.errors import MediaError
from talkstudio.core.stage1 import phonetic as ph
from talkstudio.core.stage1 import ppg
from talkstudio.core.stage1.config import Stage1Config
from talkstudio.core.stage1.features import AudioFrontEnd
from talkstudio.core.stage1.formants import NUM_FORMANT_FEATURES
from tests.test_stage1_phonetic import frame_truth, needs_espeak, speak, with_pauses


def test_the_model_has_the_english_phones_with_normalised_weights() -> None:
    model = ppg.AcousticModel.shared()
    assert len(model.phones) == ppg.NUM_PHONES
    assert {"AA", "B", "M", "SIL", "ZH"} <= set(model.phones)
    for w in model.weights:  # [42, K, 3]: each state's weights over its codebook
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-4)


def test_rows_are_posteriors_and_frames_past_the_audio_are_silence() -> None:
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16000) * 0.1).astype(np.float32)  # 1 s: 25 frames
    rows = ppg.ppg_features(audio, 30, 0.5)
    assert rows.shape == (30, ppg.PPG_DIM)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-5)
    silence = ppg.AcousticModel.shared().silence
    assert np.all(rows[26:, silence] == 1.0)
    assert rows[:25, silence].max() < 1.0
    assert ppg.ppg_features(np.zeros(0, np.float32), 3, 0.5)[:, silence].tolist() == [1.0] * 3


def test_a_larger_scale_sharpens_the_posteriors() -> None:
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(8000) * 0.1).astype(np.float32)
    soft, sharp = ppg.ppg_features(audio, None, 0.05), ppg.ppg_features(audio, None, 2.0)
    assert sharp.max(axis=1).mean() > soft.max(axis=1).mean() + 0.1


@needs_espeak
def test_silences_and_phones_are_where_they_were_spoken() -> None:
    audio, pause = with_pauses(
        [speak("Good morning, my friend."), speak("Open wide.")], [0.6, 0.8, 0.6]
    )
    silent, loud = frame_truth(audio, pause)
    model = ppg.AcousticModel.shared()
    rows = ppg.ppg_features(audio, None, 0.5)
    best = [model.phones[i] for i in rows.argmax(axis=1)]
    quiet = np.isin(best, ["SIL", "+NSN+", "+SPN+"])
    inner = silent & np.roll(silent, 1) & np.roll(silent, -1)  # a frame away from speech
    assert np.mean(quiet[inner]) > 0.9
    assert np.mean(~quiet[loud & ~silent]) > 0.9
    # frame by frame, without a search, the most likely phone is often the phone loop's
    frame_s = 640 / 16000
    hits = total = 0
    for seg in ph.phone_segments(audio):
        if seg.is_silence:
            continue
        for i in range(int(np.ceil(seg.start / frame_s)), int(seg.end / frame_s)):
            if i < len(best):
                total += 1
                hits += best[i] == seg.phone
    assert total > 20 and hits / total > 0.25, (hits, total)


def test_the_front_end_appends_the_block_after_the_phonetic_rows() -> None:
    plain = AudioFrontEnd(Stage1Config(audio_features="mel+phonetic"))
    front = AudioFrontEnd(Stage1Config(audio_features="mel+phonetic", ppg_scale=0.5))
    assert front.in_dim == plain.in_dim + ppg.PPG_DIM
    cols = front.ppg_columns()
    assert cols.start == plain.phonetic_columns().stop
    assert cols.stop == front.in_dim - NUM_FORMANT_FEATURES
    assert plain.ppg_columns().start == plain.ppg_columns().stop
    rng = np.random.default_rng(2)
    rows = front((rng.standard_normal(12800) * 0.1).astype(np.float32))
    assert rows.shape == (20, front.in_dim)
    np.testing.assert_allclose(rows[:, cols].sum(axis=1), 1.0, atol=1e-5)
    std = front.feature_std(rows)
    assert np.all(std[cols] >= 0.1)
    mel = AudioFrontEnd(Stage1Config(audio_features="mel", ppg_scale=0.5))  # no phonetic block
    assert mel.ppg_columns() == slice(4 * 80, 4 * 80 + ppg.PPG_DIM)
    rows = mel((rng.standard_normal(12800) * 0.1).astype(np.float32))
    np.testing.assert_allclose(rows[:, mel.ppg_columns()].sum(axis=1), 1.0, atol=1e-5)


def test_a_damaged_model_file_says_what_to_do(tmp_path: Path) -> None:
    folder = tmp_path / "en-us"
    shutil.copytree(ph.model_paths()[0], folder)
    (folder / "means").write_bytes(b"not a model")
    with pytest.raises(MediaError, match="reinstall pocketsphinx"):
        ppg.AcousticModel(str(folder))
    shutil.copy(Path(ph.model_paths()[0]) / "means", folder / "means")
    whole = (folder / "sendump").read_bytes()
    (folder / "sendump").write_bytes(whole[: len(whole) // 2])  # cut short
    with pytest.raises(MediaError, match=r"damaged.*reinstall pocketsphinx"):
        ppg.AcousticModel(str(folder))
    (folder / "sendump").unlink()
    with pytest.raises(MediaError, match="reinstall pocketsphinx"):
        ppg.AcousticModel(str(folder))


def test_a_negative_scale_is_refused() -> None:
    from talkstudio.core.errors import ConfigError

    with pytest.raises(ConfigError, match="ppg_scale"):
        Stage1Config(ppg_scale=-1.0).check()
