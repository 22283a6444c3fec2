"""Model checkpoints: safetensors weights plus a JSON config, written atomically.

A checkpoint folder (``SUBJECT/models/<part>/``) holds

- ``model.safetensors`` — the weights (no pickle, so a subject from someone else is safe);
- ``config.json`` — ``{"kind": ..., "version": ..., "config": {...}, "meta": {...}}``;
- optionally ``train_state.safetensors`` + ``train_state.json`` — optimizer moments and the step,
  so training resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from . import atomic
from .errors import CheckpointError

CHECKPOINT_VERSION = 1


class _FromDict(Protocol):
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any: ...


C = TypeVar("C", bound=_FromDict)
M = TypeVar("M", bound=torch.nn.Module)


def save_model(
    folder: str | Path,
    kind: str,
    state: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Write ``state`` and its ``config`` to ``folder`` atomically (weights first, then config)."""
    folder = Path(folder)
    save_weights(folder / "model.safetensors", state)
    atomic.write_json(
        folder / "config.json",
        {
            "kind": kind,
            "version": CHECKPOINT_VERSION,
            "config": dict(config),
            "meta": dict(meta or {}),
        },
    )


def save_weights(path: str | Path, state: Mapping[str, torch.Tensor]) -> None:
    """Write the tensors ``state`` to the safetensors file ``path`` atomically (on the CPU)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    with atomic.atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def load_weights(path: str | Path, what_to_do: str) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``; :class:`CheckpointError` saying it is
    missing or truncated, then ``what_to_do``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is missing or truncated ({exc}); {what_to_do}") from exc


def load_config(folder: str | Path, kind: str) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint of ``kind``; raise :class:`CheckpointError` if unfit."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"no trained {kind} model in {Path(folder)}: train it first")
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is damaged ({exc}); train the {kind} model again") from exc
    if raw.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {raw.get('kind')!r} model, not a {kind!r} model")
    if int(raw.get("version", 0)) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} was written by a newer Talkstudio; update to load it")
    return dict(raw)


def load_model(folder: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Weights and the full ``config.json`` of the checkpoint in ``folder``."""
    raw = load_config(folder, kind)
    state = load_weights(Path(folder) / "model.safetensors", f"train the {kind} model again")
    return state, raw


def load_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module``, naming every mismatch instead of a bare torch error."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
            if keys
        )
        raise CheckpointError(
            f"{source} was trained with another configuration ({detail}); "
            "train again with the current settings or load it with its own config"
        )
    module.load_state_dict(state)


def load_module(
    folder: str | Path,
    kind: str,
    config_type: type[C],
    build: Callable[[C, Mapping[str, torch.Tensor], dict[str, Any]], M],
    config: C | None = None,
) -> M:
    """The network saved in ``folder``: ``build(config, weights, meta)`` makes it (with the
    checkpoint's own config unless ``config`` is given) and the weights are loaded into it."""
    state, raw = load_model(folder, kind)
    cfg = config or config_type.from_dict(raw.get("config", {}))
    module = build(cfg, state, raw.get("meta", {}))
    load_into(module, state, str(Path(folder) / "model.safetensors"))
    return module


def save_train_state(
    folder: str | Path, optimizer: torch.optim.Optimizer, info: Mapping[str, Any]
) -> None:
    """Save optimizer tensors and ``info`` (step, RNG seeds, ...) for resuming."""
    from safetensors.torch import save_file

    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{name}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    folder = Path(folder)
    with atomic.atomic_path(folder / "train_state.safetensors") as tmp:
        save_file(tensors, str(tmp))
    atomic.write_json(
        folder / "train_state.json",
        {"param_groups": sd["param_groups"], "scalars": scalars, "info": dict(info)},
    )


def load_train_state(folder: str | Path, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """Restore ``optimizer`` from ``folder``; return the saved info, or None when absent/damaged."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta_path, tensor_path = folder / "train_state.json", folder / "train_state.safetensors"
    if not (meta_path.is_file() and tensor_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        tensors = load_file(str(tensor_path))
    except Exception:
        return None
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError):
        return None
    return dict(meta["info"])
