"""Every registered sampler's end-to-end order, measured against the exact probability-flow map of
Gaussian data N(1.5, 0.3^2) (ddpm_lab/core/gaussian.py): the largest error over 201 starting points
x_T at S = 10 ... 320 steps (float64, linear schedule, T = 1000; cosine at S = 10 for Heun's
first-step defect), and log2 of the error ratio per doubling of S. Deterministic and a few seconds.
Writes benchmarks/results/sampler_orders.json, whose table docs/samplers.md shows
(scripts/readme_results.py). The stochastic ddpm sampler has no map to converge to: it is left out.

    python benchmarks/bench_sampler_orders.py
"""

from __future__ import annotations

import argparse

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.gaussian import map_errors, orders
from ddpm_lab.core.sampling import REGISTRY

if __package__:  # python -m benchmarks.bench_sampler_orders
    from . import harness
else:  # python benchmarks/bench_sampler_orders.py: its folder, benchmarks/, comes first on the import path
    import harness

STEPS = (10, 20, 40, 80, 160, 320)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", default=harness.RESULTS / "sampler_orders.json", help="results file")
    args = ap.parse_args(argv)
    linear = DiffusionConfig(T=1000, schedule="linear", beta_start=1e-4, beta_end=0.02, variance="beta").build()
    cosine = DiffusionConfig(T=1000, schedule="cosine", beta_start=None, beta_end=None, variance="beta").build()
    rows, table = harness.Rows(), []
    for name, spec in REGISTRY.items():
        if name == "ddpm":
            continue
        err = map_errors(linear, name, STEPS)
        measured = orders(err)
        table.append(
            {
                "sampler": name,
                "label": spec.label,
                "published_order": spec.order or 1,
                "errors": {str(s): e for s, e in err.items()},
                "measured_orders": measured,
                "cosine_error_S10": map_errors(cosine, name, (10,))[10],
            }
        )
        rows.add(
            f"{name}: measured order, S = 10 -> 20 -> 40 (published {spec.order or 1})",
            ", ".join(f"{o:.2f}" for o in measured[:3]),
            f">= {0.8 if (spec.order or 1) == 1 else 1.3} (mean)",
            sum(measured[:3]) / 3 >= (0.8 if (spec.order or 1) == 1 else 1.3),
        )
    harness.write_results(args.write, {"benchmark": "sampler_orders", "rows": rows, "table": table})
    print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
