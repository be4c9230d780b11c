"""The app's view layer: one small module per page, called by `pages/`.

Each module turns store records into what a page shows (labels, frames, charts, bytes) and
runs the page's actions, returning plain values or raising `InputError`; none calls `st.`,
so every behaviour can be tested without a browser and pages stay layout only. Labels come
from `nfx.labels`, the one place that names jobs and results.
"""
