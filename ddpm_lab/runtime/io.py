"""File I/O for the stages: params, arrays, JSON, CSV, checkpoints; every write atomic.

The maths modules never touch files; stages read inputs through here and write outputs
with `write_outputs`, which writes each file to a temporary name and renames it into
place only once every output has been produced, so a failing stage leaves no
half-written file behind.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import yaml

from ddpm_lab.runtime.params import ConfigError, DataError, to_dict


def load_params(path: str | os.PathLike = "params.yaml") -> dict:
    """The whole params file as a dict, or ConfigError naming the file."""
    try:
        with open(path) as f:
            params = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file: expected the params file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: top level is {type(params).__name__}: expected a mapping of sections")
    return params


def json_bytes(obj) -> bytes:
    """Stable JSON: sorted keys, two-space indent, trailing newline."""
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def write_outputs(outputs: dict[str | os.PathLike, bytes | Callable[[str], None]]) -> None:
    """Write every output atomically: each value is the file's bytes, or a function that
    writes a file at the path it is given (matplotlib's savefig, say). All temporary files
    are written first; only then is each renamed over its target."""
    staged: list[tuple[str, Path]] = []
    try:
        for target, content in outputs.items():
            target = Path(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
            os.close(fd)
            staged.append((tmp, target))
            if isinstance(content, bytes):
                Path(tmp).write_bytes(content)
            else:
                content(tmp)
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, target in staged:
        os.replace(tmp, target)


def png_writer(fig, dpi: int, version_stamp: bool = False) -> Callable[[str], None]:
    """A write_outputs writer of matplotlib figure `fig` as a PNG at `dpi`. By default without
    matplotlib's "Software" stamp (its version), so that the bytes depend on the drawing alone;
    version_stamp=True keeps the stamp (the figures that have always carried it)."""
    if version_stamp:
        return lambda path: fig.savefig(path, dpi=dpi, format="png")
    return lambda path: fig.savefig(path, format="png", dpi=dpi, metadata={"Software": None})


def read_json(path) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file: run the stage that writes it (dvc repro)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


def read_array(path, ndim: int | None = None, key: str | None = None) -> np.ndarray:
    """A .npy array, or array `key` of a .npz, checked finite and with `ndim` dimensions."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if key is None:
            arr = np.asarray(loaded)
        else:
            with loaded:
                arr = loaded[key]
    except FileNotFoundError:
        raise DataError(f"{path}: no such file: run the stage that writes it (dvc repro)") from None
    except KeyError:
        raise DataError(f"{path}: has no array '{key}'") from None
    except (ValueError, OSError, EOFError, TypeError, AttributeError) as e:
        raise DataError(f"{path}: not a readable numpy file ({e})") from None
    if ndim is not None and arr.ndim != ndim:
        raise DataError(f"{path}: array of shape {arr.shape}: expected {ndim} dimensions")
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: array holds non-finite or non-numeric values: expected finite numbers")
    return arr


def read_sampler(path) -> str:
    """The description of the sampler that drew the samples in the .npz at path (array
    `sampler`, written by the sampling stages), e.g. "DDIM (eta = 0), 50 of 1000 steps"."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "sampler" in z and z["sampler"].dtype.kind == "U" and z["sampler"].ndim == 0:
                return str(z["sampler"])
    except FileNotFoundError:
        raise DataError(f"{path}: no such file: run the stage that writes it (dvc repro)") from None
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable numpy file ({e})") from None
    raise DataError(
        f"{path}: has no array 'sampler' (a description): expected samples written by a sampling stage "
        "(rerun with dvc repro)"
    )


def read_csv(path, columns: list[str], n_rows: int | None = None) -> pd.DataFrame:
    """A CSV with exactly `columns`, finite numbers and at least one row (exactly n_rows if given)."""
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file: run the stage that writes it (dvc repro)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CSV ({e})") from None
    rows_ok = len(table) >= 1 if n_rows is None else len(table) == n_rows
    numeric = table.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if list(table.columns) != columns or not rows_ok or not np.all(np.isfinite(numeric)):
        want = "at least one" if n_rows is None else str(n_rows)
        raise DataError(
            f"{path}: columns {list(table.columns)}, {len(table)} rows: expected {','.join(columns)} "
            f"with {want} rows of finite numbers (rerun the stage that writes it)"
        )
    return table


def save_checkpoint_bytes(state_dict: dict, config: dict) -> bytes:
    """A checkpoint that carries its own config; loads with torch.load(weights_only=True)."""
    return torch_bytes({"config": config, "state_dict": state_dict})


def load_torch(source, name, expected: str):
    """torch.load(weights_only=True) of a file path or of raw bytes, or a one-line DataError naming
    `name` (with torch's own first line of explanation) and what was `expected` instead."""
    try:
        return torch.load(
            io.BytesIO(source) if isinstance(source, bytes) else source, map_location="cpu", weights_only=True
        )
    except FileNotFoundError:
        raise DataError(f"{name}: no such file: run the stage that writes it (dvc repro)") from None
    except Exception as e:  # torch raises many types for a corrupt file; all mean the same here
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        raise DataError(
            f"{name}: not a readable checkpoint ({type(e).__name__}{': ' + first if first else ''}): "
            f"expected {expected}"
        ) from None


def load_checkpoint(path) -> tuple[dict, dict]:
    """(config, state_dict) of a checkpoint written by save_checkpoint_bytes, or DataError."""
    ckpt = load_torch(path, path, "a file written by the training stage")
    if not isinstance(ckpt, dict) or not {"config", "state_dict"} <= set(ckpt):
        raise DataError(
            f"{path}: checkpoint lacks 'config' / 'state_dict': expected a file written by the training stage"
        )
    return ckpt["config"], ckpt["state_dict"]


def load_trained_model(path, diffusion, build: Callable[[dict], torch.nn.Module], section: str = "diffusion"):
    """(model in eval mode, checkpoint config) from a training stage's checkpoint: the network is
    build(config["model"]) with the saved weights. The checkpoint's diffusion config must equal
    `diffusion` (the params.yaml section `section`), else ConfigError; a checkpoint that does
    not fit the network is a DataError."""
    config, state = load_checkpoint(path)
    if config.get("diffusion") != to_dict(diffusion):
        raise ConfigError(
            f"params.yaml: {section} = {to_dict(diffusion)} but {path} was trained with "
            f"{config.get('diffusion')}: expected equal (rerun with dvc repro)"
        )
    try:
        model = build(config["model"])
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise DataError(
            f"{path}: checkpoint does not fit the network ({type(e).__name__}): "
            f"expected a file written by its training stage"
        ) from None
    return model.eval().requires_grad_(False), config
