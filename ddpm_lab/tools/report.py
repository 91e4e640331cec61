"""Pages that render offline: the `dvc plots` HTML template and the study's one-file report.

Both inline the JavaScript of Vega, Vega-Lite and Vega-Embed from `vl_convert.javascript_bundle()`
(pip package vl-convert-python), so a browser with no network renders their charts.

- `offline_template()`: a page for DVC's `plots.html_template` (.dvc/config): it holds `{plot_divs}`
  and the inlined bundle, and no `{scripts}` (DVC's CDN <script src=https://...> tags).
  Written by scripts/setup.sh: `python -m ddpm_lab.tools.report --write-template .dvc/plots/offline.html`.
- `build_report(...)`: reports/index.html of the `report` stage: figures as data URIs, headline
  metrics with their intervals, the params, interactive loss curves and provenance.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

PACKAGES = ("torch", "dvc", "numpy", "scipy", "matplotlib", "pandas", "vl-convert-python")
MAX_IMAGE_WIDTH = 1000  # px: wider figures are downscaled in the report (keeps the file < 3 MB)

# The figures of the report: (file under images/, caption).
FIGURES = [
    ("gmm_dist.png", "Target mixture p(x_0) and its training draws"),
    ("diffusion_process.png", "Forward process q(x_t | x_0)"),
    ("reverse_sampling_eq12.png", "Reverse trajectories, Eq. 12 model"),
    ("reverse_sampling_eq3.png", "Reverse trajectories, Eq. 3 model"),
    ("dist_comp_eq12.png", "Samples vs the mixture, Eq. 12 model"),
    ("dist_comp_eq3.png", "Samples vs the mixture, Eq. 3 model"),
    ("eq12_loss_curve.png", "Loss history, Eq. 12"),
    ("eq3_loss_curve.png", "Loss history, Eq. 3"),
    ("loss_curves_bound.png", "Eq. 12 and Eq. 3 on one axis: nats of the bound against network evaluations"),
    ("eps_error_by_t.png", "Excess noise-prediction error by timestep"),
    ("generated_images.png", "Image branch: generated 8x8 digits"),
]
GMM_MODELS = ("eq12", "eq3", "oracle")
# The loss histories of the report: (file under metrics/, title).
LOSSES = [
    ("loss_eq12.csv", "Eq. 12 (noise loss)"),
    ("loss_eq3.csv", "Eq. 3 (variational bound)"),
    ("images_loss.csv", "Image branch (L_simple)"),
]
SMOOTH_ROWS = 25  # rows of the moving average drawn over the raw loss


def javascript_bundle() -> str:
    """Vega + Vega-Lite + Vega-Embed as one script (window.vegaEmbed); offline."""
    import vl_convert

    js = vl_convert.javascript_bundle()
    if "</script" in js.lower():  # would end the inline <script> early
        js = js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
    return js


def offline_template(bundle: str | None = None) -> str:
    """DVC's plots HTML template with the bundle inlined: `{plot_divs}` is filled by DVC and
    `{scripts}` (DVC's CDN script tags) is left out, so `dvc plots show` needs no network."""
    bundle = javascript_bundle() if bundle is None else bundle
    for placeholder in ("{plot_divs}", "{scripts}", "{refresh_tag}"):
        if placeholder in bundle:  # DVC substitutes these anywhere in the page
            raise ValueError(f"the JavaScript bundle contains {placeholder}")
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n{refresh_tag}\n<title>DVC plots (offline)</title>\n'
        f'<script type="text/javascript">\n{bundle}\n</script>\n'
        "<style>body { font-family: sans-serif; } table { border-spacing: 15px; }</style>\n"
        "</head>\n<body>\n{plot_divs}\n</body>\n</html>\n"
    )


