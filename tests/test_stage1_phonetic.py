"""The phonetic front end: frame layout, silence and speech where they are, lips, other languages.

Known utterances are spoken by espeak-ng (a Debian package, installed by build_scripts/install.sh);
those tests skip with the reason when it is absent. Speech and silence are checked against an
energy reference of the clean synthetic signal, whose silences are exact.
"""

from __future__ import annotations

import io
import itertools
import shutil
import subprocess
import sys
from math import gcd
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from talkstudio.core.errors import MediaError
from talkstudio.core.stage1 import phonetic as ph
from talkstudio.core.stage1.config import Stage1Config
from talkstudio.core.stage1.features import AudioFrontEnd
from talkstudio.core.stage1.formants import NUM_FORMANT_FEATURES

V = ph.NUM_VISEMES
FS = 16000
PBM = ph.VISEMES.index("PBM")

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng; build_scripts/install.sh does)",
)


def speak(text: str, voice: str = "en-us") -> np.ndarray:
    """``text`` spoken by espeak-ng's ``voice``, mono float32 at 16 kHz, no trailing pause."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-z", "--stdout", text], capture_output=True, check=True
    ).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    g = gcd(FS, rate)
    return resample_poly(audio, FS // g, rate // g).astype(np.float32)


def with_pauses(parts: list[np.ndarray], pauses: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Silence ``pauses[0]``, part 0, silence ``pauses[1]``, part 1, ...; and a per-sample mask
    [S] of where the inserted silences are."""
    chunks, mask = [], []
    for k, pause in enumerate(pauses):
        n = int(pause * FS)
        chunks.append(np.zeros(n, np.float32))
        mask.append(np.ones(n, bool))
        if k < len(parts):
            chunks.append(parts[k])
            mask.append(np.zeros(len(parts[k]), bool))
    return np.concatenate(chunks), np.concatenate(mask)


