"""The typed configs: ``ModelConfig``, ``Augment``, ``TrainConfig`` and the presets.

Pure dataclasses with no heavy imports, so the CLI can read them when it
builds its options: each field's ``metadata`` holds its help text and its
bounds, and ``qdsketch train``'s options are made from these fields
(``cli.config_options``). A field is declared once, here, with its help once.

Metadata keys: ``help``; ``min``, ``max``, ``min_open``, ``max_open`` (bounds);
``choices``; ``metavar``; ``default_help`` (what the help says instead of the
default; the option then defaults to ``None``, meaning "this field's
default"); ``cli=False`` keeps a field off the command line.
"""

from __future__ import annotations

import types
import typing
from dataclasses import Field, asdict, dataclass, field, fields, replace
from typing import Any


def opt(default: Any, help: str = "", **spec: Any) -> Any:
    """A dataclass field with its CLI help and bounds in the metadata."""
    return field(default=default, metadata={"help": help, **spec})


def field_type(cls, f: Field) -> type:
    """The type of field ``f`` of ``cls``, resolved from its annotation (a string, under
    ``from __future__ import annotations``), ``X | None`` and ``Optional[X]`` read as ``X``."""
    hint = typing.get_type_hints(cls)[f.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(kinds) != 1:
            raise TypeError(f"{cls.__name__}.{f.name}: a CLI option has one type, not {hint}")
        hint = kinds[0]
    return hint


def _known(cls, d: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True)
class ModelConfig:
    n_classes: int = opt(5, cli=False)  # classes the model is conditioned on (set from the dataset)
    arch: str = opt(
        "lstm", "Backbone: the reference's LSTM, or a decoder-only Transformer.", choices=("lstm", "transformer")
    )
    embed_dim: int = opt(128, "Class embedding size.", min=1, max=4096)  # fed at every step (LSTM: and to h0, c0)
    hidden: int = opt(512, "LSTM units per layer, or the Transformer's width.", min=1, max=8192)
    layers: int = opt(3, "LSTM layers, or Transformer blocks.", min=1, max=32)
    heads: int = opt(4, "Attention heads of the Transformer (they divide --hidden).", min=1, max=64)
    # LSTM: between layers, as nn.LSTM applies it; Transformer: on attention weights and each block's outputs
    dropout: float = opt(
        0.3, "Dropout between LSTM layers, or in the Transformer's blocks.", min=0, max=1, max_open=True
    )
    head: str = opt("mse", "Output head: regression or mixture density.", choices=("mse", "gmm"))
    mixtures: int = opt(20, "Gaussians in the gmm head.", min=1, max=256)
    xy_weight: float = opt(1.0, "Weight of the dx, dy loss.", min=0, max=1e6)
    pen_weight: float = opt(1.0, "Weight of the pen loss.", min=0, max=1e6)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return cls(**_known(cls, d))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Preset:
    model: ModelConfig
    about: str  # one line for --help
    train: dict = field(default_factory=dict)  # train options this recipe sets, by option name (augment_scale)


PRESETS: dict[str, Preset] = {
    # the recipe of the model that ships (docs/model-card.md); the winner in docs/results.md
    "mixture": Preset(
        ModelConfig(embed_dim=64, hidden=384, layers=2, dropout=0.3, head="gmm", mixtures=20),
        "the model that ships: a 2 x 384 LSTM with a 20-Gaussian mixture head (2.0M), drawings scaled by up to "
        "15% as they are learned, 75 epochs; the best by docs/results.md",
        {"epochs": 75, "augment_scale": 0.15},
    ),
    # a first model on a CPU: minutes, not a day (docs/first-day.md measures it)
    "small": Preset(
        ModelConfig(embed_dim=32, hidden=256, layers=1, dropout=0.0, head="gmm", mixtures=10),
        "a first model on a CPU: a 1 x 256 LSTM with a 10-Gaussian mixture head (0.34M), 40 epochs, about "
        "25 minutes on one core for five classes (docs/first-day.md)",
        {"epochs": 40, "augment_scale": 0.15},
    ),
    "seed": Preset(ModelConfig(), "the reference's 3 x 512 LSTM, MSE head (5.9M parameters)"),
    "sketchrnn": Preset(ModelConfig(head="gmm"), "the same LSTM with Sketch-RNN's 20-Gaussian mixture head (6.0M)"),
    "tiny": Preset(ModelConfig(embed_dim=8, hidden=8, layers=1, dropout=0.0), "a few hundred parameters, for tests"),
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The model config of preset ``name``, with the overrides that are not ``None``."""
    return replace(PRESETS[name].model, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Augment:
    """Random changes to training drawings, drawn afresh for every batch."""

    scale: float = opt(
        0.0, "Scale each axis of a training drawing by a random factor in 1 +- this.", min=0, max=1, max_open=True
    )  # Sketch-RNN: 0.15
    rotate: float = opt(
        0.0, "Rotate each training drawing by a random angle within +- this many degrees.", min=0, max=180
    )
    drop: float = opt(
        0.0, "Drop each point inside a stroke with this probability (Sketch-RNN: 0.1).", min=0, max=1, max_open=True
    )
    jitter: float = opt(0.0, "Add noise of this std (pixels) to every training dx, dy.", min=0)

    def __bool__(self) -> bool:
        return any(v > 0 for v in (self.scale, self.rotate, self.drop, self.jitter))


@dataclass(frozen=True)
class TrainConfig:
    data: str = opt(
        "data/dataset.npz",
        "Dataset from `qdsketch preprocess`: a file, or a sharded directory.",
        path=True,
        default_help="default: data/dataset.npz, or $QDSKETCH_HOME/data/dataset.npz",
    )
    epochs: int = opt(
        50, "Most epochs to train.", min=1, default_help="default: the preset's, else 50; with --resume: the run's"
    )
    batch_size: int = opt(128, min=1, max=65536)  # drawings per batch
    lr: float = opt(1e-3, "AdamW learning rate.", min=0, min_open=True, max=10)
    weight_decay: float = opt(1e-5, min=0, max=1)  # AdamW
    warmup: int = opt(
        0,
        "Raise the learning rate linearly from near 0 to --lr over this run's first this-many optimizer "
        "steps. For --init-from: a new AdamW knows nothing of the gradients yet, and at the full rate its "
        "first steps undo part of what the weights had learned (docs/training.md). 0: off.",
        min=0,
    )
    grad_clip: float = opt(1.0, cli=False)  # gradient norm clipped to this
    lr_factor: float = opt(0.5, cli=False)  # ReduceLROnPlateau: multiply the lr by this ...
    lr_patience: int = opt(3, cli=False)  # ... after this many epochs without a better validation loss
    early_stop: int = opt(7, "Stop after this many epochs without a better validation loss.", min=1)
    seed: int = opt(0, "Model init, dropout and batch order.", min=0, max=2**63 - 1)
    device: str = opt("auto", "Where to run (cuda:N works too).", metavar="auto|cpu|cuda|mps")
    amp: bool = opt(False, "bf16 autocast for the forward pass (CUDA).")
    pool: int = opt(50, cli=False)  # batches per pool sorted by length (padding against randomness)
    balance: bool = opt(
        False, "Draw every class equally often in an epoch (with replacement), however many drawings it has."
    )
    stream: str = opt(
        "auto",
        "Read batches from the dataset's shards as they are needed instead of holding each split in memory: "
        "auto streams a sharded dataset whose training split would take more than 1 GiB.",
        choices=("auto", "always", "never"),
    )
    max_steps: int | None = opt(
        None, "Stop after this many optimizer steps in all (a first look at large data).", min=1
    )
    save_every: float | None = opt(
        None,
        "Also save last.pt every this many minutes within an epoch, and keep those weights in snapshots/ "
        "(for epochs of hours: a killed run loses at most this much).",
        min=0,
        min_open=True,
    )
    ema: float = opt(
        0.0,
        "Also keep an exponential moving average of the weights, with this decay per optimizer step "
        "(0.999 averages about the last thousand steps); validation, best.pt, last.pt and snapshots then hold "
        "the average, which smooths out the noise of single steps. 0: off.",
        min=0,
        max=1,
        max_open=True,
    )
    init_from: str | None = opt(
        None,
        "Start from the weights of this checkpoint, run directory or shipped model (five, all) instead of random "
        "ones: its model settings, classes (the dataset must hold the same) and normalisation come with them. "
        "Fine-tuning, or carrying a model on in a new run.",
        path=True,
        metavar="PATH|NAME",
    )
    augment: Augment = field(default_factory=Augment)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """From ``asdict`` output; also reads the flat ``augment_*`` keys of qdsketch 0.2 runs."""
        d = dict(d)
        flat = {k[len("augment_") :]: d.pop(k) for k in list(d) if k.startswith("augment_")}
        augment = Augment(**_known(Augment, {**flat, **d.pop("augment", {})}))
        return cls(**_known(cls, d), augment=augment)

    def to_dict(self) -> dict:
        return asdict(self)


def flat_settings(train: dict) -> dict:
    """A ``TrainConfig.to_dict()`` by option name: ``augment`` spread out as
    ``augment_scale``, ``augment_rotate``, ... (what --resume compares, -v prints)."""
    flat = {k: v for k, v in train.items() if k != "augment"}
    return flat | {f"augment_{k}": v for k, v in train["augment"].items()}
