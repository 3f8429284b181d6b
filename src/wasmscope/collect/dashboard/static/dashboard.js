/* wasmscope collect dashboard: charts (uPlot), the live tail and the flame graph.
   Data comes from <script type="application/json"> blocks and same-origin endpoints;
   nothing here evaluates text, and every telemetry value goes into the page as text. */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";

  function readJSON(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function fmtValue(unit, v) {
    if (v == null || isNaN(v)) return "–";
    var a = Math.abs(v), s;
    if (a >= 1e9) s = (v / 1e9).toPrecision(3) + "G";
    else if (a >= 1e6) s = (v / 1e6).toPrecision(3) + "M";
    else if (a >= 1e4) s = (v / 1e3).toPrecision(3) + "k";
    else if (a >= 100 || a === 0) s = String(Math.round(v));
    else s = v.toPrecision(3).replace(/\.?0+$/, "");
    if (unit === "ms") return s + " ms";
    if (unit === "/s") return s + "/s";
    return unit && unit.length <= 6 ? s + " " + unit : s;
  }

  function utc(ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }

  function makeChart(fig) {
    if (fig.dataset.ready || typeof uPlot === "undefined") return;
    var spec = readJSON(fig.dataset.chart);
    var plot = fig.querySelector(".plot");
    if (!spec || !plot) return;
    fig.dataset.ready = "1";
    var unit = spec.unit || "";
    var data = [spec.x];
    var series = [{ value: function (u, v) { return v == null ? "–" : uPlot.fmtDate("{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}")(utc(v)); } }];
    var any = false;
    var bars = spec.kind === "bars";
    var n = spec.series.length;
    spec.series.forEach(function (s, si) {
      var values = s.values;
      if (spec.stacked) {
        // Stacked bars: series si is drawn as the sum of itself and the ones after it,
        // the legend still reads its own value.
        values = values.map(function (v, i) {
          var sum = v;
          for (var k = si + 1; k < n; k++) sum += spec.series[k].values[i] || 0;
          return sum;
        });
      }
      data.push(values);
      var shown = s.values.filter(function (v) { return v != null; }).length;
      if (s.values.some(function (v) { return v; })) any = true;
      var raw = s.values;
      var opt = {
        label: s.label, stroke: s.color, width: bars ? 0 : 1.6, fill: bars ? s.color + "cc" : s.color + "1a",
        spanGaps: !bars, points: { show: !bars && shown < 60, size: 5, fill: s.color },
        value: function (u, v, sidx, idx) { return fmtValue(unit, idx == null ? v : raw[idx]); }
      };
      if (bars) opt.paths = uPlot.paths.bars({ size: [0.75, 24], gap: 1 });
      series.push(opt);
    });
    if (!any) fig.classList.add("no-data");
    var height = parseInt(fig.dataset.height || "200", 10);
    var opts = {
      width: Math.max(plot.clientWidth, 200), height: height,
      tzDate: utc, series: series, legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: function (u, lo, hi) { return [0, hi > 0 ? hi * 1.1 : 1]; } } },
      axes: [
        { stroke: "#6b7280", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e5e7eb" } },
        { stroke: "#6b7280", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e5e7eb" }, size: 56,
          values: function (u, vals) { return vals.map(function (v) { return fmtValue(unit === "ms" || unit === "/s" ? unit : "", v); }); } }
      ]
    };
    var chart = new uPlot(opts, data, plot);
    fig._chart = chart;
  }

  function resizeCharts() {
    document.querySelectorAll("figure.chart").forEach(function (fig) {
      var plot = fig.querySelector(".plot");
      if (fig._chart && plot) fig._chart.setSize({ width: Math.max(plot.clientWidth, 200), height: fig._chart.height });
    });
  }

  /* --- flame graph: an icicle of the sampled stacks (outermost at the top) --- */
  function flameTree(stacks) {
    var root = { name: "all", value: 0, children: {} };
    stacks.forEach(function (st) {
      var node = root;
      root.value += st.value;
      st.frames.forEach(function (name) {
        var next = node.children[name];
        if (!next) { next = node.children[name] = { name: name, value: 0, children: {}, parent: node }; }
        next.value += st.value;
        node = next;
      });
    });
    return root;
  }

  function hue(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return "hsl(" + (10 + (h % 40)) + ", " + (70 + (h % 20)) + "%, " + (58 + (h % 12)) + "%)";
  }

  function makeFlame(box) {
    if (box.dataset.ready) return;
    var spec = readJSON(box.dataset.flame);
    if (!spec) return;
    box.dataset.ready = "1";
    var tip = document.getElementById("flame-tip");
    var root = flameTree(spec.stacks || []);
    var unit = spec.unit || "samples";
    if (!root.value) { box.textContent = "No sampled stack in this profile."; box.classList.add("empty"); return; }
    var rowH = 18;
    function depth(n) { var d = 0; for (var k in n.children) d = Math.max(d, depth(n.children[k])); return d + 1; }
    var rows = depth(root);
    var focus = root;

    function draw() {
      while (box.firstChild) box.removeChild(box.firstChild);
      var width = Math.max(box.clientWidth, 300);
      var svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("width", width);
      svg.setAttribute("height", rows * rowH);
      svg.setAttribute("class", "flame-svg");
      var ancestors = [];
      for (var a = focus; a; a = a.parent) ancestors.unshift(a);
      function rect(node, x, w, d, dim) {
        if (w < 0.5) return;
        var g = document.createElementNS(SVG, "g");
        var r = document.createElementNS(SVG, "rect");
        r.setAttribute("x", x); r.setAttribute("y", d * rowH); r.setAttribute("width", Math.max(w - 0.5, 0.5));
        r.setAttribute("height", rowH - 1); r.setAttribute("fill", node === root ? "#cbd5e1" : hue(node.name));
        if (dim) r.setAttribute("opacity", "0.55");
        var t = document.createElementNS(SVG, "title");
        var share = (100 * node.value / root.value).toFixed(1);
        t.textContent = node.name + " — " + node.value + " " + unit + " (" + share + "%)";
        g.appendChild(t); g.appendChild(r);
        if (w > 36) {
          var text = document.createElementNS(SVG, "text");
          text.setAttribute("x", x + 4); text.setAttribute("y", d * rowH + 13);
          var chars = Math.floor((w - 8) / 6.6);
          text.textContent = node.name.length > chars ? node.name.slice(0, Math.max(chars - 1, 1)) + "…" : node.name;
          g.appendChild(text);
        }
        g.addEventListener("click", function () { focus = node; draw(); });
        g.addEventListener("mouseenter", function () { if (tip) tip.textContent = t.textContent; });
        svg.appendChild(g);
      }
      ancestors.forEach(function (n, i) { rect(n, 0, width, i, n !== focus); });
      function children(node, x, w, d) {
        var keys = Object.keys(node.children).sort();
        var cx = x;
        keys.forEach(function (k) {
          var c = node.children[k];
          var cw = w * c.value / node.value;
          rect(c, cx, cw, d, false);
          if (cw >= 1) children(c, cx, cw, d + 1);
          cx += cw;
        });
      }
      children(focus, 0, width, ancestors.length);
      box.appendChild(svg);
    }
    draw();
    window.addEventListener("resize", draw);
  }

  /* --- live tail --- */
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function span(text, cls) { var s = document.createElement("span"); s.className = cls; s.textContent = text; return s; }

  function liveRow(r) {
    var tr = document.createElement("tr");
    tr.className = "fresh";
    cell(tr, r.time, "mono nowrap");
    var fn = cell(tr, r.function);
    var svc = document.createElement("div"); svc.className = "muted small"; svc.textContent = r.service; fn.appendChild(svc);
    cell(tr, span(r.outcome || "–", "badge o-" + (/^[a-z_]+$/.test(r.outcome) ? r.outcome : "none") + "-chip"));
    cell(tr, r.duration, "num");
    cell(tr, r.cold ? span("cold", "chip cold") : span("warm", "muted"));
    var msg = cell(tr, "", "msg");
    if (r.trap_code) { msg.appendChild(span(r.trap_code, "mono")); msg.appendChild(document.createTextNode(" ")); }
    msg.appendChild(document.createTextNode(r.message || ""));
    var a = document.createElement("a");
    a.href = "/trace/" + encodeURIComponent(r.trace_id);
    a.textContent = r.trace_id.slice(0, 12) + "…";
    cell(tr, a, "mono");
    return tr;
  }

  function startLive(box) {
    if (box.dataset.ready) return;
    box.dataset.ready = "1";
    var body = document.getElementById("live-rows");
    var state = document.getElementById("live-state");
    var toggle = document.getElementById("live-toggle");
    var count = document.getElementById("live-count");
    var received = 0, source = null, paused = false;
    var base = box.dataset.stream;
    var last = (base.match(/[?&]since=(\d+)/) || [])[1] || "";

    function url() {
      var u = base.replace(/([?&])since=\d+&?/, "$1").replace(/[?&]$/, "");
      return u + (u.indexOf("?") >= 0 ? "&" : "?") + "since=" + last;
    }
    function open() {
      source = new EventSource(url());
      source.onopen = function () { state.textContent = "live"; state.className = "live-state on"; };
      source.onerror = function () { if (!paused) { state.textContent = "reconnecting…"; state.className = "live-state muted"; } };
      source.addEventListener("invocations", function (ev) {
        if (ev.lastEventId) last = ev.lastEventId;
        var rows;
        try { rows = JSON.parse(ev.data); } catch (e) { return; }
        var empty = document.getElementById("live-empty");
        if (empty) empty.remove();
        rows.forEach(function (r) { body.insertBefore(liveRow(r), body.firstChild); });
        received += rows.length;
        count.textContent = received + " new";
        while (body.children.length > 500) body.removeChild(body.lastChild);
      });
    }
    toggle.addEventListener("click", function () {
      paused = !paused;
      toggle.setAttribute("aria-pressed", paused ? "true" : "false");
      if (paused) { if (source) source.close(); source = null; toggle.textContent = "Resume"; state.textContent = "paused"; state.className = "live-state muted"; }
      else { toggle.textContent = "Pause"; open(); }
    });
    open();
  }

  function init(root) {
    (root || document).querySelectorAll("figure.chart").forEach(makeChart);
    (root || document).querySelectorAll("[data-flame]").forEach(makeFlame);
    (root || document).querySelectorAll("[data-stream]").forEach(startLive);
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    var timer = null;
    window.addEventListener("resize", function () { clearTimeout(timer); timer = setTimeout(resizeCharts, 120); });
    document.body.addEventListener("htmx:afterSettle", function () { init(document); });
  });
})();
