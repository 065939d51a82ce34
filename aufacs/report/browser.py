"""The heatmap browser of the heatmap notebook: one self-contained HTML and JavaScript element.

Every overlay (an AU's map over a test face, coloured as the static galleries of
:func:`aufacs.inference.explain.heatmap_gallery`) is drawn beforehand and embedded as a JPEG
data URI, with each face's AU probabilities and ground truth. Buttons choose the run, the
map (its own attention, or Grad-CAM), the epoch, the face and the AU; a click only swaps
images, so the element works in the HTML report with no kernel and no network, as it does
live in JupyterLab. It opens on the first run's last epoch, and choosing a run goes to that
run's last epoch. A page address ending in ``#model=eac_net&au=AU12`` (also ``map``,
``epoch``, ``face``) opens on that choice instead.

``heatmap_browser([sets, gradcam])`` takes the ``{(run name, epoch): HeatmapSet}`` collections
of :func:`aufacs.report.maps.heatmap_sets` and returns an ``IPython.display.HTML``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from aufacs.analysis.heatmaps import HeatmapSet
from aufacs.core.aus import au_column
from aufacs.core.errors import AufacsError

#: Colour map of the overlays: the one of the static galleries.
HEATMAP_CMAP = "jet"
#: Names of the maps as the buttons show them.
METHOD_NAMES = {"attention": "own attention", "gradcam": "Grad-CAM"}

Collection = Mapping[tuple[str, int], HeatmapSet]


def overlay_image(image: np.ndarray, heat: np.ndarray, size: int, alpha: float = 0.45) -> bytes:
    """JPEG bytes of ``heat`` (h, w) in [0, 1] coloured with :data:`HEATMAP_CMAP` over
    ``image`` (H, W, 3) uint8 RGB, both resized to ``size`` x ``size``."""
    from matplotlib import colormaps

    face = cv2.resize(np.asarray(image, dtype=np.uint8), (size, size), cv2.INTER_LINEAR)
    heat = cv2.resize(np.asarray(heat, dtype=np.float32), (size, size), cv2.INTER_LINEAR)
    colours = colormaps[HEATMAP_CMAP](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    blended = (1 - alpha) * face.astype(np.float32) + alpha * colours
    bgr = cv2.cvtColor(blended.round().astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise AufacsError("could not encode a heatmap overlay as JPEG")
    return encoded.tobytes()


def _data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _value(array: np.ndarray | None, s: int, n: int) -> float | None:
    if array is None:
        return None
    value = float(np.asarray(array)[s][n])
    return None if np.isnan(value) else round(value, 3)


def browser_entries(collections: Sequence[Collection], size: int = 160) -> list[dict[str, Any]]:
    """One entry per run, map method and epoch: ``model``, ``method``, ``epoch``, ``aus``
    (``AU12`` ...) and ``faces``, each a list of per-AU ``images`` (data URIs), ``probs`` and
    ``labels`` (None where unknown). A (run, method, epoch) seen twice is kept once."""
    entries: dict[tuple[str, str, int], dict[str, Any]] = {}
    for sets in collections:
        for (model, epoch), maps in sets.items():
            key = (model, maps.method, int(epoch))
            if key in entries:
                continue
            faces = [
                {
                    "images": [
                        _data_uri(overlay_image(maps.images[s], maps.maps[s, n], size))
                        for n in range(len(maps.aus))
                    ],
                    "probs": [_value(maps.probs, s, n) for n in range(len(maps.aus))],
                    "labels": [_value(maps.labels, s, n) for n in range(len(maps.aus))],
                }
                for s in range(maps.num_samples)
            ]
            aus = [au_column(a) for a in maps.aus]
            entries[key] = {"model": model, "method": maps.method, "epoch": int(epoch)}
            entries[key] |= {"aus": aus, "faces": faces}
    return list(entries.values())


def browser_html(collections: Sequence[Collection], size: int = 160) -> str:
    """The browser element (module docstring) as an HTML string."""
    entries = browser_entries(collections, size)
    if not entries:
        raise AufacsError("the heatmap browser needs at least one (run, epoch) -> HeatmapSet")
    element = f"aufacs-browser-{uuid.uuid4().hex[:8]}"
    payload = json.dumps({"entries": entries, "methods": METHOD_NAMES}).replace("</", "<\\/")
    return _TEMPLATE.format(
        id=element, data=payload, script=_SCRIPT.replace("ELEMENT_ID", element), size=2 * size
    )


def heatmap_browser(collections: Sequence[Collection], size: int = 160) -> Any:
    """The browser element for a notebook cell: an ``IPython.display.HTML``."""
    from IPython.display import HTML

    return HTML(browser_html(collections, size))


_TEMPLATE = """<div id="{id}" class="aufacs-browser" style="font-family:sans-serif;font-size:13px">
<style>
#{id} .row{{margin:3px 0}} #{id} .row b{{display:inline-block;width:4.5em}}
#{id} button{{margin:1px;padding:2px 7px;border:1px solid #999;background:#f4f4f4;
cursor:pointer;border-radius:3px;font-size:12px}}
#{id} button.on{{background:#2c6fbb;color:#fff;border-color:#2c6fbb}}
#{id} .face{{width:{size}px;height:{size}px;image-rendering:auto;border:1px solid #ccc}}
#{id} .bar{{width:{size}px;height:10px;background:linear-gradient(to right,#00007f,#0000ff,
#007fff,#00ffff,#7fff7f,#ffff00,#ff7f00,#ff0000,#7f0000)}}
#{id} .scale{{width:{size}px;display:flex;justify-content:space-between;font-size:11px}}
</style>
<script type="application/json">{data}</script>
<div class="controls"></div>
<div style="display:flex;gap:16px;align-items:flex-start;margin-top:6px">
<div><img class="face" alt="heatmap overlay"><div class="bar"></div>
<div class="scale"><span>0: ignored</span><span>map value</span><span>1: most attended</span>
</div></div>
<div class="caption" style="max-width:28em"></div></div>
<noscript>The browser needs JavaScript; the static galleries below show the same maps.</noscript>
<script>{script}</script>
</div>
"""

_SCRIPT = r"""
(function () {
  var root = document.getElementById("ELEMENT_ID");
  var data = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
  var entries = data.entries, state = {};
  function uniq(list) { return list.filter(function (v, i) { return list.indexOf(v) === i; }); }
  function of(model, method) {
    return entries.filter(function (e) {
      return e.model === model && (method === undefined || e.method === method);
    });
  }
  function current() {
    return entries.filter(function (e) {
      return e.model === state.model && e.method === state.method && e.epoch === state.epoch;
    })[0];
  }
  function choose(model, method, epoch) {
    state.model = model;
    var methods = uniq(of(model).map(function (e) { return e.method; }));
    state.method = methods.indexOf(method) >= 0 ? method : methods[0];
    var epochs = of(model, state.method).map(function (e) { return e.epoch; });
    state.epoch = epochs.indexOf(epoch) >= 0 ? epoch : Math.max.apply(null, epochs);
    var entry = current();
    if (!(state.face < entry.faces.length)) { state.face = 0; }
    if (entry.aus.indexOf(state.au) < 0) { state.au = entry.aus[0]; }
  }
  function group(label, values, chosen, names, onclick) {
    var row = document.createElement("div");
    row.className = "row";
    row.innerHTML = "<b>" + label + "</b>";
    values.forEach(function (value, i) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = names ? names[i] : value;
      if (value === chosen) { button.className = "on"; }
      button.onclick = function () { onclick(value); render(); };
      row.appendChild(button);
    });
    return row;
  }
  function describe(p, label) {
    var text = p === null ? "p unknown" : "p = " + p.toFixed(2);
    if (label === 1) { text += ", present"; } else if (label === 0) { text += ", absent"; }
    return text;
  }
  function render() {
    var entry = current(), face = entry.faces[state.face], n = entry.aus.indexOf(state.au);
    var controls = root.querySelector(".controls");
    controls.innerHTML = "";
    var models = uniq(entries.map(function (e) { return e.model; }));
    controls.appendChild(group("run", models, state.model, null, function (v) { choose(v); }));
    var methods = uniq(of(state.model).map(function (e) { return e.method; }));
    var names = methods.map(function (m) { return data.methods[m] || m; });
    controls.appendChild(group("map", methods, state.method, names,
      function (v) { choose(state.model, v, state.epoch); }));
    var epochs = of(state.model, state.method).map(function (e) { return e.epoch; });
    controls.appendChild(group("epoch", epochs, state.epoch, null,
      function (v) { choose(state.model, state.method, v); }));
    var faces = entry.faces.map(function (f, i) { return i; });
    controls.appendChild(group("face", faces, state.face,
      faces.map(function (i) { return String(i + 1); }), function (v) { state.face = v; }));
    var labels = entry.aus.map(function (au, i) {
      var p = face.probs[i];
      return au + (p === null ? "" : " " + p.toFixed(2)) + (face.labels[i] === 1 ? " \u25cf" : "");
    });
    controls.appendChild(group("AU", entry.aus, state.au, labels, function (v) { state.au = v; }));
    root.querySelector("img.face").src = face.images[n];
    root.querySelector(".caption").innerHTML = "<b>" + state.model + "</b>, epoch " +
      state.epoch + ", " + (data.methods[state.method] || state.method) + "<br>face " +
      (state.face + 1) + ", <b>" + state.au + "</b>: " + describe(face.probs[n], face.labels[n]) +
      "<br><small>AU buttons: predicted probability; \u25cf: present in the ground truth." +
      "</small>";
  }
  var asked = {};
  (window.location.hash || "").replace(/^#/, "").split("&").forEach(function (pair) {
    var kv = pair.split("="); if (kv.length === 2) { asked[kv[0]] = decodeURIComponent(kv[1]); }
  });
  var models = uniq(entries.map(function (e) { return e.model; }));
  state.face = asked.face ? Number(asked.face) - 1 : 0;
  state.au = asked.au;
  choose(models.indexOf(asked.model) >= 0 ? asked.model : models[0], asked.map,
    asked.epoch ? Number(asked.epoch) : undefined);
  render();
})();
"""
