"""The one source of truth for every engine parameter.

`Settings` defines each parameter's type, default, range and help text. The CLI options, the
app's widgets, the database's indexed columns, the PNG metadata and batch sweeps are all
derived from it through `FIELDS`; nothing else lists parameters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nfx.errors import InputError
from nfx.layers import Layer

Method = Literal["gatys", "feedforward"]
METHODS: tuple[Method, ...] = get_args(Method)
BOTH: tuple[Method, ...] = METHODS


def _meta(group: str, *, indexed: bool = False, sweep: bool = True,
          methods: tuple[Method, ...] = ("gatys",), masked: bool = False,
          legacy: Any = None) -> dict[str, Any]:
    """Extra facts about a field: its widget group, whether the gallery filters on it, whether
    a batch may sweep it, which methods read it (most are the optimiser's alone), whether
    only runs with a region mask read it, and, for a setting added with a default that changes
    results, the value that runs stored before it existed had (`legacy`)."""
    return {"group": group, "indexed": indexed, "sweep": sweep, "methods": list(methods),
            "masked": masked, "legacy": legacy}


class Settings(BaseModel):
    """Everything that decides what a style-transfer run produces."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Method = Field(
        "gatys", json_schema_extra=_meta("Output", indexed=True, methods=BOTH),
        description="'gatys' optimises the image against VGG-19 features (Gatys et al. "
                    "2016): a minute a picture, the best match of the painting. "
                    "'feedforward' renders it in one pass of a network trained for any "
                    "painting (Ghiasi et al. 2017): well under a second, a looser match; "
                    "for previews. Only size, style scale and blend, preserve colour and "
                    "strength apply to it.")
    size: int = Field(512, ge=16, le=8192,
                      json_schema_extra=_meta("Output", indexed=True, methods=BOTH),
                      description="Long edge of the output in pixels; the short edge follows "
                                  "the content image's aspect ratio.")
    scales: int = Field(3, ge=1, le=8, json_schema_extra=_meta("Output", indexed=True),
                        description="Coarse-to-fine scales: each one doubles the size up to "
                                    "`size`. More scales give better large-scale structure "
                                    "for little extra time.")
    steps: int = Field(70, ge=1, le=5000, json_schema_extra=_meta("Optimiser", indexed=True),
                       description="Optimiser iterations at each scale.")
    content_weight: float = Field(1.0, ge=0.0, le=1e6,
                                  json_schema_extra=_meta("Weights", indexed=True),
                                  description="Weight of the content loss: the relative error "
                                              "‖F−Fₜ‖²/‖Fₜ‖² of the content layer's "
                                              "features.")
    style_weight: float = Field(10.0, ge=0.0, le=1e9,
                                json_schema_extra=_meta("Weights", indexed=True),
                                description="Balance of style against content. The style "
                                            "loss is a relative error per style layer "
                                            "(divided by the painting's own Gram or "
                                            "second moment), so a weight means the same "
                                            "for every painting and size. Higher means "
                                            "more style, less content. The scale changed "
                                            "in NFX 0.2 (normalised losses; default 30 "
                                            "became 10): settings stored earlier keep "
                                            "their number, which now gives more style.")
    style_loss: Literal["gram", "wasserstein"] = Field(
        "gram", json_schema_extra=_meta("Weights", indexed=True),
        description="Style loss: 'gram' matches Gram matrices (Gatys et al.); "
                    "'wasserstein' the Wasserstein-2 distance between Gaussian fits "
                    "(mean and covariance) of the features.")
    tv_weight: float = Field(1e-4, ge=0.0, le=1e3,
                             json_schema_extra=_meta("Weights", indexed=True),
                             description="Weight of the total-variation loss; smooths out "
                                         "high-frequency noise.")
    style_scale: float = Field(1.0, ge=0.1, le=4.0,
                               json_schema_extra=_meta("Style", indexed=True, methods=BOTH),
                               description="Size of the style image relative to the output, "
                                           "as a length (2: twice the width and height, so "
                                           "four times the area). Larger values give "
                                           "larger brush strokes.")
    style_blend: tuple[float, ...] = Field(
        (), json_schema_extra=_meta("Style", sweep=False, methods=BOTH),
        description="Blend weights, one per style image (comma-separated); empty means "
                    "equal weights.")
    preserve_color: Literal["none", "luminance", "histogram"] = Field(
        "none", json_schema_extra=_meta("Style", indexed=True, methods=BOTH),
        description="Keep the content's colours: 'luminance' transfers style on brightness "
                    "only; 'histogram' first matches the style's colour statistics to the "
                    "content.")
    strength: float = Field(1.0, ge=0.0, le=1.0,
                            json_schema_extra=_meta("Style", methods=("feedforward",)),
                            description="How much of the painting's style the feed-forward "
                                        "network applies: its style vector is interpolated "
                                        "with the photo's own (1: the painting's, 0: "
                                        "the photo as the network redraws it).")
    region_feather: float = Field(
        8.0, ge=0.0, le=512.0, json_schema_extra=_meta("Style", masked=True),
        description="With a region mask: the width in output pixels over which one region "
                    "gives way to the next. Wider hides seams between two paintings; "
                    "narrower keeps a kept-photo area (a face) crisp to its edge.")
    ghost_weight: float = Field(
        20.0, ge=0.0, le=1e4, json_schema_extra=_meta("Weights", legacy=0.0),
        description="Keeps the painting's objects (a face, a sail, the moon) from being "
                    "rebuilt in the output, so that it takes the painting's manner and not "
                    "its subject: output places whose deepest style features are "
                    "near-copies of one place in the painting are pushed away. 0 lets them "
                    "reappear (runs made before NFX 0.3 had 0); higher holds them "
                    "further off.")
    content_layer: Layer = Field("relu4_2", json_schema_extra=_meta("Layers"),
                                 description="VGG-19 layer whose activations the output "
                                             "must match to keep the content.")
    style_layers: tuple[Layer, ...] = Field(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        json_schema_extra=_meta("Layers", sweep=False),
        description="VGG-19 layers whose statistics define the style (comma-separated): "
                    "their Gram matrices, or for wasserstein their means and covariances.")
    style_layer_weights: tuple[float, ...] = Field(
        (1.0, 1.0, 1.0, 1.0, 1.0), json_schema_extra=_meta("Layers", sweep=False),
        description="Relative weight of each style layer, one per style layer "
                    "(comma-separated).")
    pooling: Literal["max", "avg"] = Field("max", json_schema_extra=_meta("Layers"),
                                           description="VGG pooling: 'avg' gives smoother "
                                                       "gradients and softer results.")
    optimizer: Literal["lbfgs", "adam"] = Field(
        "lbfgs", json_schema_extra=_meta("Optimiser", indexed=True),
        description="L-BFGS converges in far fewer iterations; Adam uses less memory. A "
                    "scale whose L-BFGS history cannot fit the memory budget even in tiles "
                    "runs with Adam (the run's record says so).")
    learning_rate: float = Field(2.0, gt=0.0, le=100.0, json_schema_extra=_meta("Optimiser"),
                                 description="Adam step size, in 0-255 pixel units (unused "
                                             "by L-BFGS).")
    init: Literal["content", "preview", "noise", "style"] = Field(
        "content", json_schema_extra=_meta("Optimiser"),
        description="Starting image: the content; 'preview', the feed-forward rendering of "
                    "the pair (already styled, so fewer steps reach the painting's look and "
                    "its objects have no time to reappear); random noise; or the style "
                    "image.")
    seed: int = Field(0, ge=0, le=2**31 - 1, json_schema_extra=_meta("Optimiser"),
                      description="Random seed: the same seed and settings reproduce a run "
                                  "on the same machine.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", json_schema_extra=_meta("Optimiser"),
        description="'auto' runs the network in bfloat16 where the CPU or GPU supports it "
                    "(about 2x faster, same result within a few percent), else fp32.")
    memory_budget: float = Field(
        0.0, ge=0.0, le=4096.0, json_schema_extra=_meta("Optimiser", sweep=False),
        description="Memory in GiB a run may use; 0 means 70% of the memory free when it "
                    "starts (RAM, or the GPU's). A run over it is optimised in tiles (the "
                    "same image, slower); one that cannot fit even in tiles is refused at "
                    "once, naming the size that would fit.")
    tile: int = Field(0, ge=0, le=4096, json_schema_extra=_meta("Optimiser", sweep=False),
                      description="Optimise in tiles of this edge (pixels, rounded up to "
                                  "16) even when the run fits untiled; 0 tiles only as the "
                                  "memory budget needs. Tiles give the same image.")

    @model_validator(mode="after")
    def _check_layers(self) -> "Settings":
        if not self.style_layers:
            raise ValueError("style_layers needs at least one layer")
        if len(self.style_layer_weights) != len(self.style_layers):
            raise ValueError(
                f"style_layer_weights has {len(self.style_layer_weights)} values but "
                f"style_layers has {len(self.style_layers)}")
        if any(w < 0 for w in self.style_layer_weights + self.style_blend):
            raise ValueError("weights must not be negative")
        return self

    # --- construction and serialisation -------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = True) -> "Settings":
        """Validate a mapping into Settings, raising InputError with one line.

        strict=False drops unknown keys, for settings stored by another NFX version."""
        if not strict:
            data = {k: v for k, v in data.items() if k in cls.model_fields}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InputError(validation_message(exc)) from None

    def with_changes(self, **changes: Any) -> "Settings":
        """A validated copy with some values changed (re-runs, sweeps)."""
        return Settings.from_dict({**self.model_dump(), **changes})

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, strict: bool = False) -> "Settings":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"settings are not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise InputError("settings JSON must be an object")
        # stored by an NFX from before a setting existed: the value that run had
        data = {**{name: spec.legacy for name, spec in FIELDS.items()
                   if spec.legacy is not None}, **data}
        return cls.from_dict(data, strict=strict)

    def applies(self, name: str) -> bool:
        """Whether this run's method reads the setting `name` (a feed-forward run has no
        steps, weights or optimiser)."""
        return self.method in FIELDS[name].methods

    def digest(self, masked: bool = False) -> str:
        """Stable hash of the values that decide the picture: identical runs give identical
        digests, whatever the settings their method ignores say.

        An optimisation's digest leaves out `method` and `strength`, so it is the one it had
        before feed-forward runs existed (the gallery's stored identities still match); the
        settings only a region mask reads enter the digests of `masked` runs alone, so the
        unmasked identities stayed as they were too; a setting added later enters only where
        it differs from the value runs had before it existed (`legacy`), so that a stored run
        and the same run queued again share one identity."""
        data = {k: v for k, v in self.model_dump(mode="json").items()
                if self.applies(k) and (masked or not FIELDS[k].masked)
                and not (FIELDS[k].legacy is not None and v == FIELDS[k].legacy)}
        if self.method == "gatys":
            data.pop("method")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def differences(self, other: "Settings") -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ and that either side's method reads, as name ->
        (mine, theirs)."""
        mine, theirs = self.model_dump(), other.model_dump()
        return {k: (mine[k], theirs[k]) for k in mine
                if mine[k] != theirs[k] and (self.applies(k) or other.applies(k))}


def validation_message(exc: ValidationError) -> str:
    """One line from pydantic's multi-line report, naming the field."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "invalid settings: " + "; ".join(parts)


