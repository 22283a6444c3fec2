"""Position encoding of the head NeRF: one function picks the hash grid backend.

``implementation="tcnn"`` uses NVIDIA's tiny-cuda-nn (``tinycudann``) when it imports and the
device is CUDA; otherwise it logs one notice and falls back to the PyTorch reference
:class:`~.hashgrid.TorchHashGrid`. Both share :class:`~.hashgrid.GridLayout`'s parameter layout
and expose their table as ``params`` [rows, features], so a checkpoint trained with one loads into
the other. tiny-cuda-nn is not on PyPI: install it on a CUDA machine with
``pip install "git+https://github.com/NVlabs/tiny-cuda-nn/#subdirectory=bindings/torch"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from .hashgrid import GridLayout, TorchHashGrid

log = logging.getLogger(__name__)
_NOTICES: set[str] = set()


def _notice_once(key: str, message: str) -> None:
    if key not in _NOTICES:
        _NOTICES.add(key)
        log.warning(message)


@dataclass
class HashGridConfig:
    """Settings of the multi-resolution hash grid (Instant-NGP)."""

    levels: int = 16
    """Number of resolution levels L."""
    features: int = 2
    """Features per level F; the encoding has L * F outputs."""
    log2_table_size: int = 16
    """log2 of the largest per-level table (2^16 in the authors' code)."""
    base_resolution: int = 16
    """Vertices per axis of the coarsest level."""
    max_resolution: int = 2048
    """Vertices per axis of the finest level over the unit cube."""
    implementation: Literal["tcnn", "torch"] = "tcnn"
    """"tcnn": tiny-cuda-nn when it imports and the device is CUDA, else the torch reference."""

    @property
    def layout(self) -> GridLayout:
        return GridLayout(
            self.levels,
            self.features,
            self.log2_table_size,
            self.base_resolution,
            self.max_resolution,
        )


def tcnn_available() -> bool:
    """Whether ``tinycudann`` imports in this environment."""
    try:
        import tinycudann  # noqa: F401
    except Exception:
        return False
    return True


class TcnnHashGrid(nn.Module):
    """tiny-cuda-nn's fused HashGrid with the torch reference's parameter layout (CUDA only).

    The tiny-cuda-nn module is kept outside the module tree; its flat parameter vector is
    registered here as ``flat`` and saved/loaded as ``params`` [rows, features], the key and
    shape :class:`~.hashgrid.TorchHashGrid` uses.
    """

    def __init__(self, layout: GridLayout) -> None:
        import tinycudann as tcnn

        super().__init__()
        self.layout = layout
        self.rows = layout.offsets()[-1]
        encoding = tcnn.Encoding(
            3,
            {
                "otype": "HashGrid",
                "n_levels": layout.levels,
                "n_features_per_level": layout.features,
                "log2_hashmap_size": layout.log2_table_size,
                "base_resolution": layout.base_resolution,
                "per_level_scale": layout.per_level_scale,
                "interpolation": "Linear",
            },
        )
        if encoding.params.numel() != self.rows * layout.features:
            raise RuntimeError(
                f"tinycudann allocates {encoding.params.numel()} grid parameters, the torch "
                f"layout {self.rows * layout.features}; the backends are not interchangeable"
            )
        object.__setattr__(self, "_encoding", encoding)  # not a submodule: no duplicate keys
        self.flat = encoding.params

    @property
    def out_dim(self) -> int:
        return self.layout.out_dim

    @property
    def params(self) -> torch.Tensor:
        """The table as [rows, features] (a view of tiny-cuda-nn's flat parameter vector)."""
        return self.flat.view(self.rows, self.layout.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoding: Any = self.__dict__["_encoding"]
        return encoding(x.contiguous()).float()

    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        destination[prefix + "params"] = self.params if keep_vars else self.params.detach()

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ) -> None:
        key = prefix + "params"
        if key not in state_dict:
            missing_keys.append(key)
            return
        with torch.no_grad():
            self.flat.copy_(state_dict[key].reshape(-1))


def make_hash_grid(config: HashGridConfig, device: torch.device | str = "cpu") -> nn.Module:
    """The hash grid of ``config`` on ``device``: points [N, 3] in [0, 1]^3 -> [N, L * F]."""
    device = torch.device(device)
    if config.implementation == "tcnn":
        if device.type != "cuda":
            _notice_once(
                "tcnn-cpu",
                "hash grid: tiny-cuda-nn needs a CUDA device; using the PyTorch hash grid",
            )
        elif not tcnn_available():
            _notice_once(
                "tcnn-import",
                "hash grid: tinycudann is not installed; using the slower PyTorch hash grid "
                "(see the README, 'GPU acceleration', to install it)",
            )
        else:
            try:
                return TcnnHashGrid(config.layout).to(device)
            except RuntimeError as exc:
                _notice_once("tcnn-fail", f"hash grid: tiny-cuda-nn failed ({exc}); using torch")
    elif config.implementation != "torch":
        raise ValueError(f"unknown hash grid implementation {config.implementation!r}")
    return TorchHashGrid(config.layout).to(device)
