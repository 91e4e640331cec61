"""The `ddpm-lab` command (pyproject.toml): `ddpm-lab compare|report|preflight|sweep [ARGS]`.

Each subcommand runs the main() of its module, exactly as `python -m MODULE ARGS` does, with the
stages' one-line errors and exit status 2 for bad input (`ddpm_lab.runtime.cli.run_stage`). Kept apart
from `ddpm_lab.runtime.cli`, which every stage imports, so that adding a command reruns no stage.
"""

from __future__ import annotations

import importlib
import sys

from ddpm_lab.runtime.cli import EXIT_BAD_INPUT, run_stage

COMMANDS = {  # name -> (module, one line of help)
    "compare": ("ddpm_lab.tools.compare", "compare variants over their replicates, with family-wise verdicts"),
    "report": (
        "ddpm_lab.tools.report",
        "the self-contained HTML report of the study (or the offline dvc plots template)",
    ),
    "preflight": ("ddpm_lab.tools.preflight", "check every section of a params file before any work"),
    "sweep": ("ddpm_lab.tools.sweep", "run a sweep file's variants x replicates as cluster jobs (Slurm via submitit)"),
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    usage = (
        "usage: ddpm-lab {"
        + ",".join(COMMANDS)
        + "} [-h] ...\n\n"
        + "\n".join(f"  {name:10s} {text}" for name, (_, text) in COMMANDS.items())
    )
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        raise SystemExit(0 if argv else EXIT_BAD_INPUT)
    if argv[0] not in COMMANDS:
        print(f"error: ddpm-lab {argv[0]}: expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)
    module = importlib.import_module(COMMANDS[argv[0]][0])
    sys.argv[0] = f"ddpm-lab {argv[0]}"  # argparse's prog, in usage and help
    run_stage(module.main, argv[1:])


if __name__ == "__main__":
    main()