def frame_truth(audio: np.ndarray, pause: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames [T] wholly inside an inserted silence, and frames whose energy is speech (within
    20 dB of the loud frames)."""
    t = -(-len(audio) // 640)
    a = np.zeros(t * 640)
    a[: len(audio)] = audio
    m = np.ones(t * 640, bool)
    m[: len(pause)] = pause
    rms = np.sqrt((a.reshape(t, 640) ** 2).mean(1))
    silent = m.reshape(t, 640).all(1)
    loud = rms > 0.1 * np.percentile(rms[~silent], 90)
    return silent, loud


# -- layout, from hand-made phones (no decoder) ---------------------------------------------------


def test_coverage_context_and_pause_channels() -> None:
    segs = [
        ph.PhoneSegment("SIL", 0.0, 0.5),
        ph.PhoneSegment("M", 0.5, 0.56),  # the second half of frame 12 and all of frame 13
        ph.PhoneSegment("AA", 0.56, 0.8),
        ph.PhoneSegment("SIL", 0.8, 0.9),  # a short pause: not a long one
        ph.PhoneSegment("S", 0.9, 1.0),
    ]
    f = ph.features_from_segments(segs, 30)  # 1.2 s: frames 25..29 lie past the last phone
    assert f.shape == (30, ph.PHONETIC_DIM) == (30, 5 * V + 3)
    cover = f[:, :V]
    np.testing.assert_allclose(cover.sum(1), 1.0, atol=1e-6)
    a = ph.VISEMES.index("A")
    # frame 12 = [0.48, 0.52): half silence, half M; frame 13 = [0.52, 0.56): all M.
    assert cover[12, 0] == pytest.approx(0.5) and cover[12, PBM] == pytest.approx(0.5)
    assert cover[13, PBM] == pytest.approx(1.0)
    assert cover[14, a] == pytest.approx(1.0)
    assert cover[27, 0] == pytest.approx(1.0)  # beyond the decoded phones: silence
    # context: the block for offset c holds frame i + c's coverage, silence outside the clip
    for k, c in enumerate(ph.CONTEXT):
        block = f[:, V * (k + 1) : V * (k + 2)]
        for i in range(30):
            j = i + c
            want = cover[j] if 0 <= j < 30 else np.eye(V)[0]
            np.testing.assert_allclose(block[i], want, atol=1e-6)
    long_pause, dist, pos = f[:, 5 * V], f[:, 5 * V + 1], f[:, 5 * V + 2]
    assert np.all(long_pause[:12] == 1) and long_pause[12] == pytest.approx(0.5)
    assert np.all(long_pause[13:25] == 0)  # the 0.1 s pause at 0.8 s is too short
    assert long_pause[25:].max() == 0  # the 0.2 s after the last phone: short as well
    assert dist[0] == 1 and dist[13] == 0 and 0 < dist[11] < dist[5] <= 1
    assert dist[20] > 0  # frame 20's centre (0.82 s) is in the short pause
    assert 0 < pos[14] < pos[15] < pos[18] < 1 and pos[0] == 0


def test_the_uncovered_end_of_a_clip_is_a_pause() -> None:
    segs = [ph.PhoneSegment("AA", 0.0, 0.4)]
    f = ph.features_from_segments(segs, 20)  # 0.8 s: 0.4 s after the vowel
    assert f[:10, 5 * V].max() == 0 and f[11:, 5 * V].min() == 1


def test_unknown_phones_count_as_silence_and_empty_audio() -> None:
    assert ph.PhoneSegment("+SMACK+", 0, 1).is_silence
    assert ph.PhoneSegment("B", 0, 1).viseme == PBM
    assert ph.phone_segments(np.zeros(0, np.float32)) == []
    assert ph.features_from_segments([], 0).shape == (0, ph.PHONETIC_DIM)
    assert set(ph.PHONE_TO_VISEME.values()) == set(ph.VISEMES)


@pytest.mark.parametrize("samples", [1, 639, 641, 12_345, 16_001])
def test_frame_count_of_odd_lengths(samples: int) -> None:
    audio = 0.1 * np.random.default_rng(samples).standard_normal(samples).astype(np.float32)
    f = ph.phonetic_features(audio)
    assert f.shape == (-(-samples // 640), ph.PHONETIC_DIM) and f.dtype == np.float32
    np.testing.assert_allclose(f[:, :V].sum(1), 1.0, atol=1e-5)
    longer = ph.phonetic_features(audio, -(-samples // 640) + 3)
    np.testing.assert_array_equal(longer[: len(f), :V], f[:, :V])
    assert np.all(longer[len(f) :, 0] == 1)  # frames past the audio are silence


@pytest.mark.parametrize("kind", ["phonetic", "mel+phonetic"])
def test_front_end_rows(kind: str) -> None:
    fe = AudioFrontEnd(Stage1Config(audio_features=kind))
    extra = 4 * 80 if kind == "mel+phonetic" else 0
    assert fe.kind == kind and fe.in_dim == extra + ph.PHONETIC_DIM + NUM_FORMANT_FEATURES
    audio = 0.05 * np.random.default_rng(0).standard_normal(16_001).astype(np.float32)
    rows = fe(audio)
    assert rows.shape == (26, fe.in_dim) and np.all(np.isfinite(rows))
    # the phonetic block sits after the log-mel block (the gain jitter touches the mel only)
    np.testing.assert_allclose(rows[:, extra : extra + V].sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["phonetic", "mel+phonetic", "mel"])
def test_absent_viseme_classes_are_not_blown_up(kind: str) -> None:
    """A class a short training clip lacks (std 0) is normalised by 0.1, not by 0.001."""
    fe = AudioFrontEnd(Stage1Config(audio_features=kind))
    rows = np.random.default_rng(0).random((50, fe.in_dim)).astype(np.float32)
    cols = fe.phonetic_columns()
    rows[:, 3] = 0.0  # a constant column in the first block
    if kind != "mel":
        rows[:, cols.start + 5] = 0.0  # an absent viseme class
    std = fe.feature_std(rows)
    np.testing.assert_allclose(std[-1], rows[:, -1].std(), rtol=1e-5)  # a formant column
    if kind == "mel":
        assert cols.stop == cols.start and std[3] == pytest.approx(1e-3)
    else:
        assert cols.stop - cols.start == ph.PHONETIC_DIM
        assert std[cols.start + 5] == pytest.approx(0.1)
        assert std[cols].min() >= 0.1
        assert std[3] == pytest.approx(0.1 if kind == "phonetic" else 1e-3)


def test_silence_is_silence() -> None:
    f = ph.phonetic_features(np.zeros(2 * FS, np.float32))
    assert not ph.speech_mask(f).any()
    assert f[:, 5 * V].min() == 1  # one long pause


def test_missing_pocketsphinx_is_named(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    with pytest.raises(MediaError, match="pocketsphinx"):
        ph.model_paths()
    with pytest.raises(MediaError, match="pocketsphinx"):
        AudioFrontEnd(Stage1Config(audio_features="phonetic"))


def test_bad_audio_is_refused() -> None:
    bad = np.ones(1000)
    bad[3] = np.inf
    with pytest.raises(MediaError, match="NaN or infinite"):
        ph.phone_segments(bad)
    with pytest.raises(MediaError, match="mono"):
        ph.phone_segments(np.zeros((100, 2)))


# -- decoding known speech --------------------------------------------------------------------------


def check_speech_and_silence(audio: np.ndarray, pause: np.ndarray) -> None:
    f = ph.phonetic_features(audio)
    speech = ph.speech_mask(f)
    silent, loud = frame_truth(audio, pause)
    inner = silent & np.roll(silent, 1) & np.roll(silent, -1)  # not next to speech
    assert inner.sum() >= 20 and loud.sum() >= 20
    assert (~speech[inner]).mean() > 0.9, f"speech found in {speech[inner].mean():.0%} of pauses"
    assert speech[loud].mean() > 0.9, f"only {speech[loud].mean():.0%} of loud frames are speech"
    # the long-pause channel is on in the pauses of 0.5 s and more
    assert f[inner, 5 * V].mean() > 0.9 and f[loud, 5 * V].mean() < 0.1


@needs_espeak
def test_english_speech_and_pauses_are_where_they_are() -> None:
    audio, pause = with_pauses(
        [speak("the weather is nice today"), speak("she said that they will come here soon")],
        [0.6, 0.8, 0.5],
    )
    check_speech_and_silence(audio, pause)


@needs_espeak
def test_a_noise_floor_does_not_make_speech() -> None:
    audio, pause = with_pauses([speak("we are going to the station now")], [0.7, 0.7])
    hiss = 0.003 * np.random.default_rng(1).standard_normal(len(audio)).astype(np.float32)
    check_speech_and_silence(audio + hiss, pause)


@needs_espeak
@pytest.mark.parametrize(
    ("voice", "text"),
    [
        ("de", "Guten Morgen, heute scheint die Sonne über der Stadt"),
        ("es", "Buenos días, hoy hace mucho calor en la ciudad"),
    ],
)
def test_other_languages_run_and_find_the_speech(voice: str, text: str) -> None:
    words = text.split(", ")
    audio, pause = with_pauses([speak(w, voice) for w in words], [0.6, 0.6, 0.6])
    check_speech_and_silence(audio, pause)


@needs_espeak
def test_bilabials_close_the_lips_near_their_time() -> None:
    """'my mother' and 'maybe' between lip-free phrases: closed lips only around them."""
    free = speak("she said that it is here")  # no P, B or M
    lips = speak("my mother maybe")
    audio, _ = with_pauses([free, lips, free], [0.5, 0.5, 0.5, 0.5])
    f = ph.phonetic_features(audio)
    t = (np.arange(len(f)) + 0.5) * 640
    starts = np.cumsum([0.5 * FS, len(free), 0.5 * FS, len(lips), 0.5 * FS])
    in_lips = (t >= starts[1] + 0.5 * FS) & (t < starts[2] + 0.5 * FS)
    in_free = ((t >= starts[0]) & (t < starts[1])) | ((t >= starts[3]) & (t < starts[4]))
    closed = f[:, PBM] >= 0.5
    # "my mother maybe" has four bilabials: at least two frames of closed lips among them ...
    assert closed[in_lips].sum() >= 2, np.round(f[in_lips, PBM], 2)
    # ... and the lip-free phrases have fewer than one closed-lips frame in twenty
    assert closed[in_free].mean() < 0.05, np.round(f[in_free, PBM], 2)


@needs_espeak
def test_decoding_is_deterministic_and_cached() -> None:
    audio = speak("one two three")
    ph.clear_cache()
    first = ph.phone_segments(audio)
    assert len(ph._Decoder._cache) == 1
    assert ph.phone_segments(audio.copy()) == first and len(ph._Decoder._cache) == 1
    ph.clear_cache()
    assert ph.phone_segments(audio) == first  # decoded again: the same phones
    assert any(not s.is_silence for s in first)
    assert all(a.end == pytest.approx(b.start) for a, b in itertools.pairwise(first))


def read_arpa(path: Path) -> dict[tuple[str, ...], float]:
    """The n-gram → log10 probability table of an ARPA file, checking its header counts."""
    table: dict[tuple[str, ...], float] = {}
    counts: dict[int, int] = {}
    n = 0
    for line in path.read_text().splitlines():
        if line.startswith("ngram "):
            k, c = line[6:].split("=")
            counts[int(k)] = int(c)
        elif line.endswith("-grams:"):
            n = int(line[1])
        elif line == "\\end\\":
            n = 0
        elif n and line.strip():
            fields = line.split()
            table[tuple(fields[1 : 1 + n])] = float(fields[0])
    got = {k: sum(len(g) == k for g in table) for k in counts}
    assert got == counts, f"header {counts}, entries {got}"
    return table


def test_the_phone_bigram_model_keeps_the_trigram_models_probabilities(tmp_path: Path) -> None:
    ph.write_phone_lm(str(tmp_path / "p2.arpa"), 2)
    ph.write_phone_lm(str(tmp_path / "p1.arpa"), 1)
    bi, uni = read_arpa(tmp_path / "p2.arpa"), read_arpa(tmp_path / "p1.arpa")
    assert max(map(len, bi)) == 2 and max(map(len, uni)) == 1
    assert {g: p for g, p in bi.items() if len(g) == 1} == uni
    assert len(uni) > 40 and sum(len(g) == 2 for g in bi) > 1000  # 39 phones, fillers, ends
    assert ("P",) in uni and -3 < uni[("AH",)] < -0.5 and ("AA", "B") in bi
    with pytest.raises(ValueError, match="order 3"):
        ph.write_phone_lm(str(tmp_path / "p3.arpa"), 3)


@needs_espeak
def test_the_fast_setting_finds_what_the_reference_setting_finds(monkeypatch) -> None:
    """The shipped (bigram, one Gaussian) decoder and the reference (trigram, four) agree on
    most frames of a known sentence, and both find its speech and its pauses."""
    audio, pause = with_pauses([speak("the weather is nice today"), speak("we will go")], [0.6] * 3)
    fast = ph.phonetic_features(audio)
    monkeypatch.setattr(ph, "DECODER_SETTINGS", dict(ph.REFERENCE_SETTINGS))
    ref = ph.phonetic_features(audio)
    assert not np.array_equal(fast, ref)  # two decoders really ran
    agree = fast[:, :V].argmax(1) == ref[:, :V].argmax(1)
    assert agree.mean() > 0.7, f"the settings agree on {agree.mean():.0%} of frames"
    check_speech_and_silence(audio, pause)


# -- stage 1 on the phonetic front end -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["phonetic", "mel+phonetic"])
def test_stage1_trains_and_predicts_on_phonetic_features(kind: str, tmp_path: Path) -> None:
    import json

    from _stage1_helpers import write_envelope_subject

    from talkstudio.core.progress import run_job
    from talkstudio.core.stage1.infer import load_stage1, predict
    from talkstudio.core.stage1.train import train_stage1

    root = write_envelope_subject(tmp_path / "env", seconds=8.0)
    cfg = Stage1Config.from_preset(
        "preview",
        audio_features=kind,
        init="scratch",  # the front end asked for, not the prior's
        steps=70,
        val_every=35,
        window=60,
        batch=2,
        lr=3e-3,
        warmup=5,
        rollout_passes=1,
        cpu_threads=1,
    )
    result = run_job(train_stage1(root, cfg))
    saved = json.loads((root / "models/stage1/config.json").read_text())
    assert saved["config"]["audio_features"] == kind
    s = result.scores
    # the mouth opens with the envelope's syllables and shuts in its pauses, which the phonetic
    # rows hear (the phones themselves are noise: the "speech" is a buzz)
    assert s.lmd < 0.8 * s.lmd_baseline and s.corr > 0.5, s
    model = load_stage1(root)
    phonetic = AudioFrontEnd(cfg).phonetic_columns()
    assert model.feat_std[phonetic].min() >= 0.1  # absent viseme classes are not blown up
    audio, _ = with_pauses([0.1 * np.sin(np.arange(FS) * 0.05).astype(np.float32)], [0.3, 0.3])
    pts = predict(model, audio)
    assert pts.shape == (-(-len(audio) // 640), 37, 3) and np.all(np.isfinite(pts))
