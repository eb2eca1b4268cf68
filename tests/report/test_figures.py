import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from gradsight.report import figures
from gradsight.telemetry import History

# (function, run fixture, expected axis titles, x label of the first axes, y label of the first)
CASES = [
    ("loss", figures.loss_figure, "mlp_run", ["Loss", "Test metrics"], "step", "loss"),
    (
        "heatmap",
        figures.gradient_flow_heatmap,
        "mlp_run",
        ["Gradient flow: log10 ‖∇W‖ per layer", ""],  # then the colour bar
        "step",
        "layer (input → output)",
    ),
    (
        "bars",
        figures.gradient_flow_bars,
        "mlp_run",
        ["Gradient norm per layer, first and last logged step"],
        "layer (input → output)",
        "gradient norm",
    ),
    (
        "activations",
        figures.activation_stats_figure,
        "mlp_run",
        [
            "act/mean: mean",
            "act/std: standard deviation",
            "act/saturated: saturated fraction (sigmoid/tanh)",
            "",  # the fourth panel (dead units) has no metric in a sigmoid net: hidden
        ],
        "step",
        "",
    ),
    ("histograms", figures.activation_histograms_figure, "mlp_run", None, "step", None),
    (
        "update-ratio",
        figures.update_ratio_figure,
        "mlp_run",
        ["Update / weight ratio per layer"],
        "step",
        "‖ΔW‖ / ‖W‖",
    ),
    (
        "temporal",
        figures.temporal_gradient_flow,
        "rnn_run",
        ["Gradient flow through time"],
        "time step t",
        "‖∂L/∂h_t‖",
    ),
    (
        "curvature",
        figures.curvature_figure,
        "synthetic",
        ["Hessian extreme eigenvalues"],
        "step",
        "eigenvalue",
    ),
    (
        "dead-units",
        figures.activation_stats_figure,
        "synthetic",
        ["act/dead: dead-unit fraction (ReLU family)"],
        "step",
        "",
    ),
]


def history_of(request, fixture):
    value = request.getfixturevalue(fixture)
    return value if isinstance(value, History) else History.load(value)


@pytest.mark.parametrize(
    ("draw", "fixture", "titles", "xlabel", "ylabel"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_figure_on_a_real_run(request, draw, fixture, titles, xlabel, ylabel):
    fig = draw(history_of(request, fixture))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    if titles is not None:
        assert [a.get_title() for a in fig.axes[: len(titles)]] == titles
    assert ax.get_xlabel() == xlabel
    if ylabel is not None:
        assert ax.get_ylabel() == ylabel
    assert ax.has_data()
    assert plt.get_fignums() == []  # nothing left in pyplot's global state


def test_heatmap_rows_are_layers_input_first(mlp_run):
    history = History.load(mlp_run)
    ax = figures.gradient_flow_heatmap(history).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == history.layers("grad/norm") == [f"fc{i}" for i in range(1, 7)]
    assert ax.yaxis_inverted()  # the input layer on top


def test_histograms_have_one_image_per_layer(mlp_run):
    history = History.load(mlp_run)
    fig = figures.activation_histograms_figure(history)
    layers = history.layers("act/hist/00")
    titled = [a.get_title() for a in fig.axes if a.get_visible() and a.get_title()]
    assert titled == layers
    assert fig.get_suptitle() == "Activation histograms over time"


def test_log_scales(mlp_run, rnn_run):
    mlp, rnn = History.load(mlp_run), History.load(rnn_run)
    assert figures.gradient_flow_bars(mlp).axes[0].get_yscale() == "log"
    ratio = figures.update_ratio_figure(mlp).axes[0]
    assert ratio.get_yscale() == "log"
    assert any(
        line.get_linestyle() == "--" and line.get_ydata()[0] == 1e-3 for line in ratio.get_lines()
    )
    temporal = figures.temporal_gradient_flow(rnn).axes[0]
    assert temporal.get_yscale() == "log"
    lines = temporal.get_lines()
    assert [line.get_label() for line in lines] == ["step 0", "step 15"]
    assert list(lines[0].get_xdata()) == list(range(10))  # t = 0..9, from hidden_tap[t]


def test_loss_axis_is_log_when_the_loss_spans_orders(synthetic, loss_only):
    assert figures.loss_figure(synthetic).axes[0].get_yscale() == "log"
    assert figures.loss_figure(loss_only).axes[0].get_yscale() == "linear"  # flat at 1.0


ALL = [
    figures.loss_figure,
    figures.gradient_flow_heatmap,
    figures.gradient_flow_bars,
    figures.activation_stats_figure,
    figures.activation_histograms_figure,
    figures.update_ratio_figure,
    figures.temporal_gradient_flow,
    figures.curvature_figure,
]


@pytest.mark.parametrize("draw", ALL[1:], ids=lambda f: f.__name__)
def test_none_when_the_metrics_are_absent(loss_only, draw):
    assert draw(loss_only) is None


def test_loss_figure_none_without_loss():
    history = History()
    history.log(0, "grad/norm", 1.0, "fc1")
    assert figures.loss_figure(history) is None


def test_temporal_figure_none_for_a_feed_forward_net(mlp_run):
    assert figures.temporal_gradient_flow(History.load(mlp_run)) is None


def test_draws_into_a_given_figure(synthetic):
    fig = Figure()
    assert figures.curvature_figure(synthetic, fig) is fig
    assert fig.axes[0].get_title() == "Hessian extreme eigenvalues"


def test_save_figures_writes_pngs(mlp_run, tmp_path):
    paths = figures.save_figures(History.load(mlp_run), tmp_path / "figures")
    assert [p.name for p in paths] == [
        "loss.png",
        "gradient_flow_heatmap.png",
        "gradient_flow_bars.png",
        "activations.png",
        "activation_histograms.png",
        "update_ratio.png",
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
