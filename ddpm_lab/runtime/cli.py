"""What every stage shares: one-line errors and a non-zero exit for bad input, tqdm bars."""

from __future__ import annotations

import sys
from typing import Callable

from tqdm import tqdm

from ddpm_lab.runtime.params import ConfigError, DataError

EXIT_BAD_INPUT = 2


def run_stage(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Call main(argv); a ConfigError or DataError becomes 'error: <one line>' on stderr and
    exit status 2 (outputs are written only at the end of a stage, so none is half-written)."""
    try:
        main(argv)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None


def progress(desc: str) -> Callable:
    """A function wrapping an iterable in a tqdm bar labelled desc (on stderr)."""
    return lambda it: tqdm(it, desc=desc, leave=False, mininterval=0.5, dynamic_ncols=True)
