"""The GMM study's model names, one definition (ddpm_lab.gmm.names): every stage, figure and file
name follows it, and the copies that cannot import it (the report tool reads the files) agree."""

from __future__ import annotations

from ddpm_lab.gmm import figures, names, tradeoff
from ddpm_lab.gmm.gradient_noise import POINT_STYLE, POINTS
from ddpm_lab.tools import report


def test_one_definition_of_the_model_names():
    assert names.MODELS == ("eq12", "eq3") and names.ALL_MODELS == ("eq12", "eq3", "oracle")
    assert set(names.LABELS) == set(names.COLORS) == set(names.ALL_MODELS)
    assert figures.NAMES is names.LABELS and figures.COLORS is names.COLORS
    assert set(tradeoff.MODELS) <= set(names.ALL_MODELS)
    assert set(POINTS) - {"init"} == set(names.MODELS)
    assert all(POINT_STYLE[m][0] == names.COLORS[m] for m in names.MODELS)  # a model's colour in every figure
    assert tuple(report.GMM_MODELS) == names.ALL_MODELS  # the report tool's own copy, kept equal