def write_template(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(offline_template(), encoding="utf-8")
    return path


def image_data_uri(path: str | Path, max_width: int = MAX_IMAGE_WIDTH) -> str:
    """A PNG as a data: URI, downscaled to at most max_width pixels wide, in a 256-colour palette."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.width > max_width:
            im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
        im = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)  # ~3x smaller; figures have few colours
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def loss_spec(rows: list[dict], title: str, smooth: int = SMOOTH_ROWS) -> dict:
    """Vega-Lite: the raw loss (faint) and its centred moving average over `smooth` rows, on a
    symmetric-log y axis (log-like for the positive losses, yet defined for a negative bound)."""
    half = max(smooth // 2, 0)
    y = {"field": "loss", "type": "quantitative", "title": "loss (symlog)", "scale": {"type": "symlog", "zero": False}}
    return {
        "title": title,
        "width": 420,
        "height": 220,
        "data": {"values": rows},
        "encoding": {"x": {"field": "step", "type": "quantitative", "title": "step"}},
        "layer": [
            {
                "mark": {"type": "line", "opacity": 0.3, "tooltip": True},
                "encoding": {"y": y},
                "params": [{"name": "zoom", "select": "interval", "bind": "scales"}],
            },  # in one layer only
            {
                "transform": [
                    {
                        "window": [{"op": "mean", "field": "loss", "as": "smoothed"}],
                        "frame": [-half, half],
                        "sort": [{"field": "step"}],
                    }
                ],
                "mark": {"type": "line", "strokeWidth": 2},
                "encoding": {"y": {**y, "field": "smoothed"}},
            },
        ],
    }


def _f(x, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    return f"{x:.{digits}g}" if isinstance(x, (int, float)) else html.escape(str(x))


def gmm_statistics(headline: dict[str, dict]) -> list:
    """The registered statistics (ddpm_lab/gmm/distances.py) that the GMM headline holds, in registry order."""
    from ddpm_lab.gmm.distances import STATISTICS

    return [st for name, st in STATISTICS.items() if any(f"{name}_ratio" in h for h in headline.values())]


def gmm_rows(headline: dict[str, dict], details: dict[str, dict]) -> list[list[str]]:
    """One row per GMM sampler: each registered statistic (value, ratio to the floor median,
    floor p95), mode error vs the floor's p95, exact bound gap +- its quadrature error, held-out
    gap +- SE, and the sampler's output distribution propagated exactly (1-D: KL, W1 and KS
    ratios, mode error, each +- its grid error; n/a for D > 1)."""
    rows, stats = [], gmm_statistics(headline)
    for model in GMM_MODELS:
        h, d = headline.get(model), details.get(model)
        if h is None or d is None:
            continue
        bound, paired = d["expected_bound"], d["heldout_paired_estimate"]
        cells = [
            f"{_f(d[st.name]['value'])} (ratio {_f(h[f'{st.name}_ratio'])}, floor p95 {_f(h[f'{st.name}_p95'])})"
            if st.name in d
            else "n/a"
            for st in stats
        ]
        rows.append(
            [
                model,
                *cells,
                f"{_f(h['mode_err'])} (floor p95 {_f(h['mode_p95'])})",
                f"{_f(bound['gap_to_oracle'])} ± {_f(bound['gap_err'], 2)}",
                f"{_f(paired['gap_to_oracle'])} ± {_f(paired['gap_to_oracle_se'], 2)}",
                _exact_cell(d.get("exact_sampled")),
            ]
        )
    return rows


def _exact_cell(exact: dict | None) -> str:
    if not exact:
        return "n/a (1-D only)"
    o = exact["output"]
    return (
        f"KL {_f(o['kl'])} ± {_f(o['kl_err'], 1)} nats; W1 ratio {_f(o['w1_ratio'])}, KS ratio {_f(o['ks_ratio'])};"
        f" mode error {_f(o['mode_err'])} (grid errors ≤ {_f(max(o['w1_ratio_err'], o['ks_ratio_err']), 1)})"
    )


def image_rows(headline: dict, details: dict) -> list[list[str]]:
    """FD (value, ratio to the floor median with the floor's 5-95% band, bootstrap band), KID +- SE,
    the classifier's confidence and, where evaluate_images wrote it, the model's bound in bits/dim."""
    if not headline or not details:
        return []
    fd, floor, kid = details["fd"], details["fd_floor"], details["kid"]
    return [
        [
            "Frechet distance",
            f"{_f(fd['value'])} (ratio {_f(headline['fd_ratio'])}, floor p95 ratio {_f(headline['fd_p95'])})",
            f"floor {_f(floor['median'])} [{_f(floor['p05'])}, {_f(floor['p95'])}]; "
            f"bootstrap [{_f(fd['bootstrap_p05'])}, {_f(fd['bootstrap_p95'])}]",
        ],
        [
            "KID",
            f"{_f(kid['value'])} ± {_f(kid['se'])}",
            f"floor p95 {_f(headline['kid_p95'])}; bootstrap [{_f(kid['bootstrap_p05'])}, {_f(kid['bootstrap_p95'])}]",
        ],
        [
            "classifier confidence",
            _f(headline.get("confidence")),
            f"classes present {_f(headline.get('classes_present'))}",
        ],
    ] + (
        [
            [
                "bound on held-out images (bits/dim)",
                f"{_f(headline['bpd'])} ± {_f(headline['bpd_se'])}",
                f"Eq. 5 with the discretised decoder (Eq. 13), {details['bound']['levels']} levels",
            ]
        ]
        if "bpd" in headline and "bound" in details
        else []
    )


def git_commit(root: str | Path) -> str:
    """`git rev-parse HEAD` in root, or "unknown" (no git, not a repository, no commit)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def lock_hashes(lock_path: str | Path, skip: tuple[str, ...] = ("report",)) -> dict[str, dict[str, str]]:
    """{stage: {output path: md5}} from dvc.lock ({} if there is none); stages in skip left out."""
    try:
        lock = yaml.safe_load(Path(lock_path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    found = {}
    for stage, entry in (lock.get("stages") or {}).items():
        if stage in skip or not isinstance(entry, dict):
            continue
        found[stage] = {
            o["path"]: o.get("md5", "?") for o in entry.get("outs") or [] if isinstance(o, dict) and "path" in o
        }
    return found


def package_versions(names=PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """body { font-family: sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
figure { margin: 1em 0; } figure img { max-width: 100%; } figcaption { color: #555; font-size: 0.9em; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }"""


def build_report(
    *,
    params: dict,
    gmm_headline: dict[str, dict],
    gmm_details: dict[str, dict],
    images_headline: dict,
    images_details: dict,
    losses: dict[str, list[dict]],
    figures: dict[str, str],
    commit: str,
    hashes: dict[str, dict[str, str]],
    versions: dict[str, str],
    bundle: str | None = None,
) -> str:
    """The report as one HTML string. figures: {file name: data URI}; losses: {file name: rows}."""
    bundle = javascript_bundle() if bundle is None else bundle
    parts = [
        "<h1>DDPM study report</h1>",
        f"<p>Commit <code>{html.escape(commit)}</code>. Every resource is inlined: the page renders offline.</p>",
        "<h2>Headline metrics</h2>",
        "<p>GMM branch: ratios are to the median of the exact-sample floor (same n); "
        "a ratio below the floor's p95 is indistinguishable from exact samples.</p>",
        _table(
            [
                "sampler",
                *(st.label for st in gmm_statistics(gmm_headline)),
                "mode error",
                "bound gap (exact) ± err",
                "bound gap (held-out) ± SE",
                "output distribution, exact (no sampling noise)",
            ],
            gmm_rows(gmm_headline, gmm_details),
        ),
    ]
    img = image_rows(images_headline, images_details)
    if img:
        parts += [
            "<p>Image branch (features of a classifier trained on the real split):</p>",
            _table(["metric", "value", "interval"], img),
        ]
    parts.append(
        "<h2>Loss curves</h2><p>Raw loss (faint) and its moving average over "
        f'{SMOOTH_ROWS} logged rows, symmetric-log y axis; drag to pan, scroll to zoom.</p><div class="charts">'
    )
    scripts = []
    for i, (name, title) in enumerate(LOSSES):
        if name not in losses:
            continue
        parts.append(f'<div id="loss{i}" class="chart"></div>')
        spec = json.dumps(loss_spec(losses[name], f"{title}: metrics/{name}")).replace("</", "<\\/")
        scripts.append(f"vegaEmbed('#loss{i}', {spec}, {{actions: false, renderer: 'svg'}});")
    parts.append("</div><h2>Figures</h2>")
    for name, caption in FIGURES:
        if name in figures:
            parts.append(
                f'<figure><img src="{figures[name]}" alt="{html.escape(name)}">'
                f"<figcaption>images/{html.escape(name)}: {html.escape(caption)}</figcaption></figure>"
            )
    parts += [
        "<h2>Params</h2>",
        f"<pre>{html.escape(yaml.safe_dump(params, sort_keys=False))}</pre>",
        "<h2>Provenance</h2>",
        f"<p>git commit: <code>{html.escape(commit)}</code></p>",
        "<p>Package versions:</p>",
        _table(["package", "version"], [[html.escape(k), html.escape(v)] for k, v in versions.items()]),
        "<p>Outputs of the upstream stages (dvc.lock md5):</p>",
        _table(
            ["stage", "output", "md5"],
            [
                [html.escape(s), html.escape(p), f"<code>{html.escape(m)}</code>"]
                for s, outs in hashes.items()
                for p, m in outs.items()
            ],
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>DDPM study report</title>\n'
        f'<style>{STYLE}</style>\n<script type="text/javascript">\n{bundle}\n</script>\n</head>\n<body>\n'
        + "\n".join(parts)
        + '\n<script type="text/javascript">\n'
        + "\n".join(scripts)
        + "\n</script>\n</body>\n</html>\n"
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Write the offline HTML template of `dvc plots` (scripts/setup.sh).")
    ap.add_argument(
        "--write-template", metavar="PATH", required=True, help="where to write the page (e.g. .dvc/plots/offline.html)"
    )
    args = ap.parse_args(argv)
    print(f"wrote {write_template(args.write_template)}")


if __name__ == "__main__":
    main()
