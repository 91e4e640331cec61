"""Fill the generated blocks of README.md and docs/ with the numbers of params.yaml, metrics/ and benchmarks/.

    python scripts/readme_results.py           # rewrite the text between every pair of markers
    python scripts/readme_results.py --check   # exit 1, naming the file and the block, if any block is stale

A block is the text between `<!-- name -->` and `<!-- /name -->` in one file (BLOCKS). It holds tables, commands
and numbers; the prose that reads them is Markdown around its markers. A table is a header and row templates
(TABLES) filled from the JSON and CSV files as they are; a cell with @ repeats for each statistic registered in
ddpm_lab.gmm.distances.STATISTICS that the file holds, so a new statistic gains its column by itself.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import yaml

from ddpm_lab.core.sampling import REGISTRY
from ddpm_lab.gmm.distances import STATISTICS
from ddpm_lab.gmm.hybrid import gap_shares
from ddpm_lab.gmm.names import ALL_MODELS, HYBRIDS, LABELS, MODELS, ORACLE
from ddpm_lab.tools.compare import group, load_runs, rows
from ddpm_lab.tools.verdicts import difference, holm, mean_ci

ROOT = Path(__file__).resolve().parents[1]
RES, REP = "benchmarks/results/", "benchmarks/replicates/"
GAP_TARGET = 0.010  # nats: the candidates' target on the Eq. 12 model's exact bound gap, in every replicate
SETUP = "gmm.weights gmm.means gmm.stds diffusion.T diffusion.schedule diffusion.beta_start diffusion.beta_end"
SETUP += " diffusion.variance model.hidden model.n_blocks sample.sampler compare_dist.floor_draws"  # the params the README's setup shows
TABLES = {m[0]: m[1:] for m in re.findall(r"^(\S+): (\|.*)\n((?:\|.*\n)+)", flags=re.M, string=r"""

