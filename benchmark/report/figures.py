"""The report's figures, drawn on matplotlib `Figure` objects (no pyplot state).

A figure made with `Figure()` belongs to no global registry, so it is freed
as soon as it goes out of scope: drawing hundreds of pages does not grow
memory. Each figure is written as SVG (also embedded in the page, text kept
as text), and as PDF (for papers) when asked.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never open a window, whatever the environment says

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

STYLE = {
    "svg.fonttype": "none",  # text stays text in the SVG: small, sharp, searchable
    # Type 3 fonts (matplotlib's default): embedding TrueType (42) subsets the
    # font on every save and tripled the time to write a PDF.
    "pdf.fonttype": 3,
    "axes.formatter.use_mathtext": False,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
TRUE_COLOUR = "#222222"
DOMAIN_SHADE = "#d9d9d9"


def power_label(value: float, _position: object = None) -> str:
    """Tick labels such as 10⁻⁵ in plain Unicode.

    matplotlib's default writes them as mathtext, whose parser took about
    half the time of drawing a figure; Unicode superscripts look the same.
    """
    if value == 0:
        return "0"
    exponent = np.log10(abs(value))
    if np.isclose(exponent, round(exponent)):
        sign = "−" if value < 0 else ""
        return f"{sign}10{str(int(round(exponent))).translate(SUPERSCRIPT)}"
    return f"{value:g}"


def log_axis(ax, which: str, scale: str, **options) -> None:
    """A log or symlog scale on the x or y axis of ax, labelled with `power_label`."""
    getattr(ax, f"set_{which}scale")(scale, **options)
    axis = getattr(ax, f"{which}axis")
    axis.set_major_formatter(FuncFormatter(power_label))
    axis.set_minor_formatter(NullFormatter())


def nothing_to_draw(ax) -> None:
    ax.text(0.5, 0.5, "every seed diverged: nothing to draw", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def palette(models: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per model, fixed for the whole run (colour-blind safe up to 10 models)."""
    colours = sns.color_palette("colorblind", max(len(models), 1))
    return dict(zip(models, colours))


def new_figure(**options) -> Figure:
    """A `Figure` on an Agg canvas of its own, which keeps one renderer for every text it measures.

    A bare `Figure` builds a new renderer, a full-size pixel buffer, for
    every text extent asked of it, and seaborn's heatmap asks once per tick
    label: a heatmap of 100 targets took 3 GB and several seconds that way,
    0.2 GB and a quarter of a second on its own canvas. The drawings are the
    same, but for constrained layout placing a heatmap's axes a fraction of a
    point apart.
    """
    fig = Figure(**options)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, folder: Path, stem: str, pdf: bool = False) -> str:
    """Write fig as STEM.svg, and STEM.pdf with `pdf`; return the SVG markup to embed."""
    folder.mkdir(parents=True, exist_ok=True)
    svg = _svg(fig)
    if pdf:  # drawing it again costs about as much as the SVG: only on request
        with matplotlib.rc_context(STYLE):
            # The layout is settled by the first drawing; the second keeps it instead of solving it again.
            fig.set_layout_engine("none")
            fig.savefig(folder / f"{stem}.pdf", metadata={"CreationDate": None})
    (folder / f"{stem}.svg").write_text(svg, encoding="utf-8")
    return svg[svg.index("<svg") :]  # drop the XML prolog: the markup sits inside HTML


def svg_markup(fig: Figure) -> str:
    """fig as SVG markup to place inside HTML (a notebook's output, say), written nowhere."""
    svg = _svg(fig)
    return svg[svg.index("<svg") :]


def _svg(fig: Figure) -> str:
    svg = io.StringIO()
    with matplotlib.rc_context(STYLE):
        # No creation date in the files, so a rebuilt report differs only in the SVG
        # clip-path ids, which matplotlib salts at random: several figures sit inline
        # in one page, and fixed ids would collide there.
        fig.savefig(svg, format="svg", metadata={"Date": None})
    return svg.getvalue()


def text_inches(labels: Sequence[str], points: float = 10.0) -> float:
    """About how wide the longest of `labels` is set in DejaVu Sans at `points` (0.6 em a character, generous)."""
    return 0.6 * points / 72 * max((len(str(label)) for label in labels), default=0)


