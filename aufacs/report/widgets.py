"""The ipywidgets heatmap browser of the heatmap notebook.

:class:`HeatmapBrowser` browses heatmaps computed beforehand, so a click redraws a figure and
runs no model. Its ``source`` maps ``(model name, epoch)`` to a
:class:`aufacs.analysis.heatmaps.HeatmapSet` (S samples, N AUs; the sets may differ in S and
in their AUs)::

    source = {("jaa_net", 1): heatmap_set(jaa, batch, aus), ("jaa_net", 2): ...}
    HeatmapBrowser(source)          # last expression of a cell: shows the controls

The controls are a model and an epoch dropdown, a sample slider and an AU dropdown; each
change redraws :func:`aufacs.inference.explain.sample_figure` with a title naming the
selection. Widgets need a live kernel, so the workbook shows
:mod:`aufacs.report.browser` instead, which works in the HTML reports as well. Tests drive
the browser by setting the controls' ``value`` and reading :attr:`HeatmapBrowser.figure`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import ipywidgets as widgets
from IPython.display import Image, clear_output, display
from matplotlib.figure import Figure

from aufacs.analysis.heatmaps import HeatmapSet
from aufacs.core.aus import au_column
from aufacs.core.errors import AufacsError
from aufacs.inference.explain import sample_figure


class HeatmapBrowser:
    """Browse precomputed heatmaps by model, epoch, sample and AU.

    ``source``: ``{(model name, epoch): HeatmapSet}``, at least one entry. Controls:
    ``model``, ``epoch`` (dropdowns), ``sample`` (slider), ``au`` (dropdown whose value is the
    AU's index in the set). ``widget`` is the whole browser; :meth:`redraw` draws the current
    selection and returns the figure, which :attr:`figure` keeps.
    """

    def __init__(self, source: Mapping[tuple[str, int], HeatmapSet]) -> None:
        if not source:
            raise AufacsError("source must hold at least one (model, epoch) -> HeatmapSet entry")
        self.source = dict(source)
        models = sorted({model for model, _ in self.source})
        self.model = widgets.Dropdown(options=models, value=models[0], description="model")
        self.epoch = widgets.Dropdown(description="epoch")
        self.sample = widgets.IntSlider(min=0, max=0, value=0, description="sample")
        self.au = widgets.Dropdown(description="AU")
        self.output = widgets.Output()
        controls = widgets.HBox([self.model, self.epoch, self.sample, self.au])
        self.widget = widgets.VBox([controls, self.output])
        self._figure: Figure | None = None
        self._syncing = False
        self._sync_controls()
        for control in (self.model, self.epoch, self.sample, self.au):
            control.observe(self._on_change, names="value")
        self.redraw()

    @property
    def current(self) -> HeatmapSet:
        """The heatmap set of the selected model and epoch."""
        return self.source[(self.model.value, self.epoch.value)]

    @property
    def figure(self) -> Figure:
        """The figure drawn last."""
        return self._figure

    def _sync_controls(self) -> None:
        """Fit the epoch, sample and AU choices to the selected model and epoch."""
        epochs = sorted(epoch for model, epoch in self.source if model == self.model.value)
        if tuple(self.epoch.options) != tuple(epochs):
            previous = self.epoch.value
            self.epoch.options = epochs
            self.epoch.value = previous if previous in epochs else epochs[0]
        current = self.current
        self.sample.max = current.num_samples - 1
        choices = [(au_column(au), index) for index, au in enumerate(current.aus)]
        if list(self.au.options) != choices:
            previous = self.au.value
            self.au.options = choices
            self.au.value = previous if previous is not None and previous < len(choices) else 0

    def _on_change(self, _change: dict) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self._sync_controls()
        finally:
            self._syncing = False
        self.redraw()

    def title(self) -> str:
        """The title of the current selection, e.g. ``"jaa_net, epoch 3: sample 0, AU12"``."""
        au = self.current.aus[self.au.value]
        return (
            f"{self.model.value}, epoch {self.epoch.value}: sample {self.sample.value}, "
            f"{au_column(au)} ({self.current.method})"
        )

    def redraw(self) -> Figure:
        """Draw the current selection into the output area and return the figure."""
        figure = sample_figure(self.current, self.sample.value, self.au.value)
        figure.suptitle(self.title())
        self._figure = figure
        with self.output:
            clear_output(wait=True)
            display(_png(figure))
        return figure

    def _repr_mimebundle_(self, **kwargs) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)


def _png(figure: Figure) -> Image:
    """The figure as a PNG image, which shows in any kernel, whatever matplotlib's backend."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return Image(data=buffer.getvalue(), format="png")
