"""Image data for the image DDPM: scikit-learn's 8x8 digits (embedded, no network), or
MNIST / Fashion-MNIST from the standard IDX files (a local folder, optionally downloaded
with checksum verification). Every dataset comes out as a fixed seeded train / held-out
split of images scaled to [-1, 1], shape (N, 1, H, W) float32, with integer labels (N,).

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/): two zero bytes, a type
code (0x08 unsigned byte, ...), the number of dimensions n, n big-endian uint32 sizes,
then the values, big-endian, row-major. Nothing else may follow.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import typing
import urllib.error
import urllib.request
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Callable, Optional

import numpy as np

from ddpm_lab.runtime.params import DataError, Int, Seed, doc, require, schema

SOURCES = ("digits", "mnist", "fashion_mnist")
# Each source's pixel values are 0..PIXEL_MAX: its M + 1 quantisation levels (the decoder's bins, ddpm_lab.images.likelihood).
PIXEL_MAX = {"digits": 16, "mnist": 255, "fashion_mnist": 255}

# The IDX folder (images_data.path) must lie under this folder, relative to the repository
# root: dvc.yaml lists it as a dependency of prepare_images, so a changed file reruns it.
RAW_DIR = "data/raw"

# IDX type code -> big-endian numpy dtype
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# The four standard files of each IDX dataset, with the MD5 of their .gz form (the checksums
# published with the datasets and used by torchvision), and default mirrors.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
DEFAULT_MIRRORS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}


@schema
class ImageDataConfig:
    """Section `images_data`: the images and their seeded train / held-out split, pixels scaled to
    [-1, 1]."""

    source: Annotated[
        str,
        doc(
            "digits (scikit-learn's 1,797 8x8 digits, embedded), mnist or fashion_mnist (IDX files in path)",
            choices=SOURCES,
        ),
    ] = "digits"
    path: Annotated[
        Optional[str],
        doc(
            f"folder of the IDX files, relative and under {RAW_DIR}/ (a dependency of prepare_images), e.g. "
            f"{RAW_DIR}/mnist; null for digits"
        ),
    ] = None
    download: Annotated[bool, doc("fetch missing IDX files from mirror, verifying their MD5")] = False
    mirror: Annotated[Optional[str], doc("where download fetches from (null: the dataset's default mirror)")] = None
    n_heldout: Annotated[
        Int, doc("held-out images, >= 2 (digits: taken from the 1,797; IDX: drawn from the t10k files)")
    ] = 360
    max_train: Annotated[Int, doc("keep at most this many training images, >= 0 (0: all)")] = 0
    seed: Annotated[Seed, doc("seed of the split (never folded with `replicate`: replicates share their data)")] = 0

    def __post_init__(self):
        require(self.source in SOURCES, "source", self.source, f"one of {', '.join(SOURCES)}")
        if self.source != "digits":
            require(bool(self.path), "path", self.path, f"a folder for the {self.source} IDX files")
            require(
                in_raw_dir(self.path),
                "path",
                self.path,
                f"a relative path under {RAW_DIR}/ (a dependency "
                f"of prepare_images in dvc.yaml), e.g. {RAW_DIR}/{self.source}",
            )
        require(self.n_heldout >= 2, "n_heldout", self.n_heldout, "an integer >= 2")
        require(self.max_train >= 0, "max_train", self.max_train, "an integer >= 0 (0: all)")

    def to_dict(self) -> dict:
        return asdict(self)


def in_raw_dir(path: str) -> bool:
    """Whether path, relative to the repository root, lies in RAW_DIR (or is it); '..' resolved."""
    p = PurePosixPath(os.path.normpath(path).replace(os.sep, "/"))
    return not p.is_absolute() and p.parts[:2] == PurePosixPath(RAW_DIR).parts


@dataclass(frozen=True)
class ImageSplit:
    """x_train: (N, 1, H, W) float32 in [-1, 1]; y_train: (N,) int64; same for the held-out set."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_heldout: np.ndarray
    y_heldout: np.ndarray


# -- IDX ---------------------------------------------------------------------------------
def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """The array held by the IDX bytes `raw` (already decompressed), or DataError naming `name`."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"{name}: bad magic number {raw[:4].hex() or 'none'}: expected an IDX file (00 00 <type> <ndim>)"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise DataError(
            f"{name}: unknown IDX type code 0x{code:02x}: expected one of {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}"
        )
    if ndim < 1:
        raise DataError(f"{name}: IDX header with 0 dimensions: expected at least 1")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated header ({len(raw)} bytes): expected {header} for {ndim} dimensions")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "trailing bytes"
        raise DataError(f"{name}: {what}: {got} bytes of data, expected {expected} for shape {shape}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file, raw or gzipped (told apart by the gzip magic bytes), or DataError (one line)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file: expected an IDX file (raw or .gz)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror}): expected an IDX file") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt gzip data ({e}): expected a gzipped IDX file") from None
    return parse_idx(raw, str(path))


def idx_bytes(arr: np.ndarray) -> bytes:
    """The IDX encoding of arr (the inverse of parse_idx; used to write test fixtures)."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    dtype = np.dtype(arr.dtype).newbyteorder("=")
    if dtype not in codes:
        raise ValueError(f"unsupported dtype {arr.dtype}: expected one of {', '.join(map(str, codes))}")
    code = codes[dtype]
    head = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return head + np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()


# -- download with checksum --------------------------------------------------------------
def file_digest(data: bytes, algorithm: str) -> str:
    if algorithm not in ("md5", "sha256"):
        raise ValueError(f"unknown checksum {algorithm!r}: expected one of md5, sha256")
    return hashlib.new(algorithm, data).hexdigest()