# --- field descriptions for the CLI, widgets, database columns and sweeps ---------------


@dataclass(frozen=True)
class FieldSpec:
    """What a front end needs to know about one setting."""

    name: str
    kind: Literal["int", "float", "choice", "list"]
    default: Any
    help: str
    group: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    item_choices: tuple[str, ...] = ()  # for lists of layer names
    indexed: bool = False  # a database column the gallery filters on
    sweepable: bool = True  # may take several values in one batch
    methods: tuple[str, ...] = ("gatys",)  # the methods that read it
    masked: bool = False  # read only by runs with a region mask (nfx.regions)
    legacy: Any = None  # the value runs stored before the setting existed had (None: always was)

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()

    @property
    def option(self) -> str:
        """The command line's option for this setting."""
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> Any:
        """Parse one value from text (CLI, sweep lists); InputError on nonsense."""
        text = text.strip()
        try:
            if self.kind == "int":
                as_float = float(text)
                if not as_float.is_integer():
                    raise ValueError
                return int(as_float)
            if self.kind == "float":
                return float(text)
            if self.kind == "choice":
                if text not in self.choices:
                    raise ValueError
                return text
            items = [t.strip() for t in text.split(",") if t.strip()]
            if self.item_choices:
                bad = [t for t in items if t not in self.item_choices]
                if bad:
                    raise ValueError
                return tuple(items)
            return tuple(float(t) for t in items)
        except ValueError:
            expected = {"int": "a whole number", "float": "a number",
                        "choice": "one of " + ", ".join(self.choices),
                        "list": "a comma-separated list"
                        + (" of " + ", ".join(self.item_choices) if self.item_choices
                           else " of numbers")}[self.kind]
            raise InputError(f"{self.name}: {text!r} is not {expected}") from None

    def format(self, value: Any) -> str:
        """Text for a value, the inverse of parse."""
        if isinstance(value, (tuple, list)):
            return ",".join(self.format(v) for v in value)
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    def text_of(self, settings: Settings) -> str:
        """This setting's value in `settings`, as text."""
        return self.format(getattr(settings, self.name))

    def describe_range(self) -> str:
        if self.choices:
            return "{" + ",".join(self.choices) + "}"
        if self.minimum is not None and self.maximum is not None:
            return f"[{self.format(self.minimum)}, {self.format(self.maximum)}]"
        return ""


