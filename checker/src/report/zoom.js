// Draws every `div.zoom` of the page from the JSON beside it: one row per
// process, one bar per operation (green ok, orange fail, grey info), the
// nemesis bands with staggered labels, and a time axis. The view is the
// time range [v0, v1]; wheel and buttons scale it, dragging shifts it.
(function () {
  "use strict";
  var COLOURS = ["#6bb56b", "#e0a040", "#b0b0b0"];
  var BAND_FILLS = ["rgba(243,198,198,0.55)", "rgba(198,212,243,0.55)", "rgba(243,227,192,0.55)", "rgba(212,198,243,0.55)"];
  var BAND_INKS = ["#a33", "#335fa3", "#8a6415", "#5b3aa3"];
  var LEFT = 60, RIGHT = 10, LABEL_ROW = 11;

  function niceStep(span) {
    var raw = span / 8, p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = [1, 2, 5, 10].find(function (k) { return k * p >= raw; });
    return Math.max(1, m * p);
  }
  function timeLabel(d, t, step) {
    if (!d.nanos) return "event " + Math.round(t);
    var dec = step >= 1e9 ? 0 : step >= 1e8 ? 1 : step >= 1e7 ? 2 : 3;
    return (t / 1e9).toFixed(dec) + "s";
  }
  function duration(d, ns) {
    if (!d.nanos) return ns + " events";
    if (ns < 1e3) return ns + "ns";
    if (ns < 1e6) return (ns / 1e3).toFixed(1) + "µs";
    if (ns < 1e9) return (ns / 1e6).toFixed(1) + "ms";
    return (ns / 1e9).toFixed(2) + "s";
  }

  function setUp(root) {
    var d = JSON.parse(document.getElementById(root.id + "-data").textContent);
    var canvas = root.querySelector("canvas"), g = canvas.getContext("2d");
    var status = root.querySelector(".zoomstatus"), tip = root.querySelector(".zoomtip");
    var rowH = parseFloat(root.dataset.row), W = canvas.width;
    var byRow = d.processes.map(function () { return []; });
    d.ops.forEach(function (o) { byRow[o[0]].push(o); });
    var kinds = [];
    var v0 = 0, v1 = Math.max(1, d.end), top = 0;
    var x = function (t) { return LEFT + (t - v0) / (v1 - v0) * (W - LEFT - RIGHT); };
    var tAt = function (px) { return v0 + (px - LEFT) / (W - LEFT - RIGHT) * (v1 - v0); };

    // Each label goes to the first row where it clears the one before it.
    function layOutBands() {
      var ends = [], placed = [];
      g.font = "9px sans-serif";
      d.bands.forEach(function (b) {
        if (b[1] < v0 || b[0] > v1) return;
        var kind = b[2].split(" ")[0], k = kinds.indexOf(kind);
        if (k < 0) { kinds.push(kind); k = kinds.length - 1; }
        var x1 = Math.max(LEFT, x(b[0])), x2 = Math.min(W - RIGHT, Math.max(x(b[1]), x1 + 2));
        var text = b[2].length > 44 ? b[2].slice(0, 43) + "…" : b[2];
        // A label near the right edge starts further left, to stay on.
        var w = g.measureText(text).width, lx = Math.max(0, Math.min(x1 + 1, W - 4 - w));
        var r = ends.findIndex(function (e) { return e + 6 <= lx; });
        if (r < 0) { ends.push(0); r = ends.length - 1; }
        ends[r] = lx + w;
        placed.push([x1, x2, r, text, k, lx]);
      });
      top = ends.length * LABEL_ROW + 8;
      return placed;
    }

    function drawBands(placed) {
      g.font = "9px sans-serif";
      placed.forEach(function (p) {
        g.fillStyle = BAND_FILLS[p[4] % 4];
        g.fillRect(p[0], top, p[1] - p[0], canvas.height - top - 28);
        g.fillStyle = BAND_INKS[p[4] % 4];
        g.fillText(p[3], p[5], (p[2] + 1) * LABEL_ROW - 2);
      });
    }

    function drawAxis() {
      var step = niceStep(v1 - v0), y = canvas.height - 14;
      g.fillStyle = "#555"; g.font = "10px sans-serif"; g.textAlign = "center";
      for (var t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
        g.fillText(timeLabel(d, t, step), x(t), y);
        g.fillRect(x(t), y - 14, 1, 4);
      }
      g.textAlign = "left";
    }

    function draw() {
      var placed = layOutBands(), height = Math.ceil(top + byRow.length * rowH + 32);
      // Resizing clears the canvas, so it happens before anything is drawn.
      if (canvas.height !== height) canvas.height = height;
      g.clearRect(0, 0, W, canvas.height);
      drawBands(placed);
      var drawn = 0;
      g.font = "9px monospace";
      byRow.forEach(function (ops, r) {
        var y = top + r * rowH;
        if (rowH >= 8) { g.fillStyle = "#555"; g.fillText("p" + d.processes[r], 2, y + rowH - 3); }
        ops.forEach(function (o) {
          var end = o[2] < 0 ? d.end : o[2];
          if (end < v0 || o[1] > v1) return;
          var x1 = Math.max(LEFT, x(o[1])), x2 = Math.min(W - RIGHT, x(end));
          g.fillStyle = COLOURS[o[3]];
          g.fillRect(x1, y + 1, Math.max(1, x2 - x1), rowH - 2);
          if (x2 - x1 > 40 && rowH >= 9) {
            g.save(); g.beginPath(); g.rect(x1, y, x2 - x1, rowH); g.clip();
            g.fillStyle = "#111"; g.fillText(o[4], x1 + 2, y + rowH - 3); g.restore();
          }
          drawn++;
        });
      });
      if (d.heal !== null && d.heal >= v0 && d.heal <= v1) {
        g.strokeStyle = "#2a7"; g.setLineDash([4, 3]); g.beginPath();
        g.moveTo(x(d.heal), top); g.lineTo(x(d.heal), canvas.height - 28); g.stroke(); g.setLineDash([]);
      }
      drawAxis();
      root.dataset.drawn = drawn;
      status.textContent = "showing " + drawn + " of " + d.ops.length + " operations" +
        (d.total > d.ops.length ? " (" + d.total + " in the history)" : "") +
        ", " + timeLabel(d, v0, 1) + " to " + timeLabel(d, v1, 1);
    }

    function zoom(factor, at) {
      var span = Math.max(d.nanos ? 1000 : 2, (v1 - v0) * factor);
      span = Math.min(span, Math.max(1, d.end));
      var frac = (at - v0) / (v1 - v0);
      v0 = at - frac * span; v1 = v0 + span;
      pan(0);
    }
    function pan(dt) {
      var span = v1 - v0;
      v0 = Math.min(Math.max(0, v0 + dt), Math.max(0, d.end - span)); v1 = v0 + span;
      draw();
    }
    canvas.addEventListener("wheel", function (e) {
      e.preventDefault();
      var r = canvas.getBoundingClientRect();
      zoom(e.deltaY < 0 ? 0.8 : 1.25, tAt((e.clientX - r.left) * W / r.width));
    }, { passive: false });
    var dragFrom = null;
    canvas.addEventListener("mousedown", function (e) { dragFrom = e.clientX; });
    window.addEventListener("mouseup", function () { dragFrom = null; });
    canvas.addEventListener("mousemove", function (e) {
      var r = canvas.getBoundingClientRect(), px = (e.clientX - r.left) * W / r.width;
      if (dragFrom !== null) {
        var dt = (dragFrom - e.clientX) * W / r.width / (W - LEFT - RIGHT) * (v1 - v0);
        dragFrom = e.clientX; pan(dt); return;
      }
      var row = Math.floor(((e.clientY - r.top) * canvas.height / r.height - top) / rowH), t = tAt(px);
      var hit = (byRow[row] || []).find(function (o) { return o[1] <= t && t <= (o[2] < 0 ? d.end : o[2]); });
      tip.textContent = hit ? "process " + d.processes[row] + ", line " + hit[5] + ": " + hit[4] + " (" +
        ["ok", "fail", "info"][hit[3]] + (hit[2] < 0 ? ", never completed" : ", " + duration(d, hit[2] - hit[1])) + ")" : "";
    });
    canvas.addEventListener("dblclick", function () { v0 = 0; v1 = Math.max(1, d.end); draw(); });
    root.querySelectorAll("button").forEach(function (b) {
      b.addEventListener("click", function () {
        var mid = (v0 + v1) / 2;
        if (b.dataset.act === "in") zoom(0.5, mid);
        else if (b.dataset.act === "out") zoom(2, mid);
        else { v0 = 0; v1 = Math.max(1, d.end); draw(); }
      });
    });
    // `#zoom=FROM,TO` (seconds, or event positions) opens on that range,
    // so a link or a screenshot can show a moment of the run.
    var asked = /zoom=([0-9.]+),([0-9.]+)/.exec(location.hash);
    if (asked) {
      var unit = d.nanos ? 1e9 : 1, a = parseFloat(asked[1]) * unit, b = parseFloat(asked[2]) * unit;
      if (b > a) { v0 = Math.max(0, a); v1 = Math.min(Math.max(1, d.end), b); }
    }
    draw();
  }

  document.querySelectorAll("div.zoom").forEach(setUp);
})();