def heatmap(cells: pd.DataFrame, split: str, targets: Sequence[str], models: Sequence[str],
            states: pd.DataFrame) -> Figure:
    """Median nmse of every (target, model), log colour scale, numbers in the cells.

    A pair with no number says why (`states`, from `tables.cell_states`):
    diverged, undefined, failed or not run.
    """
    grid = cells.pivot_table(index="target", columns="model", values=split, aggfunc="first", sort=False)
    grid = grid.reindex(index=list(targets), columns=list(models))
    positive = grid.to_numpy()[np.isfinite(grid.to_numpy()) & (grid.to_numpy() > 0)]
    # Errors below float32's resolution differ only by rounding noise: clamp them.
    low = max(positive.min(), 1e-16) if positive.size else 1e-16
    # Capped, for the colour bar's ticks: a formula that overflows far out errs by up to float64's largest value.
    high = min(max(positive.max(), low * 10), 1e100) if positive.size else 1.0
    labels = grid.map(lambda v: "" if np.isnan(v) else f"{v:.0e}" if v < 1e-2 or v >= 1e3 else f"{v:.2g}")
    with matplotlib.rc_context(STYLE):
        # Sized to its content, so that constrained layout never has to squeeze the cells away: the
        # target labels beside the grid, the model labels (at 30 degrees) below it, a colour bar; and
        # at least 3.2 inches tall, or the colour bar's label no longer fits.
        width = 2.2 + text_inches(targets) + 1.15 * len(models)
        height = max(3.2, 1.4 + 0.42 * len(targets)) + 0.55 * text_inches(models)
        fig = new_figure(figsize=(width, height), layout="constrained")
        ax = fig.subplots()
        with warnings.catch_warnings():
            # seaborn takes nanmin of the grid, which warns where every cell diverged.
            warnings.simplefilter("ignore", RuntimeWarning)
            sns.heatmap(
                # Clipped above too: a formula that overflows far out has an infinite error, which the
                # colour scale cannot hold; its cell still reads "inf".
                grid.clip(lower=low, upper=high), ax=ax, norm=LogNorm(low, high), cmap="viridis", annot=labels, fmt="",
                annot_kws={"fontsize": 8}, linewidths=0.5, linecolor="white",
                cbar_kws={"label": "normalised MSE, median over seeds"},
            )
        for row, column in zip(*np.nonzero(grid.isna().to_numpy())):  # seaborn leaves NaN cells blank
            state = states.iat[row, column]
            ax.text(column + 0.5, row + 0.5, "undefined" if state == "ok" else state, ha="center", va="center",
                    fontsize=8, color="#b42318" if state in ("diverged", "failed") else "#555555")
        ax.set_title(f"{split.capitalize()} error: normalised MSE, target x model")
        ax.set_xlabel("model")
        ax.set_ylabel("target")
        ax.tick_params(axis="x", labelrotation=30)
        ax.tick_params(axis="y", labelrotation=0)
        ax.grid(False)
        colourbar = ax.collections[0].colorbar.ax.yaxis
        colourbar.set_major_formatter(FuncFormatter(power_label))
        colourbar.set_minor_formatter(NullFormatter())
    return fig


