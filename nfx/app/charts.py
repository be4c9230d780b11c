"""The loss curve of a run, as an Altair chart.

Loss terms differ by orders of magnitude and L-BFGS line searches throw single spikes of
1e12 against 1e6 at the end; so a log axis, one colour per term, the y range set by the values
that are not spikes (a point far above both neighbours is clipped at the top and counted),
and a rule where each finer scale starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import altair as alt
import pandas as pd

TERMS = ("total", "content", "style", "tv", "ghost")  # the engine's terms and their total
COLOURS = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e")  # blue, green, red, purple, orange
SPIKE_FACTOR = 100.0  # a point this far above both its neighbours is a line-search spike


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


def _spikes(long: pd.DataFrame) -> pd.Series:
    """Points far above both neighbours of the same term (an L-BFGS line-search probe)."""
    by_term = long.sort_values("iteration").groupby("term")["loss"]
    before = by_term.shift(1).reindex(long.index)
    after = by_term.shift(-1).reindex(long.index)
    neighbour = pd.concat([before, after], axis=1).max(axis=1)
    return (long["loss"] > SPIKE_FACTOR * neighbour).fillna(False)


def loss_chart(history: Sequence[dict], height: int = 240) -> LossChart:
    long = loss_frame(history)
    if long.empty:
        return LossChart(None, 0, [])
    spikes = _spikes(long)
    top = float(long.loc[~spikes, "loss"].max()) * 2
    bottom = float(long["loss"].min()) / 2
    clipped = int(spikes.sum())
    starts = (long.drop_duplicates("scale").sort_values("iteration")["iteration"].tolist())[1:]
    present = [t for t in TERMS if t in set(long["term"])]
    colour = alt.Color("term:N", title="loss term",
                       scale=alt.Scale(domain=list(TERMS), range=list(COLOURS)),
                       sort=present)
    lines = alt.Chart(long).mark_line(clip=True, strokeWidth=1.6).encode(
        x=alt.X("iteration:Q", title="iteration", axis=alt.Axis(format="d", tickMinStep=1)),
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
