"""The loss curve of a run, as an Altair chart.

Loss terms differ by orders of magnitude and L-BFGS line searches throw single spikes of
1e12 against 1e6 at the end; so a log axis, one colour per term, the y range set by the bulk
of the values (spikes are clipped at the top and counted, not allowed to flatten the rest),
and a rule where each finer scale starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import altair as alt
import pandas as pd

TERMS = ("total", "content", "style", "tv")
COLOURS = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd")  # blue, green, red, purple
SPIKE_MARGIN = 10.0  # the axis reaches this factor above the 95th percentile of every term


@dataclass(frozen=True)
class LossChart:
    chart: alt.LayerChart | None
    clipped: int  # points above the axis (line-search spikes)
    scale_starts: list[int]  # iterations where a finer scale begins


def loss_frame(history: Sequence[dict]) -> pd.DataFrame:
    """Long format: iteration, scale, term, loss (positive values only: log axis)."""
    frame = pd.DataFrame(list(history or []))
    if frame.empty or "iteration" not in frame:
        return pd.DataFrame(columns=["iteration", "scale", "term", "loss"])
    if "scale" not in frame:
        frame["scale"] = 0
    terms = [t for t in TERMS if t in frame]
    frame = frame.groupby("iteration", as_index=False)[["scale", *terms]].last()
    long = frame.melt(id_vars=["iteration", "scale"], value_vars=terms, var_name="term",
                      value_name="loss")
    return long[long["loss"] > 0].reset_index(drop=True)


def loss_chart(history: Sequence[dict], height: int = 240) -> LossChart:
    long = loss_frame(history)
    if long.empty:
        return LossChart(None, 0, [])
    top = float(long.groupby("term")["loss"].quantile(0.95).max()) * SPIKE_MARGIN
    bottom = float(long["loss"].min()) / 2
    clipped = int((long["loss"] > top).sum())
    starts = (long.drop_duplicates("scale").sort_values("iteration")["iteration"].tolist())[1:]
    present = [t for t in TERMS if t in set(long["term"])]
    colour = alt.Color("term:N", title="loss term",
                       scale=alt.Scale(domain=list(TERMS), range=list(COLOURS)),
                       sort=present)
    lines = alt.Chart(long).mark_line(clip=True, strokeWidth=1.6).encode(
        x=alt.X("iteration:Q", title="iteration"),
        y=alt.Y("loss:Q", title="loss (log scale)",
                scale=alt.Scale(type="log", domain=[bottom, top], clamp=True)),
        color=colour,
        tooltip=["iteration:Q", "scale:Q", "term:N", alt.Tooltip("loss:Q", format=".3g")])
    layers = [lines]
    if starts:
        rules = alt.Chart(pd.DataFrame({"iteration": starts, "label": [
            f"scale {i + 2}" for i in range(len(starts))]})).mark_rule(
            strokeDash=[4, 4], color="#888").encode(x="iteration:Q", tooltip=["label:N"])
        layers.append(rules)
    return LossChart(alt.layer(*layers).properties(height=height), clipped, starts)
