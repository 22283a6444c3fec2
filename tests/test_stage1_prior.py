"""The stage-1 speaker prior: normalisation, silence, loading, and fine-tuning from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _stage1_helpers import rest_face, speech_like, write_envelope_subject

from talkstudio.core.errors import CheckpointError
from talkstudio.core.landmarks import STAGE1_POINTS, mouth_opening
from talkstudio.core.stage1.config import Stage1Config
from talkstudio.core.stage1.metrics import to68
from talkstudio.core.stage1.model import Stage1Model
from talkstudio.core.stage1.prior import (
    PriorError,
    SpeakerNorm,
    close_silences,
    closed_mouth,
    fit_to_subject,
    load_prior,
    silent_frames,
)
from talkstudio.core.timing import SAMPLE_RATE, SAMPLES_PER_FRAME

P37 = list(STAGE1_POINTS)


def _faces(rng: np.random.Generator, frames: int = 40) -> np.ndarray:
    lm = np.repeat(rest_face()[None], frames, 0)
    lm[:, [*range(6, 11), *range(54, 60), *range(64, 68)], 1] += rng.uniform(0, 0.1, (frames, 1))
    return lm + rng.normal(0, 0.003, lm.shape)


def test_normalisation_round_trips_and_removes_size_and_place() -> None:
    rng = np.random.default_rng(0)
    lm = _faces(rng)
    norm = SpeakerNorm.from_landmarks(lm)
    assert norm.length == pytest.approx(np.linalg.norm(lm.mean(0)[36] - lm.mean(0)[45]))
    disp = norm.normalise(lm[:, P37])
    np.testing.assert_allclose(norm.denormalise(disp), lm[:, P37], atol=1e-5)
    np.testing.assert_allclose(disp.mean(0), 0.0, atol=1e-6)
    # the same motion on a face twice as large, somewhere else: the same normalised motion
    big = 2.0 * lm + np.array([0.3, -0.2, 1.0])
    other = SpeakerNorm.from_landmarks(big)
    np.testing.assert_allclose(other.normalise(big[:, P37]), disp, atol=1e-5)
    # a subject's own mean and length map the motion back onto that subject
    np.testing.assert_allclose(other.denormalise(disp), big[:, P37], atol=1e-5)
    with pytest.raises(ValueError, match="68, 3"):
        SpeakerNorm.from_landmarks(lm[:, :37])


def test_silent_frames_find_long_pauses_only() -> None:
    rng = np.random.default_rng(1)
    speech, _ = speech_like(1.0, rng)
    speech = speech + 0.05 * np.sin(np.arange(len(speech)) / 7.0).astype(np.float32)  # no gaps
    long_gap = np.full(int(0.6 * SAMPLE_RATE), 1e-5, np.float32)
    short_gap = np.zeros(int(0.12 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([speech, long_gap, speech, short_gap, speech])
    frames = -(-len(audio) // SAMPLES_PER_FRAME)
    silent = silent_frames(audio, frames)
    f = 25  # frames per second
    a, b = int(1.0 * f) + 1, int(1.6 * f) - 1
    assert silent[a:b].all()  # the 0.6 s pause
    s0, s1 = int(2.6 * f) + 1, int(2.72 * f)
    assert not silent[s0:s1].any()  # a 0.12 s stop inside speech is not a silence
    assert not silent[: int(f) - 1].any()


def test_silences_close_the_mouth_to_the_subjects_closed_shape() -> None:
    rng = np.random.default_rng(2)
    lm = _faces(rng, 60)
    closed = closed_mouth(lm[:, P37])
    opening = mouth_opening(lm)
    assert mouth_opening(to68(closed[None]))[0] <= np.percentile(opening, 20)
    wide = np.repeat(lm[np.argmax(opening)][None, P37], 30, 0)  # a wide-open prediction
    silent = np.zeros(30, bool)
    silent[5:20] = True
    out = close_silences(wide, silent, closed)
    got = mouth_opening(to68(out))
    shut = mouth_opening(to68(closed[None]))[0]
    span = opening.max() - opening.min()
    assert np.all(got[8:17] <= shut + 0.1 * span)  # inside the run: closed
    np.testing.assert_allclose(out[:5], wide[:5])  # outside: untouched
    np.testing.assert_allclose(out[20:], wide[20:])
    assert got[5] > got[8]  # ramps in


def _tiny_model() -> Stage1Model:
    cfg = Stage1Config(feature_dim=16, lm_ffn=32, dec_ffn=32, window=50)
    return Stage1Model(cfg, 8)


def test_missing_or_corrupt_prior_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PriorError, match=r"prior is missing.*make_prior"):
        load_prior(tmp_path / "nowhere")
    from talkstudio.core.stage1.prior_train import save_prior

    good = tmp_path / "good"
    save_prior(_tiny_model(), good, {"recipe": {}})
    assert load_prior(good).is_prior
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_bytes((good / "config.json").read_bytes())
    (bad / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(PriorError, match="cannot be loaded"):
        load_prior(bad)
    # a subject's own stage-1 model is not a prior
    from talkstudio.core.checkpoint import save_model

    subj = tmp_path / "subject_model"
    m = _tiny_model()
    save_model(subj, "stage1", m.state_dict(), m.config.to_dict(), {"audio_in_dim": 8})
    with pytest.raises(PriorError, match="not the speaker prior"):
        load_prior(subj)


def test_fit_to_subject_maps_the_prior_onto_the_subject() -> None:
    rng = np.random.default_rng(3)
    lm = _faces(rng) * 1.7
    norm = SpeakerNorm.from_landmarks(lm)
    prior = _tiny_model()
    with torch.no_grad():
        prior.head.bias.normal_(0, 1)  # a prior that moves the mouth
    model = fit_to_subject(prior, norm, range_factor=1.5)
    disp = 0.01 * torch.randn(1, 4, 37, 3)
    np.testing.assert_allclose(
        model.to_points(disp).numpy(), norm.mean + disp.numpy() * norm.length * 1.5, atol=1e-5
    )
    assert float(prior.lm_scale[0]) == 1.0  # the prior itself is left as it was
    assert not model.is_prior


def _envelope_prior(tmp_path: Path) -> Path:
    """A small prior trained on envelope subjects of four other voices (seconds on a CPU)."""
    from talkstudio.core.stage1.features import AudioFrontEnd
    from talkstudio.core.stage1.prior_train import PriorClip, PriorRecipe, save_prior, train_prior
    from talkstudio.core.subject import Subject

    config = Stage1Config(feature_dim=32, lm_ffn=64, dec_ffn=64, window=50)
    front_end = AudioFrontEnd(config)
    recipe = PriorRecipe(steps=150, batch=4, window=50, lr=3e-3, warmup=10, variants=0)
    clips, norms = [], {}
    for seed in (11, 12, 13, 14):
        s = Subject.open(write_envelope_subject(tmp_path / f"voice{seed}", 12.0, seed))
        lm = np.asarray(s.tracks.lm_world, np.float64)
        norms[str(seed)] = norm = SpeakerNorm.from_landmarks(lm)
        feats = front_end(s.load_audio())[: len(lm)]
        disp = norm.normalise(lm[:, P37])
        clips.append(PriorClip(f"voice{seed}", str(seed), feats, disp, np.ones(len(lm), bool)))
    from talkstudio.core.stage1.prior_train import _window_starts

    for c in clips:
        c.starts = _window_starts(c, recipe)
    torch.set_num_threads(1)
    model, _ = train_prior(config, recipe, clips, [], norms, {}, front_end, lambda _: None)
    save_prior(model, tmp_path / "prior", {"recipe": recipe.to_dict()})
    return tmp_path / "prior"


def _eight_second_subject(root: Path) -> Path:
    """An envelope subject trained on its first 8 s (200 frames), validated on the 2 s after."""
    from dataclasses import replace

    from talkstudio.core.subject import read_meta, write_meta

    write_envelope_subject(root, seconds=10.0, seed=0)
    write_meta(root, replace(read_meta(root), train_frames=200))
    return root


@pytest.mark.slow
def test_prior_fine_tunes_an_8s_subject_better_than_scratch(tmp_path: Path) -> None:
    import json
    import shutil

    from talkstudio.core.progress import run_job
    from talkstudio.core.stage1.infer import load_stage1, predict
    from talkstudio.core.stage1.train import train_stage1
    from talkstudio.core.subject import Subject

    prior = _envelope_prior(tmp_path)
    a = _eight_second_subject(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    common = dict(steps=10, window=50, batch=2, lr=3e-3, warmup=5, cpu_threads=1, val_every=10)
    common |= dict(feature_dim=32, lm_ffn=64, dec_ffn=64)  # the small prior's architecture
    cfg = Stage1Config.from_preset
    scratch = run_job(train_stage1(a, cfg("preview", init="scratch", **common)))
    notes: list[str] = []
    tuned = run_job(
        train_stage1(b, cfg("preview", init="prior", prior_path=str(prior), **common)),
        lambda p: notes.append(p.message),
    )
    assert scratch.scores.frames == tuned.scores.frames == 50
    assert tuned.scores.corr > 0.6, tuned.scores
    assert tuned.scores.corr > scratch.scores.corr + 0.1, (tuned.scores, scratch.scores)
    assert any("starting from the speaker prior" in n for n in notes)
    meta = json.loads((b / "models/stage1/config.json").read_text())["meta"]
    assert meta["init"] == "prior" and len(meta["closed_lm"]) == 37
    assert json.loads((a / "models/stage1/config.json").read_text())["meta"]["init"] == "scratch"

    # the fine-tuned model keeps the prior it started from and blends it into its predictions;
    # the one from scratch has none
    assert (b / "models/stage1/prior.safetensors").is_file()
    assert not (a / "models/stage1/prior.safetensors").exists()
    assert load_stage1(a).blend is None
    model = load_stage1(b)
    assert model.blend is not None and model.blend.weight == pytest.approx(
        Stage1Config().prior_blend
    )
    speech = Subject.open(b).load_audio()[: 6 * SAMPLE_RATE]
    blended = predict(model, speech)
    start, model.blend = model.blend, None
    alone = predict(model, speech)
    prior_alone = predict(start.prior, speech)
    assert np.abs(blended - alone).max() > 1e-4, "the prior's share changes the track"
    # the motion mixed at the fine-tuned size: nearer the prior's than the model alone is
    opening = mouth_opening(to68(blended))
    r_alone = np.corrcoef(mouth_opening(to68(alone)), mouth_opening(to68(prior_alone)))[0, 1]
    r_mixed = np.corrcoef(opening, mouth_opening(to68(prior_alone)))[0, 1]
    assert r_mixed > r_alone

    # silence closes the fine-tuned subject's mouth: 1 s of silence inside its speech
    subject = Subject.open(b)
    audio = subject.load_audio()
    gap = np.zeros(SAMPLE_RATE, np.float32)
    driven = np.concatenate([audio[: 4 * SAMPLE_RATE], gap, audio[4 * SAMPLE_RATE :]])
    opening = mouth_opening(to68(predict(load_stage1(subject), driven)))
    own = mouth_opening(np.asarray(subject.tracks.lm_world, np.float64))
    shut = mouth_opening(to68(closed_mouth(np.asarray(subject.tracks.lm_world)[:, P37])[None]))
    span = np.percentile(own, 95) - np.percentile(own, 5)
    assert np.all(opening[103:122] <= shut[0] + 0.1 * span)
    # a damaged prior file is named, with what to do
    (b / "models/stage1/prior.safetensors").write_bytes(b"not weights")
    with pytest.raises(CheckpointError, match=r"prior\.safetensors.*delete it"):
        load_stage1(b)


def test_missing_prior_falls_back_to_training_from_scratch(tmp_path: Path) -> None:
    import json

    from talkstudio.core.progress import run_job
    from talkstudio.core.stage1.train import train_stage1

    root = write_envelope_subject(tmp_path / "s", seconds=4.0)
    notes: list[str] = []
    gone = str(tmp_path / "gone")
    cfg = Stage1Config.from_preset(
        "preview", init="prior", prior_path=gone, steps=3, window=40, cpu_threads=1
    )
    run_job(train_stage1(root, cfg), lambda p: notes.append(p.message))
    assert any("prior is missing" in n and "from scratch" in n for n in notes), notes
    meta = json.loads((root / "models/stage1/config.json").read_text())["meta"]
    assert meta["init"] == "scratch"


def test_a_prior_of_another_architecture_is_not_used(tmp_path: Path) -> None:
    import json

    from talkstudio.core.progress import run_job
    from talkstudio.core.stage1.prior_train import save_prior
    from talkstudio.core.stage1.train import train_stage1

    save_prior(_tiny_model(), tmp_path / "prior", {"recipe": {}})  # feature_dim 16
    root = write_envelope_subject(tmp_path / "s", seconds=4.0)
    notes: list[str] = []
    cfg = Stage1Config.from_preset(
        "preview", prior_path=str(tmp_path / "prior"), steps=2, window=40, cpu_threads=1
    )
    run_job(train_stage1(root, cfg), lambda p: notes.append(p.message))
    assert any("another network" in n and "feature_dim 64" in n for n in notes), notes
    meta = json.loads((root / "models/stage1/config.json").read_text())["meta"]
    assert meta["init"] == "scratch"


def test_blending_mixes_the_motion_and_keeps_its_mean_and_size() -> None:
    from talkstudio.core.stage1.infer import mix_tracks

    rng = np.random.default_rng(2)
    t = np.arange(100)[:, None, None]
    own = np.sin(t / 5.0) * rng.normal(size=(1, 37, 3)) + rng.normal(size=(1, 37, 3))
    other = np.cos(t / 7.0) * rng.normal(size=(1, 37, 3)) + 5.0  # another place entirely
    np.testing.assert_allclose(mix_tracks(own, [(other, 0.0)]), own, atol=1e-5)
    mixed = mix_tracks(own, [(other, 0.3)])
    np.testing.assert_allclose(mixed.mean(0), own.mean(0), atol=1e-4)  # the model's place
    size = np.linalg.norm(own - own.mean(0))
    assert np.linalg.norm(mixed - mixed.mean(0)) == pytest.approx(size, rel=1e-4)
    moved = (mixed - own.mean(0)).ravel()
    theirs, ours = (other - other.mean(0)).ravel(), (own - own.mean(0)).ravel()
    assert np.corrcoef(moved, theirs)[0, 1] > np.corrcoef(ours, theirs)[0, 1] + 0.1


def test_the_mouth_term_weighs_an_opening_error_above_an_equal_jaw_error() -> None:
    import torch.nn.functional as F

    from talkstudio.core.stage1.train import frame_loss

    target = torch.zeros(1, 2, 37, 3)
    lip, jaw = P37.index(66), P37.index(8)
    opened, jawed = target.clone(), target.clone()
    opened[:, :, lip, 1] += 0.2  # the lower inner lip drops: the mouth opens
    jawed[:, :, jaw, 1] += 0.2  # the chin moves as far: the lips keep their shape
    plain = frame_loss(opened, target)
    assert torch.allclose(plain, frame_loss(jawed, target))
    assert torch.allclose(plain.mean(), F.smooth_l1_loss(opened, target, beta=1.0))  # Eq. 2
    weighted_open, weighted_jaw = frame_loss(opened, target, 5.0), frame_loss(jawed, target, 5.0)
    assert torch.allclose(weighted_jaw, plain)
    assert bool((weighted_open > 5 * plain).all())


def test_fine_tuning_takes_the_priors_mouth_weight_and_audio_convolutions(tmp_path: Path) -> None:
    from talkstudio.core.stage1.features import AudioFrontEnd
    from talkstudio.core.stage1.prior import initial_model
    from talkstudio.core.stage1.prior_train import save_prior
    from talkstudio.core.subject import Subject

    cfg = Stage1Config.from_preset("preview", audio_features="mel")
    prior_cfg = cfg.replace(mouth_weight=4.0, audio_kernel=9)
    in_dim = AudioFrontEnd(cfg).in_dim
    save_prior(Stage1Model(prior_cfg, in_dim), tmp_path / "prior", {"recipe": {}})
    subject = Subject.open(write_envelope_subject(tmp_path / "s", seconds=3.0))
    model, config, note = initial_model(subject, cfg.replace(prior_path=str(tmp_path / "prior")))
    assert model is not None, note
    assert config.mouth_weight == 4.0 and "mouth_weight 0.0 -> 4.0" in note
    assert config.audio_kernel == 9 and "audio_kernel 5 -> 9" in note
    assert model.audio_encoder.reach == 8  # the prior's weights, not a fresh network


def test_speaker_folds_keep_speakers_whole_and_balance_frames() -> None:
    from types import SimpleNamespace

    from talkstudio.core.stage1.corpus import CorpusClip
    from talkstudio.core.stage1.prior_train import speaker_folds

    lengths = {"a": 900, "b": 400, "c": 350, "d": 300, "e": 250, "f": 120, "g": 100}
    clips = [
        CorpusClip(f"{s}{i}", s, SimpleNamespace(lm_world=np.zeros((n // 2, 1))))  # type: ignore[arg-type]
        for s, n in lengths.items()
        for i in range(2)  # every speaker has two clips of half its frames
    ]
    folds = speaker_folds(clips, 3)
    assert sorted(s for f in folds for s in f) == sorted(lengths), "each speaker in one fold"
    totals = [sum(lengths[s] for s in f) for f in folds]
    assert max(totals) - min(totals) <= max(lengths.values())
    assert folds == speaker_folds(list(reversed(clips)), 3), "the order of the clips is no matter"
    assert all(list(f) == sorted(f) for f in folds)
    with pytest.raises(ValueError, match="2 folds"):
        speaker_folds(clips, 1)
    with pytest.raises(ValueError, match="7 speakers cannot fill 8"):
        speaker_folds(clips, 8)


def test_paired_comparison_of_two_cross_validated_runs() -> None:
    from scripts.prior_folds import paired

    a = {f"c{i}": {"blend": 0.1 * i} for i in range(10)}
    b = {f"c{i}": {"blend": 0.1 * i + (0.05 if i < 8 else -0.05)} for i in range(10)}
    b["only_b"] = {"blend": 1.0}  # clips of one run only are left out
    p = paired(a, b, "blend")
    assert p["clips"] == 10 and p["gains"] == 8
    assert p["mean"] == pytest.approx(0.03) and p["median"] == pytest.approx(0.05)
    assert p["lo"] < p["mean"] < p["hi"] and p["lo"] > 0
    with pytest.raises(SystemExit, match="share no held-out clip"):
        paired(a, {"x": {"blend": 0.0}}, "blend")


def test_corpus_tracks_are_cached_by_content_not_time_stamp(tmp_path: Path) -> None:
    import os

    from talkstudio.core.stage1.corpus import _cache_path

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"frames" * 1000)
    first = _cache_path(video, tmp_path / "cache")
    os.utime(video, (1, 1))  # copied or synced again: same content, new time stamp
    assert _cache_path(video, tmp_path / "cache") == first
    video.write_bytes(b"other frames" * 1000)
    assert _cache_path(video, tmp_path / "cache") != first
    assert first.parent == tmp_path / "cache" and first.name.startswith("clip-")
