"""A `History` as HTML for a notebook: what was recorded, and a small gradient-flow figure.

The figure is drawn on a pyplot-free matplotlib Figure (imported here only when a History is
displayed) and inlined as a base64 PNG, so the output needs nothing outside itself. Every
name (layers are the user's module names) is escaped.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from gradsight.telemetry.history import History

# Layer names listed in full up to this many; more are cut with their count.
MAX_LAYERS = 20
# Lines drawn with a legend up to this many layers; beyond, the colours say input -> output.
LEGEND_LAYERS = 8
FIGURE_SIZE = (6.0, 2.6)  # inches
DPI = 80
BOX = (
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;color:#1d2430;"
    "border:1px solid #d5d9e0;border-radius:6px;padding:10px 14px;background:#fff;"
    "max-width:820px"
)
CELL = "text-align:left;padding:2px 14px 2px 0;vertical-align:top"
CODE = "font-family:ui-monospace,Menlo,Consolas,monospace;background:#eef0f4;padding:0 3px"


def history_html(history: History) -> str:
    """The History as an HTML block: rows, steps, layers, one table row per statistic
    (layers, logged steps, last value of global statistics) and the gradient-flow figure."""
    frame = history.frame()
    if frame.empty:
        return f'<div style="{BOX}"><strong>History</strong>: no rows yet.</div>'
    steps = frame["step"]
    layers = [layer for layer in dict.fromkeys(frame["layer"]) if layer != ""]
    parts = [
        f'<div style="{BOX}"><strong>History</strong>: {len(frame):,} rows, steps '
        f"{steps.min()}–{steps.max()} ({steps.nunique():,} logged), {len(layers)} layers",
        _layers_line(layers),
        _statistics_table(frame),
        _figure_html(history),
        "</div>",
    ]
    return "\n".join(part for part in parts if part)


def _layers_line(layers: list[str]) -> str:
    if not layers:
        return ""
    shown = ", ".join(f'<code style="{CODE}">{escape(name)}</code>' for name in layers[:MAX_LAYERS])
    more = f", … ({len(layers)} in all)" if len(layers) > MAX_LAYERS else ""
    return f'<p style="margin:6px 0">Layers: {shown}{more}</p>'


def _statistics_table(frame: pd.DataFrame) -> str:
    """One row per statistic: its name, its layers ("global" for layer "" only), its logged
    steps, and its last value when it is global."""
    grouped = frame.groupby("name", sort=False)
    layers = grouped["layer"].agg(lambda names: len(set(names) - {""}))
    steps = grouped["step"].nunique()
    last = frame[frame["layer"] == ""].groupby("name", sort=False)["value"].last()
    header = "".join(
        f'<th style="{CELL}">{h}</th>' for h in ("statistic", "layers", "steps", "last")
    )
    rows = [
        f'<tr><td style="{CELL}"><code style="{CODE}">{escape(str(name))}</code></td>'
        f'<td style="{CELL}">{layers[name] or "global"}</td>'
        f'<td style="{CELL}">{steps[name]:,}</td>'
        f'<td style="{CELL}">{f"{last[name]:.4g}" if name in last.index else "—"}</td></tr>'
        for name in layers.index
    ]
    table = "\n".join([f"<tr>{header}</tr>", *rows])
    return f'<table style="border-collapse:collapse;margin:4px 0">\n{table}\n</table>'


def _figure_html(history: History) -> str:
    if "grad/norm" not in history.names():
        return '<p style="margin:6px 0;color:#5b6472">No per-layer gradient norms recorded.</p>'
    from gradsight.drawing import png_data_uri, to_png

    source = png_data_uri(to_png(gradient_flow(history), dpi=DPI))
    return (
        f'<img src="{source}" alt="gradient norm per layer over steps" '
        'style="display:block;margin-top:8px;max-width:100%">'
    )


def gradient_flow(history: History) -> Figure:
    """Per-layer gradient norm ‖∇W‖ over steps on a log axis, input layer dark, output light.

    Lines that fall apart by orders of magnitude from input to output are the signature of
    vanishing (or exploding) gradients (Glorot & Bengio 2010). Zeros and non-finite values are
    marked at a floor (`drawing.log_plot`).
    """
    from gradsight.drawing import layer_colours, log_plot, new_figure, ordered_table

    table = ordered_table(history, "grad/norm")
    fig = new_figure(None, *FIGURE_SIZE)
    ax = fig.subplots()
    for layer, colour in zip(table.columns, layer_colours(len(table.columns)), strict=True):
        values = table[layer].to_numpy(dtype=float)
        label = (layer or "(global)").replace("$", r"\$")  # a "$" would start mathtext
        log_plot(ax, table.index, values, color=colour, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("gradient norm")
    ax.set_title("Gradient flow: ‖∇W‖ per layer (dark: input, light: output)", fontsize="medium")
    ax.grid(alpha=0.3)
    if 0 < len(table.columns) <= LEGEND_LAYERS:
        ax.legend(fontsize="x-small", loc="best")
    return fig
