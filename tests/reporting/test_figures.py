import subprocess
import sys

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from qml_imaging.reporting import figures

# every module that draws: importing them must leave a notebook's backend alone
DRAWING_MODULES = [
    "qml_imaging", "qml_imaging.cli", "qml_imaging.cli_g2", "qml_imaging.reporting.figures",
    "qml_imaging.pipelines.diffusion.figures", "qml_imaging.pipelines.qcrb.figures",
    "qml_imaging.pipelines.qcrb.parametric", "qml_imaging.pipelines.qcrb.natural",
    "qml_imaging.pipelines.inr.image", "qml_imaging.pipelines.inr.image_figures", "qml_imaging.pipelines.inr.signal",
    "qml_imaging.pipelines.g2.scan",
    "qml_imaging.pipelines.g2.regression", "qml_imaging.pipelines.g2.measured",
    "qml_imaging.pipelines.generation.pipeline",
]


def test_importing_the_package_leaves_the_matplotlib_backend_unchanged():
    script = (
        "import importlib, matplotlib\n"
        "matplotlib.use('svg')\n"
        f"for name in {DRAWING_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(matplotlib.get_backend())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["svg"]


def test_builders_return_figures_that_save_as_png(tmp_path):
    built = [
        figures.image_grid([[np.zeros((4, 4)), np.ones((4, 4))], [np.eye(4)]], column_titles=["a", "b"],
                           row_titles=["r0", "r1"], value_range=(0.0, 1.0)),
        figures.curves({"loss": ([1, 2, 3], [1.0, 0.5, 0.25])}, xlabel="epoch", ylabel="MSE"),
        figures.scatter({"fit": ([0.1, 0.2], [0.1, 0.25])}, xlabel="true", ylabel="estimated"),
        figures.grouped_bars({"camera": {"QIREN": 0.8, "SIREN": 1.0}}, ylabel="ratio"),
    ]
    for index, figure in enumerate(built):
        assert isinstance(figure, Figure)
        path = figures.save_figure(figure, tmp_path / f"figure{index}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"figure{i}.png" for i in range(4)]
    grid_axes = built[0].axes
    assert len(grid_axes) == 4 and not grid_axes[3].axison


def _inside(inner, outer, slack: float = 1.0) -> bool:
    return (inner.x0 >= outer.x0 - slack and inner.y0 >= outer.y0 - slack
            and inner.x1 <= outer.x1 + slack and inner.y1 <= outer.y1 + slack)


def test_bar_title_and_legend_fit_and_the_legend_covers_no_bar():
    """The relative-error figure once cut its title and laid its legend over a bar."""
    figure = figures.grouped_bars({"camera": {m: 0.1 + i / 4 for i, m in enumerate(["qiren", "relu", "tanh", "rff",
                                                                                     "siren"])}},
                                  ylabel="MSE / MSE of tanh", title="Reconstruction MSE relative to tanh (seed 0)")
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    axis = figure.axes[0]
    page = figure.bbox
    legend = axis.get_legend().get_window_extent(renderer)
    assert _inside(axis.title.get_window_extent(renderer), page) and _inside(legend, page)
    assert all(not legend.overlaps(bar.get_window_extent(renderer)) for bar in axis.patches)
    assert [text.get_text() for text in axis.texts][:2] == ["0.1", "0.35"]  # each bar carries its value


def test_maps_get_colour_bars_and_panels_their_own_titles():
    figure = figures.image_grid([[np.random.default_rng(0).random((6, 6)), np.eye(6)]], colorbars=True,
                                cmap="viridis", panel_titles=[["g2(0), L-M", "G2 image"]])
    images = [axis for axis in figure.axes if axis.images]
    assert len(figure.axes) == 4 and len(images) == 2  # two maps, two colour bars
    assert [axis.get_title() for axis in images] == ["g2(0), L-M", "G2 image"]
    assert images[0].images[0].get_cmap().name == "viridis"


def test_loss_curves_mark_each_models_last_and_lowest_epoch():
    figure = figures.curves({"siren": ([1, 2, 3], [0.5, 0.1, 0.4])}, xlabel="epoch", ylabel="MSE",
                            mark_last_and_lowest=True)
    lines = {(tuple(line.get_xdata()), tuple(line.get_ydata()), line.get_marker()) for line in figure.axes[0].lines}
    assert ((3,), (0.4,), "o") in lines and ((2,), (0.1,), "v") in lines
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["siren", "last epoch", "lowest"]