bound: | model | training (steps x batch) | expected bound (nats) | gap to the oracle (nats, +- error) | held-out paired estimate (n = {n:,}) |
| {label} | {run} | {expected_bound[model]:.5f} | {gap} | {held} |
losses: | model | exact expected loss (nats) | its floor | excess | last logged losses (mean +- se) |
| {label} | {saved_model_expected_loss:.4f} | {loss_floor:.4f} | {saved_model_excess_loss:.4f} | {logged} |
sampled: | model (n = {n_pooled:,}: {n_seeds} seeds x {n_per_seed:,}) | @ / floor | max mode-weight error |
| {label} | {@} | {mode} |
exact: | output of {sampler} | KL(q \|\| p) (nats) | @ / floor median | max mode-weight error | draws vs this distribution (KS test p) | bound's p_theta: KL <= E_q[L] - H(q) |
| {label} | {o[kl]:.2e} +- {o[kl_err]:.0e} | {o[@_ratio]:.3f} +- {o[@_ratio_err]:.0e} | {o[mode_err]:.4f} | {p:.2f} | {check} |
images: | measure | generated (n = {n_generated}) | floor ({n_floor} draws of {n_compared} real vs {n_compared} real, from {split[floor_pool]} in the pool and {split[reference]} held out): median [5%, 95%], or held-out real | ratio to the floor's median (p95) | band |
| Fréchet distance | {fd[value]:.3f} (bootstrap 5-95%: {fd[bootstrap_p05]:.3f}-{fd[bootstrap_p95]:.3f}) | {fd_floor[median]:.3f} [{fd_floor[p05]:.3f}, {fd_floor[p95]:.3f}] | {h[fd_ratio]:.2f} ({h[fd_p95]:.2f}) | {fd_band} |
| KID | {h[kid]:.3g} +- {h[kid_se]:.3g} | {kid_floor[median]:.3g} [{kid_floor[p05]:.3g}, {kid_floor[p95]:.3g}] |  | {kid_band} |
| classes present, mean confidence | {h[classes_present]}/{classes[n_classes]}, {h[confidence]:.3f} | {classes[heldout][classes_present]}/{classes[n_classes]}, {classes[heldout][mean_confidence]:.3f} |  |  |
| nearest training image (pixel distance, min) | {memorisation[generated_nn_min]:.2f} | {memorisation[heldout_nn_min]:.2f} |  |  |
| samples closer to one than any held-out image | {memorisation[n_generated_closer_than_heldout_min]} |  |  |  |
| the classifier's held-out accuracy (fit on {split[features]} training images) |  | {classifier[heldout_accuracy]:.3f} |  |  |
| the model's bound on the held-out images (Eq. 5, decoder Eq. 13, {bound[levels]} levels): bits/dim +- SE |  | {h[bpd]:.4f} +- {h[bpd_se]:.4f} (uniform: {uniform_bpd:.3f}) |  |  |
benchmarks: | benchmark | what | measured | target | |
| {benchmark} | {what} | {measured} | {target} | {ok} |
replicates: | metric | variant | n (of {runs} runs) | mean +- 95% CI | difference vs baseline [95% CI] | p (Holm-adjusted over {tests} tests) | verdict |
| {metric} | {variant} | {n} | {mean:.4g} +- {half:.2g} | {test} | {verdict} |
gap-tests: | eq12.bound_gap: variant | replicate-matched pairs | difference (nats) [95% CI] | p (Holm-adjusted) | verdict |
| {variant} | {pairs} | {test} | {verdict} |
power: | metric | variant | pairs for 80% power |
| {metric} | {variant} | {n_for_power} |
candidates: | variant | inside on {inside} | exact bound gap <= {target:g} nats | meets the target |
| {name} | {ins} of {n} | {gap} of {n} | {met} |
design: | variant | exact bound gap (nats, mean +- 95% CI) | inside on {inside} | differs from the default (Holm over {tests} tests) |
| {variant} | {mean:.4f} +- {half:.4f} | {ins} of {n} | {shown} |
where: | variant | t | part of the gap (nats) | share | difference vs baseline [95% CI] | p (Holm-adjusted over {tests} tests) | verdict |
| {variant} | {t_from}-{t_to} | {mean:.2g} +- {half:.1g} | {share:.0%} | {test} |
train-time: | variant | train_eq12 wall time (s; one run, {cpus} cores) |
| {variant} | {seconds:.1f} |
estimators: | run | budget (x W) | steps x rows | exact gap (nats) | wall time (s) |
| {label} | {budget} | {steps:,} x {batch} | {gap:.4f} | {wall_s:.1f} |
ev-params: | minibatches | rows_trajectory | rows_subsampled | rows_eq12 | terms | threads |
| {minibatches} | {rows_trajectory} | {rows_subsampled} | {rows_eq12} | {terms} | {threads} |
ev-headline: | eq3_cost_x | eq3_cost_x_se | the stage's wall time, enabled |
| {headline[eq3_cost_x]:.3g} | {headline[eq3_cost_x_se]:.2g} | {wall} |
image-floor: | real images | training | held out | classifier fit on (feature_share) | floor pool | reference | floor draws | real images per set |
| {n_real:,} | {n_train:,} | {n_heldout:,} | {split[features]:,} ({config[feature_share]:g}) | {split[floor_pool]:,} | {split[reference]:,} | {n_floor} | {n_compared:,} |
image-calibration: | measure | share of {splits} splits [95% Clopper-Pearson] (count) | nominal |
| {what} | {measured} | {target} |
variance: | schedule | S | beta_t | beta~_t | optimal per t | optimal per x_t | quadrature error estimate (largest in the row) |
| {schedule} | {steps} | {beta:.4f} | {beta_tilde:.4f} | {optimal_t:.4f} | {optimal_xt:.4f} | {err:.0e} |
variance-exact: | schedule | S | KL(q \|\| p): beta_t | beta~_t | optimal | W1: beta_t | beta~_t | optimal | grid error (largest in the row) |
| {schedule} | {steps} | {beta_kl:.3g} | {beta_tilde_kl:.3g} | {optimal_kl:.3g} | {beta_w1:.4f} | {beta_tilde_w1:.4f} | {optimal_w1:.4f} | {err:.0e} |
variance-model: | S | beta_t | beta~_t | optimal (the data's mmse_t) | Analytic-DPM's estimate from the model | optimal for the model (mmse_t + e_t) |
| {steps} | {beta:.4f} | {beta_tilde:.4f} | {optimal (data):.4f} | {Analytic-DPM estimate:.4f} | {optimal (model):.4f} |
image-reference: | measure, floor, sets | rate per reference over {draws} sets: min-max (mean; references above it) | target (Holm over {references} references) |
| {what} | {measured} | {target} |
recipes-data: | training draws | floor median: @ | mode-error target | training draws: @ / floor median | training draws: mode error |
| {n_train:,.0f} | {@_floor_median:.4g} | {mode_err_target:.4f} | {@_ratio:.2f} | {mode_err:.4f} |
recipes: | candidate | overrides | replicates | train s | bound gap (nats) | @ / floor median | mode error | meet all targets | exact {primary} differs from the baseline's (Holm over {tests}) |
| {name} | {over} | {reps} | {s:.0f} | {bound_gap} | {@_ratio} | {mode_err} | {meets} of {reps} | {shown} |
recipes-sampled: | replicate of {names} | exact @ / floor median | exact mode error | sampled @ / floor median | sampled mode error | sampled: inside ({ins} of {n}) |
| {replicate} | {@_ratio:.2f} | {mode_err:.4f} | {sampled_@_ratio:.2f} | {sampled_mode_err:.4f} | {yes} |
hybrid: | t0 ({n_pooled:,.0f} pooled draws per row) | model at t <= t0: W1 | KS | mode error | model at t > t0: W1 | KS | mode error |
| {t0} | {low} | {high} |
hybrid-exact: | t0 (grid error at most {err:.0e} in the ratios) | model at t <= t0: KL (nats) | W1 | KS | mode error | model at t > t0: KL (nats) | W1 | KS | mode error |
| {t0} | {low} | {high} |
orders: | sampler | published order | error at S = {steps} | measured order, S -> 2 S for S = {doubled} | cosine schedule, error at S = 10 |
| {name} | {published_order} | {err} | {measured} | {cosine_error_S10:.2g} |
table2-gmm: | row ({reps} replicates each; mean +- 95% CI, * differs from the first row, Holm over {tests} tests) | exact bound gap (nats) | exact KL (nats) | W1 / floor median | KS / floor median | respaced DDPM: S inside the band |
| {variant} | {bound_gap} | {exact_kl} | {w1_ratio} | {ks_ratio} | {nfe} |
table2-images: | row ({reps} replicates each; mean +- 95% CI, * differs from the first row, Holm over {tests} tests) | bits/dim | FD / floor median | KID (x 1e3) |
| {variant} | {bpd} | {fd_ratio} | {kid} |
learned-variance: | train_eq12.steps | learned Sigma | fixed beta_t: exact bound gap (nats, mean +- 95% CI) | learned: exact bound gap | learned - fixed, paired over {reps} replicates [95% CI] (* Holm over {tests} tests) | training s: fixed / learned (mean; {cpus} cores, 2 runs at once) |
| {steps:,} | {row} | {fixed} | {learned} | {test} | {seconds_fixed:.0f} / {seconds_learned:.0f} |
nfe-variance: | model | reverse variance | smallest S inside the band (W1 and KS) | W1 / floor median, exact (band {p05:.2f}-{p95:.2f}; grid error at most {err:.0e}), at S = 10 | 25 | 50 | 100 |
| {model} | {variance} | {first} | {w10:.2f} | {w25:.2f} | {w50:.2f} | {w100:.2f} |
gap-shares: | t | mean w_t | mean e_t | w_t e_t summed (nats) | share of the gap |
| {t_from}-{t_to} | {mean_w:.4f} | {mean_e:.5f} | {gap:.5f} | {share:.1%} |
""")}  # fmt: skip


def table(name: str, records, st=(), **ctx) -> list[str]:
    """TABLES[name]: its header filled from ctx, its row templates from each record; a cell with @ repeats for each
    statistic of st (@ is its label in the header, its name in the rows)."""

    def each(line: str, attr: str) -> str:
        return re.sub(r"(?<=\| )[^|]*@[^|]*?(?= \|)", lambda m: " | ".join(m[0].replace("@", getattr(s, attr)) for s in st), line)  # fmt: skip

    head, cells = each(TABLES[name][0], "label").format_map(ctx), each(TABLES[name][1], "name").splitlines()
    return [head, "|" + "---|" * (head.count(" | ") + 1), *(c.format_map(ctx | dict(r)) for r in records for c in cells)]  # fmt: skip


def stats(keys, key: str = "{}_ratio") -> list:
    """The registered statistics whose `key` is among keys, in the registry's order."""
    return [s for s in STATISTICS.values() if key.format(s.name) in keys]


def band(x: float, p95: float, fmt: str = ".2f") -> str:
    return f"{x:{fmt}} ({'inside' if x <= p95 else 'above'}; p95 {p95:{fmt}})"


def load(root: Path, rel: str) -> dict:
    return json.loads((root / rel).read_text())


def dist(root: Path, kind: str = "details/dist", models=ALL_MODELS) -> dict:
    return {k: load(root, f"metrics/{kind}_{k}.json") | {"label": LABELS[k]} for k in models}


def setup(root: Path) -> list[str]:
    p = yaml.safe_load((root / "params.yaml").read_text())
    v = {k: p[k.split(".")[0]][k.split(".")[1]] for k in SETUP.split()}
    v["sample.sampler"] = f"{v['sample.sampler']}: {REGISTRY[v['sample.sampler']].label}"
    rule = load(root, "metrics/details/dist_eq12.json")["mode"]  # the assignment rule's weights on exact samples
    v["pi_k"] = "[" + ", ".join(f"{round(x, 4):g}" for x in rule["assigned_weights_exact"]) + "]"
    v["largest pi_k - w_k"] = f"{rule['rule_bias']:.4f}"
    return [
        f"| {' | '.join(v)} |",
        "|" + "---|" * len(v),
        f"| {' | '.join('-' if x is None else str(x) for x in v.values())} |",
    ]


def bound(root: Path) -> list[str]:
    det, fit = dist(root), dist(root, "details/train", MODELS)
    for k, d in det.items():
        b, h = d["expected_bound"], d["heldout_paired_estimate"]
        d |= {"run": "-", "gap": "0", "held": "0"}
        if k in fit:
            d["run"] = f"{fit[k]['steps']:,} x {fit[k]['batch_size']}"
            d["gap"] = f"{b['gap_to_oracle']:+.5f} +- {b['gap_err']:.0e}"
            d["held"] = f"{h['gap_to_oracle']:+.4f} +- {h['gap_to_oracle_se']:.4f} (z = {h['gap_z']:+.1f})"
    for f in fit.values():
        f["logged"] = f"{f['final_loss']:.3f} +- {f['final_loss_se']:.3f}"
    o, h = det[ORACLE]["expected_bound"]["oracle"], det[ORACLE]["entropy"]  # the oracle's floor: the entropy
    fit[ORACLE] = {"label": LABELS[ORACLE], "saved_model_expected_loss": o, "loss_floor": h, "logged": "-"}
    fit[ORACLE]["saved_model_excess_loss"] = o - h
    n = det[ORACLE]["heldout_paired_estimate"]["n"]
    return [*table("bound", det.values(), n=n), "", *table("losses", fit.values())]


def sampled(root: Path) -> list[str]:
    """The sampled distributions against the floor band, one column per registered statistic the metrics hold;
    then the sampler's exact output distribution (`exact`)."""
    head, d = dist(root, "dist"), load(root, "metrics/details/dist_eq12.json")
    st = stats({k for h in head.values() for k in h})
    for h in head.values():
        h |= {s.name: band(h[f"{s.name}_ratio"], h[f"{s.name}_p95"]) if f"{s.name}_ratio" in h else "-" for s in st}
        h["mode"] = band(h["mode_err"], h["mode_p95"], ".4f")
    return table("sampled", head.values(), st, **d) + (["", *e] if (e := exact(root)) else [])


def exact(root: Path) -> list[str]:
    det = dist(root)
    if not det[MODELS[0]].get("exact_sampled"):
        return []
    for d in det.values():
        e, dec = d["exact_sampled"], d["exact_sampled"].get("decoder")
        d |= {"o": e["output"], "p": e["samples_vs_propagated"]["p_value"], "check": "- (not Algorithm 2)"}
        if dec:
            d["check"] = f"{dec['kl']:.2e} <= {dec['kl_upper']:.2e} ({'holds' if dec['kl_within_upper'] else 'FAILS'})"
    return table("exact", det.values(), stats(det[MODELS[0]]["o"], "{}_ratio_err"), **det[MODELS[0]]["exact_sampled"])


def images(root: Path) -> list[str]:
    h, d = load(root, "metrics/images.json"), load(root, "metrics/details/images.json")
    side = {True: "inside", False: "above"}
    d |= {"h": h, "n_floor": len(d["fd_floor"]["draws"]), "fd_band": side[d["fd_inside_floor_band"]]}
    d["kid_band"] = side[d["kid_inside_floor_band"]]
    d["uniform_bpd"] = math.log2(d["bound"]["levels"])  # every level equally likely
    if abs(h["kid"] - d["kid_floor"]["p95"]) <= h["kid_se"]:
        d["kid_band"] += "; within one SE of p95: undecided"
    return table("images", [d], **d)


def benchmark_section(root: Path) -> list[str]:
    """The rows the benchmark scripts wrote with --write (benchmarks/results/*.json)."""
    benches = [json.loads(p.read_text()) for p in sorted((root / RES).glob("*.json"))]
    ok = {None: "", True: "met", False: "missed"}
    return table("benchmarks", [b | r | {"ok": ok[r["met"]]} for b in benches for r in b["rows"]])


def commands(root: Path, path: str) -> list[str]:
    """The commands that ran the saved replicates, at the commit they record."""
    runs, lines = load_runs(root / path), ["```bash"]
    for i, v in enumerate(group(runs)):
        reps = sorted({r.replicate for r in v.runs if not (r.committed and i == 0)})
        whole = len(reps) > 1 and reps == list(range(reps[0], reps[-1] + 1))
        sets = [f"'replicate=range({reps[0]},{reps[-1] + 1})'" if whole else "replicate=" + ",".join(map(str, reps))]
        sets += [shlex.quote(p) for p in v.name.split(", ")] if i else []
        lines.append("dvc exp run --queue " + " ".join(f"-S {s}" for s in sets) + " compare_dist")
    rev = next((r for r in runs if r.committed), runs[0]).rev[:7]
    return lines + ["dvc queue start -j 1", f"ddpm-lab compare --rev {rev} --save {path}", "```"]


def replicates(root: Path, path: str) -> list[str]:
    """`ddpm-lab compare --runs path`'s rows, the tests of the Eq. 12 model's bound gap, the pairs 80% power needs."""
    variants = group(load_runs(root / path))
    rs = rows(variants)
    for r in rs:
        r["test"] = " | "
        if r["interval"]:
            (lo, hi), p = r["interval"], f"{r['p']:.2g} ({r['p_adj']:.2g})"
            r["test"] = f"{r['diff']:.4g} [{lo:.4g}, {hi:.4g}] | {p}"
    ctx = {"runs": sum(len(v.runs) for v in variants), "tests": sum(r["tested"] for r in rs)}
    out = [*table("replicates", [r for r in rs if r["n"] >= 2], **ctx), ""]
    out += table("gap-tests", [r for r in rs if r["metric"] == "eq12.bound_gap" and r["tested"]])
    power = [r for r in rs if r["n_for_power"]]
    return out + (["", *table("power", power)] if power else [])


def inside(root: Path, variants) -> tuple[dict, str]:
    """{metric: the floor's p95} of the Eq. 12 model's decided statistics and mode error that the runs hold; labels."""
    f = load(root, "metrics/dist_eq12.json")
    p95 = {f"eq12.{s.name}_ratio": f[f"{s.name}_p95"] for s in stats(f, "{}_p95") if s.decided}
    p95 = {m: p for m, p in (p95 | {"eq12.mode_err": f["mode_p95"]}).items() if any(m in r.metrics for v in variants for r in v.runs)}  # fmt: skip
    return p95, ", ".join(STATISTICS[m[5:-6]].label if m.endswith("_ratio") else "mode error" for m in p95)


def candidates(root: Path) -> list[str]:
    variants = group(load_runs(root / REP / "eq12_candidates.json"))
    (p95, label), body = inside(root, variants), []
    for i, v in enumerate(variants):
        runs = [r for r in v.runs if all(m in r.metrics for m in (*p95, "eq12.bound_gap"))]
        n, gap = len(runs), sum(r.metrics["eq12.bound_gap"] <= GAP_TARGET for r in runs)
        ins = sum(all(r.metrics[m] <= p for m, p in p95.items()) for r in runs)
        met = ("yes" if n >= 5 and ins >= 4 and gap == n else "no") if i else "-"
        body.append({"name": v.name, "ins": ins, "gap": gap, "n": n, "met": met})
    return table("candidates", body, inside=label, target=GAP_TARGET)


def design_space(root: Path) -> list[str]:
    variants = group(load_runs(root / REP / "design_space.json"))
    (p95, label), rs, body = inside(root, variants), rows(variants, prospective=False), []
    for i, v in enumerate(variants):
        mine = [r for r in rs if r["id"] == f"v{i}"]
        shown = ", ".join(f"{r['metric']} {r['diff']:+.2g}" for r in mine if r["differs"]) or "none"
        ins = sum(all(r.metrics[m] <= p for m, p in p95.items()) for r in v.runs)
        gap = next(r for r in mine if r["metric"] == "eq12.bound_gap")
        body.append(gap | {"ins": ins, "n": len(v.runs), "shown": shown if i else ""})
    return table("design", body, inside=label, tests=sum(r["tested"] for r in rs))


def where_in_t(root: Path) -> list[str]:
    t = pd.read_csv(root / RES / "where_in_t.csv").to_dict("records")
    for r in t:
        r["test"], verdict = " |  | ", "differs" if r["differs"] else "not shown"
        if pd.notna(r["p"]):
            r["test"] = (
                f"{r['diff']:+.2g} [{r['low']:.2g}, {r['high']:.2g}] | {r['p']:.2g} ({r['p_holm']:.2g}) | {verdict}"
            )
    return table("where", t, tests=sum(pd.notna(r["p"]) for r in t))


def results_rows(root: Path, name: str, rel: str) -> list[str]:
    """TABLES[name] over the rows of a benchmark's results file, its header filled from the file."""
    b = load(root, rel)
    return table(name, b["rows"], **b)


def variance(root: Path) -> list[str]:
    """The oracle's exact bound under each reverse variance, per schedule and respaced S."""
    b = load(root, f"{RES}variance.json")
    return table("variance", b["table"], **b)


def variance_exact(root: Path) -> list[str]:
    """The exact output distribution of respaced ancestral sampling with eps* under each variance."""
    b = load(root, f"{RES}variance.json")
    rows = [r | {"err": max(r[f"{v}_err"] for v in ("beta", "beta_tilde", "optimal"))} for r in b["exact_output"]]
    return table("variance-exact", rows, **b)


def variance_model(root: Path) -> list[str]:
    """The trained model's exact bound under each variance, per respaced S."""
    b = load(root, f"{RES}variance.json")["trained_model"]
    return table("variance-model", b["by_steps"], **b)


def estimators_example(root: Path) -> list[str]:
    """The benchmark's best Eq. 3 run within 2x W beside Eq. 12's, and the command that reproduces it."""
    b = load(root, f"{RES}estimators.json")
    best = min((r for r in b["runs"] if not r.get("error") and r["budget"] <= 2), key=lambda r: r["gap"])
    words = best["command"].split(" -S ")
    lines = [words[0]]
    for w in ["-S " + w for w in words[1:]]:  # shell lines of at most 100 characters, broken before an -S
        lines[-1:] = [lines[-1] + " \\", "  " + w] if len(lines[-1]) + 1 + len(w) > 100 else [lines[-1] + " " + w]
    eq12 = b["eq12"] | {"label": "Eq. 12 (`train_eq12`)", "budget": f"1 (W = {b['W_s']:.1f} s)"}
    return [*table("estimators", [eq12, best | {"budget": f"{best['budget']:g}"}]), "", "```bash", *lines, "```"]


def estimator_variance(root: Path) -> list[str]:
    ev = yaml.safe_load((root / "params.yaml").read_text())["estimator_variance"]
    saved = load(root, f"{RES}estimator_variance.json")
    wall = next(r["measured"] for r in saved["rows"] if r["what"].startswith("stage estimator_variance"))
    terms = ", ".join(map(str, ev["terms"]))
    return [*table("ev-params", [ev | {"terms": terms}]), "", *table("ev-headline", [saved | {"wall": wall}])]


def image_floor(root: Path) -> list[str]:
    d = load(root, "metrics/details/images.json")
    return table("image-floor", [d | {"n_real": d["n_train"] + d["n_heldout"], "n_floor": len(d["fd_floor"]["draws"])}])


def recipes(root: Path, path: str) -> list[str]:
    """One file of benchmarks/bench_recipes.py: its floor and training draws, each candidate over its replicates, and
    whether its exact W1 ratio (the declared primary) differs from the baseline's (Holm over the file's candidates)."""
    t, fl = pd.read_csv(root / path), pd.read_csv((root / path).with_suffix(".data.csv")).iloc[0].to_dict()
    st, body = stats(t.columns), []
    by = {n: dict(zip(g["replicate"].astype(int), g["w1_ratio"].astype(float))) for n, g in t.groupby("candidate")}
    tests = {n: difference(by[n], by.get("baseline", {})) for n in by if n != "baseline"}
    tests = {n: x for n, x in tests.items() if x is not None and x.p is not None}
    reject, adj = holm([x.p for x in tests.values()]) if tests else ([], [])
    shown = {n: f"{x.diff:+.2f}, {x.n} {'pairs' if x.method == 'paired' else 'runs, Welch'}, Holm p {a:.2g}"
             for (n, x), r, a in zip(tests.items(), reject, adj) if r}  # fmt: skip
    for n, g in t.groupby("candidate", sort=False):
        over = ", ".join(f"{k}={v}" for k, v in json.loads(g["overrides"].iloc[0]).items()) or "-"
        c = {"name": n, "reps": len(g), "over": over, "s": g["train_seconds"].mean(), "meets": g["meets"].sum()}
        for col, fmt in [("bound_gap", ".4f"), ("mode_err", ".4f"), *((f"{s.name}_ratio", ".2f") for s in st)]:
            v = g[col].to_numpy(dtype=float)
            se = f" +- {v.std(ddof=1) / np.sqrt(v.size):{fmt}}" + (f" ({v.max():{fmt}})" if col != "bound_gap" else "")
            c[col] = f"{v.mean():{fmt}}" + (se if v.size > 1 else "")
        body.append(c | {"shown": "-" if n == "baseline" else shown.get(n, "")})
    ctx = {"primary": STATISTICS["w1"].label, "tests": len(tests)}
    return [*table("recipes-data", [fl], stats(fl, "{}_floor_median")), "", *table("recipes", body, st, **ctx)]


def recipes_sampled(root: Path) -> list[str]:
    t = pd.read_csv(root / RES / "recipes_1m_sampled.csv")
    ok = t["sampled_inside"].astype(str).eq("True")
    body = [r | {"yes": "yes" if y else "no"} for r, y in zip(t.to_dict("records"), ok)]
    ctx = {"names": ", ".join(sorted(set(t["candidate"]))), "ins": ok.sum(), "n": len(t)}
    return table("recipes-sampled", body, stats(t.columns, "sampled_{}_ratio"), **ctx)


def hybrid_tables(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """benchmarks/results/hybrid_oracle.csv split by hybrid (each indexed by t0), and its first row."""
    t = pd.read_csv(root / RES / "hybrid_oracle.csv")
    low, high = (t[t["hybrid"] == h].set_index("t0") for h in HYBRIDS)
    return t, low, high, t.iloc[0].to_dict()


def by_t0(low: pd.DataFrame, high: pd.DataFrame, cell) -> list[dict]:
    """One row per switch point: the model at t <= t0, then at t > t0."""
    return [{"t0": t0, "low": cell(low.loc[t0]), "high": cell(high.loc[t0])} for t0 in low.index]


def hybrid(root: Path) -> list[str]:
    """docs/samplers.md: the hybrid-oracle diagnostic's drawn statistics (benchmarks/bench_hybrid.py), * above
    the floor's p95, and the floor's p95 as the last row."""
    _, low, high, r = hybrid_tables(root)
    fmt = {"w1_ratio": ".2f", "ks_ratio": ".2f", "mode_err": ".4f"}

    def drawn(x) -> str:
        return " | ".join(f"{x[k]:{f}}" + ("" if x[k.split("_")[0] + "_inside"] else "*") for k, f in fmt.items())

    floor = {"t0": "floor p95", "low": f"{r['w1_p95']:.2f} | {r['ks_p95']:.2f} | {r['mode_p95']:.4f}"}
    return table("hybrid", [*by_t0(low, high, drawn), floor | {"high": floor["low"]}], n_pooled=r["n_pooled"])


def hybrid_exact(root: Path) -> list[str]:
    """docs/samplers.md: the same hybrids' output distributions propagated exactly, with the grid's largest error."""
    t, low, high, _ = hybrid_tables(root)
    if "exact_w1_ratio" not in t.columns:
        return ["(not in benchmarks/results/hybrid_oracle.csv: rerun benchmarks/bench_hybrid.py)"]
    keys = (("kl", ".2e"), ("w1_ratio", ".2f"), ("ks_ratio", ".2f"), ("mode_err", ".4f"))
    err = t[["exact_w1_ratio_err", "exact_ks_ratio_err"]].to_numpy().max()
    rows = by_t0(low, high, lambda x: " | ".join(f"{x[f'exact_{k}']:{f}}" for k, f in keys))
    return table("hybrid-exact", rows, err=err)


def gap_shares_table(root: Path) -> list[str]:
    """docs/samplers.md: each range of t's share of the Eq. 12 model's exact bound gap."""
    _, low, _, _ = hybrid_tables(root)
    shares = gap_shares(pd.read_csv(root / "metrics/details/eps_error_eq12.csv"), low.index).to_dict("records")
    return table("gap-shares", shares)


def sampler_orders(root: Path) -> list[str]:
    """docs/samplers.md: each deterministic sampler's order against the exact map (benchmarks/bench_sampler_orders.py);
    the non-ODE one among them (DDIM) runs at eta 0."""
    b = load(root, f"{RES}sampler_orders.json")
    steps = sorted(map(int, b["table"][0]["errors"]))
    shown = [*steps[:-1:2], steps[-1]]
    for r in b["table"]:
        r["name"] = r["sampler"] + ("" if REGISTRY[r["sampler"]].ode else " (eta 0)")
        r["err"] = " / ".join(re.sub(r"e([-+])0", r"e\1", f"{r['errors'][str(s)]:.1e}") for s in shown)
        r["measured"] = ", ".join(f"{o:.2f}" for o in r["measured_orders"])
    ctx = {"steps": " / ".join(map(str, shown)), "doubled": ", ".join(map(str, steps[:-1]))}
    return table("orders", b["table"], **ctx)


class Block(NamedTuple):
    """The text between `<!-- name -->` and `<!-- /name -->` in `path` (relative to the root), written by `write`."""

    path: str
    name: str
    write: Callable[[Path], list[str]]
    begin = property(lambda self: f"<!-- {self.name} -->")
    end = property(lambda self: f"<!-- /{self.name} -->")

    def body(self, text: str) -> slice:
        """Where the block's body lies in text: after its begin marker, up to its end marker."""
        if text.count(self.begin) != 1 or text.count(self.end) != 1 or text.index(self.begin) > text.index(self.end):
            raise SystemExit(f"{self.path}: expected one {self.begin} ... {self.end} pair of markers")
        return slice(text.index(self.begin) + len(self.begin), text.index(self.end))


TABLE2 = {"gmm": {"bound_gap": ".4f", "exact_kl": ".2e", "w1_ratio": ".2f", "ks_ratio": ".2f", "nfe": ".0f"},
          "images": {"bpd": ".3f", "fd_ratio": ".2f", "kid": ".2f"}}  # fmt: skip


def table2(root: Path, branch: str) -> list[str]:
    """Ho et al.'s Table 2 over replicates (benchmarks/bench_table2.py): each row's mean and interval per column,
    marked where the compare tool's Holm-corrected test finds it differs from the first row."""
    if not (root / RES / f"table2_{branch}.json").exists():
        run = f"python benchmarks/bench_table2.py --branch {branch} --write {RES}table2_{branch}.json"
        return [f"| not measured yet: `{run}` |", "|---|"]
    b = load(root, f"{RES}table2_{branch}.json")
    cells, records = TABLE2[branch], []
    for name in b["variants"]:
        rec = {"variant": name}
        for metric, fmt in cells.items():
            r = next((v for v in b["verdicts"] if v["variant"] == name and v["metric"] == metric), None)
            runs = sum(run["variant"] == name for run in b["runs"])
            if r is None:
                rec[metric] = f"none of {runs} runs"
                continue
            half = "" if r["half"] is None else f" +- {r['half']:{fmt}}"
            some = f" ({r['n']} of {runs} runs)" if r["n"] < runs else ""
            rec[metric] = f"{r['mean']:{fmt}}{half}{' *' if r['differs'] else ''}{some}"
        records.append(rec)
    tests = sum(bool(v["tested"]) for v in b["verdicts"])
    return table(f"table2-{branch}", records, reps=b["replicates"], tests=tests)


def learned_variance(root: Path) -> list[str]:
    """A learned Sigma against fixed beta_t by training length (benchmarks/bench_learned_variance.py)."""
    if not (root / RES / "learned_variance.json").exists():
        return ["| not measured yet: `python benchmarks/bench_learned_variance.py --jobs 2 --write` |", "|---|"]
    b = load(root, RES + "learned_variance.json")

    def gap(steps: int, variant: str) -> str:
        mean, half = mean_ci([x["bound_gap"] for x in b["runs"] if x["steps"] == steps and x["variant"] == variant])
        return f"{mean:.5f} +- {half:.5f}"

    fixed = next(x["variant"] for x in b["runs"] if x["variant"] not in {r["row"] for r in b["table"]})
    records = [
        r
        | {
            "fixed": gap(r["steps"], fixed),
            "learned": gap(r["steps"], r["row"]),
            "row": r["row"].removeprefix("eps, learned Sigma, "),
            "test": f"{r['diff']:+.5f} [{r['interval'][0]:+.5f}, {r['interval'][1]:+.5f}]{' *' if r['differs'] else ''}",
        }
        for r in b["table"]
    ]
    return table("learned-variance", records, reps=b["replicates"], tests=len(records), cpus=b["cpus"])


def nfe_variance(root: Path) -> list[str]:
    """Respaced DDPM by reverse variance, exact (benchmarks/bench_sampler_nfe.py)."""
    if not (root / RES / "sampler_nfe_variance.csv").exists():
        return ["| not measured yet: `python benchmarks/bench_sampler_nfe.py --write` |", "|---|"]
    d, records = pd.read_csv(root / RES / "sampler_nfe_variance.csv"), []
    for (model, variance), part in d.groupby(["model", "variance"], sort=False):
        inside, w1 = part[part["inside"]], part.set_index("steps")["w1_ratio"]
        first = str(int(inside["steps"].min())) if len(inside) else f"none up to {int(part['steps'].max())}"
        records.append(
            {"model": model, "variance": variance, "first": first} | {f"w{S}": w1[S] for S in (10, 25, 50, 100)}
        )
    ctx = {"p05": d["w1_p05"].iloc[0], "p95": d["w1_p95"].iloc[0], "err": d["grid_err"].max()}
    return table("nfe-variance", records, **ctx)


def _on(fn, *args) -> Callable[[Path], list[str]]:
    return lambda root: fn(root, *args)


BLOCKS = tuple(Block(*b) for b in (
    ("README.md", "results-setup", setup),
    ("README.md", "results-bound", bound),
    ("README.md", "results-sampled", sampled),
    ("README.md", "results-images", images),
    ("README.md", "design-space-headline", design_space),
    ("docs/benchmarks.md", "benchmark-table", benchmark_section),
    ("docs/estimators.md", "estimators-example", estimators_example),
    ("docs/estimators.md", "estimator-variance", estimator_variance),
    ("docs/images.md", "image-floor", image_floor),
    ("docs/images.md", "image-floor-calibration", _on(results_rows, "image-calibration", RES + "image_floor.json")),
    ("docs/images.md", "image-floor-reference", _on(results_rows, "image-reference", RES + "image_floor_reference.json")),
    ("docs/samplers.md", "sampler-orders", sampler_orders),
    ("docs/variance.md", "variance-bounds", variance),
    ("docs/variance.md", "variance-exact", variance_exact),
    ("docs/variance.md", "variance-model", variance_model),
    ("docs/variance.md", "table2-gmm", _on(table2, "gmm")),
    ("docs/variance.md", "table2-images", _on(table2, "images")),
    ("README.md", "table2-gmm", _on(table2, "gmm")),
    ("docs/variance.md", "learned-variance", learned_variance),
    ("docs/variance.md", "nfe-variance", nfe_variance),
    ("docs/samplers.md", "hybrid-table", hybrid),
    ("docs/samplers.md", "hybrid-exact", hybrid_exact),
    ("docs/samplers.md", "gap-shares", gap_shares_table),
    ("docs/variants.md", "replicates-commands", _on(commands, REP + "eq12_vs_eq14.json")),
    ("docs/variants.md", "replicates-table", _on(replicates, REP + "eq12_vs_eq14.json")),
    ("docs/variants.md", "candidates-commands", _on(commands, REP + "eq12_candidates.json")),
    ("docs/variants.md", "candidates-headline", candidates),
    ("docs/variants.md", "candidates-time", _on(results_rows, "train-time", RES + "train_time.json")),
    ("docs/variants.md", "candidates-table", _on(replicates, REP + "eq12_candidates.json")),
    *(("docs/variants.md", f"recipes-{s}", _on(recipes, f"{RES}recipes{f}.csv")) for s, f in (("50k", ""), ("1m", "_1m"), ("two", "_two"), ("four", "_four"))),
    ("docs/variants.md", "recipes-sampled", recipes_sampled),
    ("docs/design_space.md", "design-space-commands", _on(commands, REP + "design_space.json")),
    ("docs/design_space.md", "design-space-headline", design_space),
    ("docs/design_space.md", "design-space-time", _on(results_rows, "train-time", RES + "train_time_design_space.json")),
    ("docs/design_space.md", "design-space-table", _on(replicates, REP + "design_space.json")),
    ("docs/design_space.md", "design-space-where", where_in_t),
))  # fmt: skip


def render_all(root: Path = ROOT) -> dict[str, str]:
    """{file: its text with every generated block rewritten}, for every file that holds a block."""
    out: dict[str, str] = {}
    for b in BLOCKS:
        text = out.get(b.path) or (root / b.path).read_text()
        at = b.body(text)
        out[b.path] = text[: at.start] + "\n" + "".join(line + "\n" for line in b.write(root)) + text[at.stop :]
    return out


def differing(old: dict[str, str], new: dict[str, str]) -> list[Block]:
    """The blocks whose text in old ({file: text}) differs from new (render_all)."""
    return [b for b in BLOCKS if old[b.path][b.body(old[b.path])] != new[b.path][b.body(new[b.path])]]


def stale_blocks(root: Path = ROOT) -> list[Block]:
    """The blocks whose text differs from what this script writes."""
    new = render_all(root)
    return differing({path: (root / path).read_text() for path in new}, new)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if any generated block is not what this script writes")
    ap.add_argument("--root", type=Path, default=ROOT)
    args = ap.parse_args(argv)
    for b in (stale := stale_blocks(args.root) if args.check else []):
        print(f"{b.path}: the generated block {b.begin} is stale: run `python scripts/readme_results.py`", file=sys.stderr)  # fmt: skip
    if stale:
        raise SystemExit(1)
    for path, text in [] if args.check else render_all(args.root).items():
        if (args.root / path).read_text() != text:
            (args.root / path).write_text(text)


if __name__ == "__main__":
    main()