def prediction_figure(target: dict, lines: pd.DataFrame, colours: dict) -> Figure:
    """The true function and each model along the target's diagonal line, and the error against distance."""
    with matplotlib.rc_context(STYLE):
        # Fixed margins rather than constrained layout, which re-measured every
        # label on each save and cost more than drawing the figure.
        fig = new_figure(figsize=(11, 4.4))
        fig.subplots_adjust(left=0.07, right=0.985, bottom=0.13, top=0.91, wspace=0.22)
        curve, error = fig.subplots(1, 2, width_ratios=[1.35, 1])
        if lines.empty:
            for ax in (curve, error):
                nothing_to_draw(ax)
            return fig
        first_model = lines[lines["model"] == lines["model"].iloc[0]]
        truth = first_model.groupby("position", sort=True)["y_true"].first()
        inside = first_model.loc[first_model["distance"] == 0, "position"]
        if len(inside):
            curve.axvspan(inside.min(), inside.max(), color=DOMAIN_SHADE, alpha=0.6, lw=0, label="training domain")
        curve.plot(truth.index, truth.to_numpy(), color=TRUE_COLOUR, lw=1.6, ls="--", label="true function", zorder=5)
        for model, group in lines.groupby("model", sort=False):
            by_position = group.groupby("position", sort=True)["y_pred"]
            colour = colours.get(model)
            curve.plot(by_position.median().index, by_position.median().to_numpy(), color=colour, lw=1.3, label=model,
                       gid=f"prediction {model}")
            curve.fill_between(by_position.min().index, by_position.min(), by_position.max(), color=colour, alpha=0.2, lw=0)
            # Median over seeds and over the points at the same distance (both
            # sides of a symmetric domain), so each model is one line.
            abs_error = (group["y_pred"] - group["y_true"]).abs().groupby(group["distance"].round(9), sort=True).median()
            error.plot(abs_error.index, abs_error.clip(lower=1e-12).to_numpy(), color=colour, lw=1.3, label=model,
                       gid=f"error {model}")
        # Predictions can run off by orders of magnitude; keep the true function's range in view.
        if truth.notna().any():
            span = truth.max() - truth.min() or 1.0
            curve.set_ylim(truth.min() - 0.5 * span, truth.max() + 0.5 * span)
        # Linear across the training domain and the near region, logarithmic
        # beyond, so the fit inside and the behaviour far outside both show.
        half = max(abs(inside.min()), abs(inside.max())) if len(inside) else 1.0
        linear_up_to = 10.0 ** np.ceil(np.log10(2 * half))
        log_axis(curve, "x", "symlog", linthresh=linear_up_to)
        axis = "x" if len(target["inputs"]) == 1 else "position along the diagonal from the domain centre"
        curve.set_xlabel(f"{axis} (linear within ±{linear_up_to:g}, logarithmic beyond)")
        curve.set_ylabel("y")
        curve.set_title(f"{target['label']}: predictions, median and range over seeds")
        curve.legend(loc="best", framealpha=0.9)
        log_axis(error, "x", "symlog", linthresh=linear_up_to)
        log_axis(error, "y", "log")
        error.set_xlabel(f"distance from the training domain (linear within {linear_up_to:g})")
        error.set_ylabel("|prediction - truth| (median over seeds)")
        error.set_title("Absolute error against distance")
        error.legend(loc="best", framealpha=0.9)
    return fig


def learning_figure(target_label: str, curves: pd.DataFrame, colours: dict) -> Figure:
    """Training loss (mean since the previous evaluation) for every model: median over seeds, range as a band."""
    with matplotlib.rc_context(STYLE):
        fig = new_figure(figsize=(6.5, 3.9))
        fig.subplots_adjust(left=0.12, right=0.97, bottom=0.14, top=0.9)
        ax = fig.subplots()
        if curves.empty:
            nothing_to_draw(ax)
            return fig
        for model, group in curves.groupby("model", sort=False):
            # A loss of exactly 0 (the article's linear unit reaches it) has no place on a log axis.
            loss = group["loss"].where(group["loss"] > 0)
            by_step = loss.groupby(group["step"], sort=True)
            colour = colours.get(model)
            ax.plot(by_step.median().index, by_step.median().to_numpy(), color=colour, lw=1.4, label=model,
                    gid=f"loss {model}")
            ax.fill_between(by_step.min().index, by_step.min(), by_step.max(), color=colour, alpha=0.2, lw=0)
        log_axis(ax, "y", "log")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("training loss (MSE)")
        ax.set_title(f"{target_label}: learning curves, median and range over seeds")
        ax.legend(loc="best", framealpha=0.9)
    return fig