def _spec(name: str) -> FieldSpec:
    info = Settings.model_fields[name]
    extra = info.json_schema_extra or {}
    assert isinstance(extra, dict), "extras are _meta's dicts, never pydantic's callable form"
    group, indexed, sweep, methods, masked, legacy = (
        extra.get("group", "Other"), extra.get("indexed", False), extra.get("sweep", True),
        extra.get("methods", []), extra.get("masked", False), extra.get("legacy"))
    assert isinstance(group, str) and isinstance(indexed, bool) and isinstance(sweep, bool) \
        and isinstance(methods, list) and isinstance(masked, bool), "as _meta writes them"
    annotation = info.annotation
    minimum = maximum = None
    for item in info.metadata:
        minimum = getattr(item, "ge", getattr(item, "gt", minimum))
        maximum = getattr(item, "le", getattr(item, "lt", maximum))
    choices: tuple[str, ...] = ()
    item_choices: tuple[str, ...] = ()
    kind: Literal["int", "float", "choice", "list"]
    if get_origin(annotation) is Literal:
        kind, choices = "choice", tuple(get_args(annotation))
    elif get_origin(annotation) is tuple:
        kind = "list"
        item = get_args(annotation)[0]
        if get_origin(item) is Literal:
            item_choices = tuple(get_args(item))
    elif annotation is int:
        kind = "int"
    else:
        kind = "float"
    return FieldSpec(name=name, kind=kind, default=info.default, help=info.description or "",
                     group=group, minimum=minimum, maximum=maximum,
                     choices=choices, item_choices=item_choices, indexed=indexed,
                     sweepable=sweep and kind != "list",
                     methods=tuple(str(method) for method in methods), masked=masked,
                     legacy=legacy)


