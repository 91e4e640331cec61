"""Stage evaluate_images: the image metrics, each beside its floor, and the model's bound in bits/dim -> metrics/images.json + metrics/details/images.json.

Params: `images_eval` (the feature classifier, feature_share, floor_draws, bootstrap; its seed
also draws the bound's noise), `images_diffusion` (the model's), `images_data.source` (the
decoder's bins) and `images_sample.device` / `threads` (the model runs as sampling runs it). The
real images are split three ways: the classifier is fit on feature_share of the training
images, the other training images are the floor pool, the held-out images the reference
(sizes in the details' `split`). In the classifier's feature space: the Frechet distance and
KID of generated vs held-out images, each against its floor (the same statistic between two
disjoint sets of as many real images unseen by the classifier, drawn from the floor pool and
the held-out set, over floor_draws draws: median and 5-95% band, calibrated so that an exact
generator lands above the p95 about 5% of the time; see image_metrics.evaluate_samples) and
with a bootstrap band; the classifier's held-out accuracy, its class histogram and mean
confidence on the samples; the nearest-training-image distances of samples against
held-out real images; and the variational bound (Eq. 5 with the discretised decoder, Eq. 13) of
the EMA U-Net on the held-out images in bits per dimension with its standard error
(ddpm_lab.images.likelihood). The headline file (a DVC metric) holds only
ddpm_lab.images.metrics.HEADLINE_KEYS; the rest goes to the details file. Both are written
together, atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.images import likelihood
from ddpm_lab.images.data import PIXEL_MAX, ImageDataConfig
from ddpm_lab.images.metrics import EvalConfig, evaluate_samples
from ddpm_lab.images.params import read
from ddpm_lab.images.sample import ImageSampleConfig
from ddpm_lab.runtime.cli import progress, run_stage
from ddpm_lab.runtime.io import json_bytes, load_params, read_array, read_sampler, write_outputs
from ddpm_lab.runtime.params import DataError
from ddpm_lab.runtime.torch_setup import configure_torch


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/images/split.npz", type=Path)
    ap.add_argument("--samples", default="data/images/samples.npz", type=Path)
    ap.add_argument("--model", default="models/images_unet.pt", type=Path, help="the EMA U-Net, for the bound")
    ap.add_argument("--out", default="metrics/images.json", type=Path, help="headline metrics (DVC metric)")
    ap.add_argument(
        "--details-out",
        default="metrics/details/images.json",
        type=Path,
        help="every other number: draws, bands, histograms, memorisation, config",
    )
    args = ap.parse_args(argv)

    params = load_params(args.params)
    cfg = read(params, "images_eval", args.params, cls=EvalConfig)
    dcfg = read(params, "images_diffusion", args.params, cls=DiffusionConfig)
    max_value = PIXEL_MAX[read(params, "images_data", args.params, cls=ImageDataConfig).source]
    scfg = read(params, "images_sample", args.params, cls=ImageSampleConfig)
    split = {k: read_array(args.data, key=k) for k in ("x_train", "y_train", "x_heldout", "y_heldout")}
    generated = read_array(args.samples, ndim=4, key="images")
    if generated.shape[1:] != split["x_train"].shape[1:]:
        raise DataError(
            f"{args.samples}: images of shape {generated.shape[1:]}: expected "
            f"{split['x_train'].shape[1:]} as in {args.data} (rerun with dvc repro)"
        )
    headline, details = evaluate_samples(
        generated,
        split["x_train"],
        split["y_train"],
        split["x_heldout"],
        split["y_heldout"],
        cfg,
        rng=np.random.default_rng([cfg.seed, 1]),
    )
    steps, sampler = int(read_array(args.samples, ndim=0, key="steps")), read_sampler(args.samples)  # how drawn
    likelihood.check_levels(split["x_heldout"], max_value, f"{args.data}: x_heldout")
    device = configure_torch(scfg.device, scfg.threads)
    bound = likelihood.heldout_bound(
        args.model, dcfg, split["x_heldout"], max_value, device, cfg.seed, progress("evaluate_images: bound over t")
    )
    headline = {**headline, "bpd": bound["bits_per_dim"], "bpd_se": bound["bits_per_dim_se"]}
    details = {**details, "sampler": sampler, "steps": steps, "bound": bound}
    write_outputs({args.out: json_bytes(headline), args.details_out: json_bytes(details)})
    h, fl, mem, sp = headline, details["fd_floor"], details["memorisation"], details["split"]
    med = fl["median"]
    x = (lambda v: f"x{v / med:.2f}") if med > 0 else (lambda v: "x?")  # a zero floor: degenerate features
    print(
        f"evaluate_images: {sampler}: FD ratio {x(details['fd']['value'])} (FD {details['fd']['value']:.3f} / median floor "
        f"{med:.3f}; floor band {x(fl['p05'])}-{x(fl['p95'])} over {len(fl['draws'])} draws"
        f"{'' if details['fd_inside_floor_band'] else ', ABOVE p95'}); "
        f"KID {h['kid']:.5f} +- {h['kid_se']:.5f} (floor p95 {h['kid_p95']:.5f}"
        f"{'' if details['kid_inside_floor_band'] else ', ABOVE p95'}); "
        f"bound {bound['bits_per_dim']:.4f} +- {bound['bits_per_dim_se']:.4f} bits/dim ({max_value + 1} levels); "
        f"{h['classes_present']}/{details['classes']['n_classes']} classes present, confidence {h['confidence']:.3f}; classifier held-out accuracy "
        f"{details['classifier']['heldout_accuracy']:.3f} (split {sp['features']} features / {sp['floor_pool']} "
        f"floor pool / {sp['reference']} reference); {mem['n_generated_closer_than_heldout_min']} samples "
        f"closer to train than any held-out image -> {args.out}, {args.details_out}"
    )


if __name__ == "__main__":
    run_stage(main)