def fetch(
    url: str,
    dest: str | os.PathLike,
    checksum: tuple[str, str],
    opener: Callable = urllib.request.urlopen,
    timeout: float = 60.0,
) -> Path:
    """Download url to dest (atomically), verifying checksum = (algorithm, hex digest) first.
    A network failure or a wrong checksum is a DataError naming the url; dest is then untouched."""
    algorithm, want = checksum
    try:
        with opener(url, timeout=timeout) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DataError(
            f"{url}: download failed ({getattr(e, 'reason', e)}): expected a reachable "
            f"mirror, or the file placed in {Path(dest).parent} by hand"
        ) from None
    got = file_digest(data, algorithm)
    if got != want.lower():
        raise DataError(f"{url}: {algorithm} {got}: expected {want} (corrupt or wrong file; not saved)")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest


def verify_file(path: str | os.PathLike, checksum: tuple[str, str]) -> None:
    """DataError unless the file's digest equals checksum = (algorithm, hex digest)."""
    algorithm, want = checksum
    got = file_digest(Path(path).read_bytes(), algorithm)
    if got != want.lower():
        raise DataError(f"{path}: {algorithm} {got}: expected {want} (corrupt or wrong file)")


def locate_idx(folder: Path, stem: str) -> Path:
    """folder/stem.gz or folder/stem (the uncompressed form), whichever exists; else DataError."""
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"{folder / stem}[.gz]: no such file: expected the IDX file there (or set images_data.download: true)"
    )


def ensure_idx_files(source: str, folder: Path, mirror: str | None, opener: Callable = urllib.request.urlopen) -> None:
    """Download each of the four standard .gz files that is missing from folder, verifying its
    MD5; verify those already there in .gz form too (an uncompressed file is taken as is)."""
    base = mirror or DEFAULT_MIRRORS[source]
    base = base if base.endswith("/") else base + "/"
    for stem in IDX_FILES.values():
        name = f"{stem}.gz"
        checksum = ("md5", IDX_MD5[source][name])
        if (folder / name).is_file():
            verify_file(folder / name, checksum)
        elif not (folder / stem).is_file():
            fetch(base + name, folder / name, checksum, opener=opener)


def load_idx_dataset(folder: str | os.PathLike, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """kind 'train' or 'test': (images (N, H, W) uint8, labels (N,) int64), checked consistent."""
    if kind not in ("train", "test"):
        raise ValueError(f"unknown kind {kind!r}: expected one of train, test")
    folder = Path(folder)
    img_path = locate_idx(folder, IDX_FILES[f"{kind}_images"])
    lab_path = locate_idx(folder, IDX_FILES[f"{kind}_labels"])
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{img_path}: {images.dtype} array of shape {images.shape}: expected uint8 images (N, H, W)")
    if labels.ndim != 1 or labels.dtype != np.uint8 or labels.size and labels.max() > 9:
        raise DataError(f"{lab_path}: {labels.dtype} array of shape {labels.shape}: expected uint8 labels 0..9 (N,)")
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{lab_path}: {labels.shape[0]} labels for {images.shape[0]} images in {img_path}: expected equal"
        )
    return images, labels.astype(np.int64)


# -- the split ---------------------------------------------------------------------------
def to_unit_range(pixels: np.ndarray, max_value: float) -> np.ndarray:
    """Pixel values 0..max_value -> [-1, 1], with a channel axis: (N, H, W) -> (N, 1, H, W) float32."""
    return (pixels.astype(np.float32) / np.float32(max_value) * 2.0 - 1.0)[:, None]


def load_split(cfg: ImageDataConfig, opener: Callable = urllib.request.urlopen) -> ImageSplit:
    """The seeded train / held-out split of cfg.source, scaled to [-1, 1]."""
    rng = np.random.default_rng(cfg.seed)
    if cfg.source == "digits":
        from sklearn.datasets import load_digits  # ships with scikit-learn: no network

        digits = load_digits()
        x = to_unit_range(digits.images, float(PIXEL_MAX["digits"]))  # pixel values are 0..16
        y = digits.target.astype(np.int64)
        if cfg.n_heldout >= x.shape[0] - 1:
            raise DataError(
                f"images_data.n_heldout = {cfg.n_heldout}: expected fewer than the {x.shape[0]} digits minus one"
            )
        perm = rng.permutation(x.shape[0])
        held, train = perm[: cfg.n_heldout], perm[cfg.n_heldout :]
        x_tr, y_tr, x_ho, y_ho = x[train], y[train], x[held], y[held]
    else:
        folder = Path(typing.cast(str, cfg.path))
        if cfg.download:
            ensure_idx_files(cfg.source, folder, cfg.mirror, opener=opener)
        img_tr, y_tr = load_idx_dataset(folder, "train")
        img_te, y_te = load_idx_dataset(folder, "test")
        if cfg.n_heldout > img_te.shape[0]:
            raise DataError(
                f"images_data.n_heldout = {cfg.n_heldout}: expected at most the "
                f"{img_te.shape[0]} test images in {folder}"
            )
        held = rng.permutation(img_te.shape[0])[: cfg.n_heldout]
        train = rng.permutation(img_tr.shape[0])
        x_tr, x_ho, y_ho = (
            to_unit_range(img_tr[train], float(PIXEL_MAX[cfg.source])),
            to_unit_range(img_te[held], float(PIXEL_MAX[cfg.source])),
            y_te[held],
        )
        y_tr = y_tr[train]
    if cfg.max_train:
        x_tr, y_tr = x_tr[: cfg.max_train], y_tr[: cfg.max_train]
    return ImageSplit(np.ascontiguousarray(x_tr), y_tr, np.ascontiguousarray(x_ho), y_ho)