FIELDS: dict[str, FieldSpec] = {name: _spec(name) for name in Settings.model_fields}
INDEXED_FIELDS: tuple[str, ...] = tuple(n for n, f in FIELDS.items() if f.indexed)


def settings_text(settings: Settings, names: Iterable[str] | None = None, *,
                  labels: bool = False) -> dict[str, str]:
    """Settings as the text the CLI takes, keyed by name (or label): the columns of every
    table and export."""
    specs = [FIELDS[n] for n in names] if names is not None else FIELDS.values()
    return {(spec.label if labels else spec.name): spec.text_of(settings) for spec in specs}


def field(name: str) -> FieldSpec:
    """The spec of a setting, or InputError naming the valid ones."""
    try:
        return FIELDS[name]
    except KeyError:
        raise InputError(f"unknown setting {name!r}; settings are: "
                         + ", ".join(FIELDS)) from None


def split_values(text: str) -> list[str]:
    """A sweep's values as typed: separated by commas, spaces or both ('10, 20', '10 20')."""
    return [item for item in re.split(r"[,\s]+", text.strip()) if item]


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """'style_weight=1e4,1e5' -> ('style_weight', [1e4, 1e5]), validated against ranges."""
    name, sep, values = text.partition("=")
    if not sep or not values.strip():
        raise InputError(f"sweep {text!r} must look like name=value1,value2")
    spec = field(name.strip())
    if not spec.sweepable:
        raise InputError(f"{spec.name} cannot be swept; set it once instead")
    parsed = [spec.parse(v) for v in split_values(values)]
    for value in parsed:
        Settings.from_dict({spec.name: value})  # range check, one clear line if out of range
    return spec.name, parsed