def rates_figure(table: pd.DataFrame, group: str, groups: Sequence[str], columns: tuple[str, str, str],
                 models: Sequence[str], colours: dict, title: str, ylabel: str, gid: str, upright: bool) -> Figure:
    """Bars of a rate per group (a target, a criterion) and model, with its interval as error bars.

    `columns` name the rate and its interval's low and high ends in `table`,
    which has one row per (group, model).
    """
    groups = [g for g in groups if g in set(table[group])]
    models = [m for m in models if m in set(table["model"])]
    width = 0.8 / max(len(models), 1)
    rate_column, low_column, high_column = columns
    with matplotlib.rc_context(STYLE):
        # A tenth of an inch or more a bar, the group labels below and the legend
        # beside: wider than the page for a large grid, where it scrolls in its box.
        per_bar = 0.24 if len(groups) * len(models) <= 60 else 0.12
        size = (max(1.0 + text_inches([title], 11), 1.4 + per_bar * len(groups) * len(models) + text_inches(models, 9) + 0.8),
                3.4 + (text_inches(groups) if upright else 0.3))
        fig = new_figure(figsize=size, layout="constrained")
        ax = fig.subplots()
        for k, model in enumerate(models):
            rows = table[table["model"] == model].set_index(group).reindex(groups)
            x = np.arange(len(groups)) + (k - (len(models) - 1) / 2) * width
            rate = rows[rate_column].to_numpy(dtype=float)
            errors = np.vstack([rate - rows[low_column].to_numpy(dtype=float), rows[high_column].to_numpy(dtype=float) - rate])
            errors = np.clip(errors, 0, None)  # matplotlib refuses an error bar of -1e-17
            ax.bar(x, rate, width, color=colours.get(model), label=model, gid=f"{gid} {model}")
            ax.errorbar(x, rate, yerr=errors, fmt="none", ecolor="#333333", elinewidth=0.8, capsize=2)
        # Upright: a slanted label of the first group would run out of the figure's left edge.
        ax.set_xticks(np.arange(len(groups)), groups, rotation=90 if upright else 0)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        # Outside the axes as constrained layout knows it, so that the layout makes room for it.
        fig.legend(loc="outside right upper", framealpha=0.9)
    return fig


def success_figure(summary: pd.DataFrame, targets: Sequence[str], models: Sequence[str], colours: dict) -> Figure:
    """Success rate of every model on every target, with 95% Wilson intervals as error bars."""
    return rates_figure(summary, "target", targets, ("success rate", "success low", "success high"), models, colours,
                        "Seeds below the near-exact solution's extrapolation MSE (95% Wilson intervals)",
                        "success rate over seeds", "success", upright=True)


def solution_figure(rates: pd.DataFrame, models: Sequence[str], colours: dict) -> Figure:
    """Each model's solution rate on each criterion (`tables.solution_rates`: targets solved by most of their
    seeds), with 95% Wilson intervals over the targets."""
    return rates_figure(rates, "criterion", list(dict.fromkeys(rates["criterion"])), ("rate", "low", "high"), models,
                        colours, "Share of targets solved by most of their seeds, by criterion (95% Wilson intervals)",
                        "share of targets solved", "solutions", upright=False)


def success_grid(summary: pd.DataFrame, targets: Sequence[dict], models: Sequence[str]) -> Figure | None:
    """For a target family varied over two parameters (op and range, say): success rate per value pair and model.

    One panel per value of the first parameter; rows are the second
    parameter's values, columns the models. None when no family varies so.
    """
    by_family: dict[str, list[dict]] = {}
    for t in targets:
        if t["label"] in set(summary["target"]):
            by_family.setdefault(t["name"], []).append(t)
    for family in by_family.values():
        varying = [k for k in family[0]["params"] if len({str(t["params"][k]) for t in family}) > 1]
        if len(varying) == 2:
            break
    else:
        return None
    outer, inner = varying
    panels = list(dict.fromkeys(str(t["params"][outer]) for t in family))
    rows = list(dict.fromkeys(str(t["params"][inner]) for t in family))
    models = [m for m in models if m in set(summary["model"])]
    label_of = {(str(t["params"][outer]), str(t["params"][inner])): t["label"] for t in family}
    rate = summary.set_index(["target", "model"])["success rate"]
    with matplotlib.rc_context(STYLE):
        # Model names are written upright below the panels: room for the longest.
        labels_height = 0.08 * max(len(m) for m in models)
        fig = new_figure(figsize=(1.6 + len(panels) * (0.9 + 0.5 * len(models)), 1.2 + 0.32 * len(rows) + labels_height),
                     layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
        for ax, panel in zip(axes, panels):
            grid = pd.DataFrame(
                [[rate.get((label_of.get((panel, r)), m), np.nan) for m in models] for r in rows], index=rows, columns=models
            )
            sns.heatmap(grid, ax=ax, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".1f", cbar=ax is axes[-1],
                        annot_kws={"fontsize": 7}, linewidths=0.5, linecolor="white",
                        cbar_kws={"label": "success rate"})
            ax.set_title(f"{outer} = {panel}")
            ax.set_xlabel("model")
            ax.set_ylabel(inner if ax is axes[0] else "")
            ax.tick_params(axis="x", labelrotation=90)
            ax.tick_params(axis="y", labelrotation=0)
            ax.grid(False)
        fig.suptitle(f"{family[0]['name']}: success rate per {outer} and {inner}")
    return fig
