
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var DIS = null;  // parsed on the first expansion
  function disasm() {
    if (DIS === null) DIS = JSON.parse(document.getElementById("report-disasm").textContent);
    return DIS;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  var DM = DATA.dm || {};  // mangled name -> readable (C++, Rust), for display; filters match both
  function show(n) { return (n && Object.prototype.hasOwnProperty.call(DM, n)) ? DM[n] : n; }
  function hex(h) { return h === null || h === undefined ? "" : "0x" + h; }
  function cmpHex(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    return (a.length - b.length) || (a < b ? -1 : 1);
  }
  function confColor(c) {
    return c >= 0.9 ? "var(--good)" : c >= 0.7 ? "var(--ok)" : c >= 0.5 ? "var(--meh)" : "var(--bad)";
  }

  // ----------------------------------------------------------------------------- summary
  var S = DATA.summary;
  (function () {
    var p = document.getElementById("paths");
    [["reference", S.reference], ["target", S.target]].forEach(function (kv) {
      var d = el("div"); d.appendChild(el("b", null, kv[0] + ": ")); d.appendChild(document.createTextNode(kv[1] || "—"));
      p.appendChild(d);
    });
    var cards = document.getElementById("cards");
    var pct = S.code ? " (" + Math.round(100 * S.named / S.code) + "%)" : "";
    [["functions found", S.functions], ["code functions", S.code], ["PLT imports", S.imports],
     ["matched", S.matched], ["named", S.named + pct], ["min_confidence", String(+S.min_confidence.toFixed(3))],
     ["model", S.model || "—"]].forEach(function (kv) {
      var c = el("div", "card"); c.appendChild(el("div", "v", kv[1])); c.appendChild(el("div", "k", kv[0]));
      cards.appendChild(c);
    });
    function mini(id, pairs, colors) {
      var t = document.getElementById(id), max = 1;
      pairs.forEach(function (kv) { max = Math.max(max, kv[1]); });
      pairs.forEach(function (kv, i) {
        var tr = el("tr"); tr.appendChild(el("td", null, kv[0])); tr.appendChild(el("td", "n", kv[1]));
        var td = el("td", "bar"), f = el("div", "barfill");
        f.style.width = (100 * kv[1] / max) + "%";
        if (colors) f.style.background = colors[i];
        td.appendChild(f); tr.appendChild(td); t.appendChild(tr);
      });
      if (!pairs.length) { var tr = el("tr"); tr.appendChild(el("td", "none", "no functions")); t.appendChild(tr); }
    }
    mini("via-table", S.via);
    mini("band-table", S.bands, ["var(--good)", "var(--ok)", "var(--meh)", "var(--bad)"]);
  })();

  // ----------------------------------------------------------------------------- table
  var ROWS = DATA.rows;
  ROWS.forEach(function (r, i) {
    r._i = i;
    r._hay = [hex(r.a), r.n || "", show(r.n) || "", r.v.join(" "), hex(r.r), r.b || "", show(r.b) || ""]
      .join("\u0001").toLowerCase();
  });
  var state = { key: null, dir: 1, page: 0, size: 100, view: ROWS.slice(), open: {} };
  var tbody = document.getElementById("rows");
  var filterBox = document.getElementById("filter");
  var hideImports = document.getElementById("hide-imports");
  var namedOnly = document.getElementById("named-only");

  function cmp(key) {
    if (key === "a" || key === "r") return function (x, y) { return cmpHex(x[key], y[key]); };
    if (key === "c") return function (x, y) { return x.c - y.c; };
    if (key === "v") return function (x, y) {
      var a = x.v.join(","), b = y.v.join(",");
      if (!a !== !b) return a ? -1 : 1;
      return a < b ? -1 : a > b ? 1 : 0;
    };
    return function (x, y) {
      var a = show(x[key]), b = show(y[key]);
      if (!a !== !b) return a ? -1 : 1;   // missing names last
      a = (a || "").toLowerCase(); b = (b || "").toLowerCase();
      return a < b ? -1 : a > b ? 1 : 0;
    };
  }
  function applyView() {
    var q = filterBox.value.trim().toLowerCase(), terms = q ? q.split(/\s+/) : [];
    var hide = hideImports.checked, named = namedOnly.checked;
    var v = ROWS.filter(function (r) {
      if (hide && r.v.indexOf("import") >= 0) return false;
      if (named && !r.n) return false;
      for (var i = 0; i < terms.length; i++) if (r._hay.indexOf(terms[i]) < 0) return false;
      return true;
    });
    if (state.key) {
      var c = cmp(state.key), d = state.dir;
      v.sort(function (x, y) { return d * c(x, y) || x._i - y._i; });
    }
    state.view = v;
    render();
  }
  function confCell(c) {
    var w = el("div", "conf"), t = el("div", "track"), i = el("i");
    i.style.width = Math.max(0, Math.min(100, 100 * c)) + "%"; i.style.background = confColor(c);
    t.appendChild(i); w.appendChild(el("span", null, c.toFixed(2))); w.appendChild(t);
    return w;
  }
  function render() {
    var n = state.view.length, pages = Math.max(1, Math.ceil(n / state.size));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * state.size, end = Math.min(n, start + state.size);
    var frag = document.createDocumentFragment();
    for (var i = start; i < end; i++) {
      var r = state.view[i], tr = el("tr", "fn");
      tr.dataset.idx = r._i;
      tr.appendChild(el("td", "addr", hex(r.a)));
      var nm = el("td", r.n ? null : "none", show(r.n) || "—"); nm.title = r.n || ""; tr.appendChild(nm);
      var cc = el("td"); cc.dataset.value = r.c; cc.appendChild(confCell(r.c)); tr.appendChild(cc);
      var vv = el("td");
      if (!r.v.length) vv.appendChild(el("span", "none", "unmatched"));
      r.v.forEach(function (t) { vv.appendChild(el("span", "tag " + t.replace(/[^a-z0-9_-]/gi, ""), t)); });
      tr.appendChild(vv);
      tr.appendChild(el("td", "addr", r.r ? hex(r.r) : ""));
      var bc = el("td", null, r.b ? show(r.b) + "  (" + r.bs.toFixed(3) + ")" : ""); bc.title = r.b || "";
      tr.appendChild(bc);
      frag.appendChild(tr);
      if (state.open[r._i]) { tr.classList.add("open"); frag.appendChild(detailRow(r)); }
    }
    tbody.textContent = "";
    tbody.appendChild(frag);
    document.getElementById("count").textContent = n + " of " + ROWS.length + " functions";
    document.getElementById("page").textContent = "page " + (state.page + 1) + " / " + pages;
    document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page >= pages - 1;
    document.querySelectorAll("#functions th").forEach(function (th) {
      th.classList.remove("asc", "desc");
      if (th.dataset.key === state.key) th.classList.add(state.dir > 0 ? "asc" : "desc");
    });
  }
  function pre(d) {
    var p = el("pre");
    var base = BigInt("0x" + d.b);
    for (var i = 0; i < d.t.length; i++) {
      p.appendChild(el("span", "ad", (base + BigInt(d.o[i])).toString(16).padStart(8, " ") + "  "));
      var t = d.t[i], sp = t.indexOf(" "), mn = sp < 0 ? t : t.slice(0, sp);
      p.appendChild(el("span", /^(call|j)/.test(mn) ? "cl" : "mn", mn));
      p.appendChild(document.createTextNode((sp < 0 ? "" : t.slice(sp)) + "\n"));
    }
    if (d.more) p.appendChild(el("span", "ad", "… truncated at " + DATA.max_disasm + " instructions\n"));
    return p;
  }
  function pane(title, color, d, fallback) {
    var w = el("div"), h = el("h3"), dot = el("span", "side");
    dot.style.background = color; h.appendChild(dot); h.appendChild(document.createTextNode(title)); h.title = title;
    w.appendChild(h);
    if (!d) w.appendChild(el("div", "unavailable", fallback));
    else if (d.error) w.appendChild(el("div", "unavailable", d.error));
    else w.appendChild(pre(d));
    return w;
  }
  function detailRow(r) {
    var tr = el("tr", "detail-row"), td = el("td", "detail");
    td.colSpan = 6;
    var ct = el("table", "cands"), hr = el("tr");
    var multi = r.cand.some(function (c) { return c[3]; });
    ["candidate", "address", "score"].concat(multi ? ["binary"] : []).forEach(function (h) { hr.appendChild(el("th", null, h)); });
    ct.appendChild(hr);
    r.cand.forEach(function (c) {
      var row = el("tr", c[1] && c[1] === r.r ? "chosen" : null);
      var cn = el("td", null, show(c[0])); cn.title = c[0]; row.appendChild(cn);
      row.appendChild(el("td", "addr", hex(c[1])));
      row.appendChild(el("td", null, c[2].toFixed(4)));
      if (multi) row.appendChild(el("td", null, c[3] || ""));
      ct.appendChild(row);
    });
    if (!r.cand.length) { var e = el("tr"); e.appendChild(el("td", "none", "no candidates")); ct.appendChild(e); }
    td.appendChild(ct);
    var D = disasm(), grid = el("div", "disasm");
    var rd = r.k ? D.ref[r.k] : null;
    var rname = show(rd && rd.name ? rd.name : (r.kc ? r.b : (r.n || "")));
    var rtitle = r.k ? (r.kc ? "best candidate (not matched): " : "reference: ") + (rname || "") + " @ " +
      hex(r.k.slice(r.k.lastIndexOf("|") + 1)) : "reference";
    grid.appendChild(pane(rtitle, "var(--ref)", rd, r.k ? "binary not available" : "no reference function"));
    var td2 = DATA.tgt_error ? { error: DATA.tgt_error } : disasm().tgt[r.a];
    grid.appendChild(pane("target: " + (show(r.n) || "sub_" + r.a) + " @ " + hex(r.a), "var(--tgt)", td2,
      "binary not available"));
    td.appendChild(grid);
    tr.appendChild(td);
    return tr;
  }
  tbody.addEventListener("click", function (ev) {
    var tr = ev.target.closest("tr.fn");
    if (!tr) return;
    var i = +tr.dataset.idx;
    if (state.open[i]) delete state.open[i]; else state.open[i] = true;
    render();
  });
  document.querySelectorAll("#functions th").forEach(function (th) {
    th.addEventListener("click", function () {
      var k = th.dataset.key;
      if (state.key === k) state.dir = -state.dir; else { state.key = k; state.dir = 1; }
      applyView();
    });
  });
  var timer = null;
  filterBox.addEventListener("input", function () {
    clearTimeout(timer); timer = setTimeout(function () { state.page = 0; applyView(); }, 120);
  });
  hideImports.addEventListener("change", function () { state.page = 0; applyView(); });
  namedOnly.addEventListener("change", function () { state.page = 0; applyView(); });
  document.getElementById("prev").addEventListener("click", function () { state.page--; render(); });
  document.getElementById("next").addEventListener("click", function () { state.page++; render(); });
  document.getElementById("page-size").addEventListener("change", function (ev) {
    state.size = +ev.target.value; state.page = 0; render();
  });
  applyView();

  // ----------------------------------------------------------------------------- plot
  var P = DATA.plot, canvas = document.getElementById("plot"), tip = document.getElementById("tip");
  document.getElementById("plot-note").textContent = P.note || "";
  if (!P.ref) { document.getElementById("plot-wrap").hidden = true; return; }
  var pts = [];  // {x, y, side, i}
  var sx, sy, W, H;
  function layout() {
    var rect = canvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    W = Math.max(200, rect.width); H = Math.max(200, rect.height);
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    var all = P.ref.x.concat(P.tgt.x), allY = P.ref.y.concat(P.tgt.y);
    var x0 = Math.min.apply(null, all), x1 = Math.max.apply(null, all);
    var y0 = Math.min.apply(null, allY), y1 = Math.max.apply(null, allY);
    var pad = 16, spanX = (x1 - x0) || 1, spanY = (y1 - y0) || 1;
    sx = function (v) { return pad + (v - x0) / spanX * (W - 2 * pad); };
    sy = function (v) { return H - pad - (v - y0) / spanY * (H - 2 * pad); };
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }
  function draw() {
    var ctx = layout();
    ctx.clearRect(0, 0, W, H);
    ctx.lineWidth = 0.8;
    P.links.forEach(function (l) {
      var t = l[0], r = l[1];
      ctx.strokeStyle = "rgba(80,80,80," + (0.12 + 0.3 * l[2]) + ")";
      ctx.beginPath(); ctx.moveTo(sx(P.tgt.x[t]), sy(P.tgt.y[t])); ctx.lineTo(sx(P.ref.x[r]), sy(P.ref.y[r]));
      ctx.stroke();
    });
    pts = [];
    // reference: filled dots; target: rings on top, so that coinciding pairs still show both colours
    [["ref", "rgba(47,111,219,0.75)", true], ["tgt", "rgba(224,101,43,0.9)", false]].forEach(function (s) {
      var side = P[s[0]];
      ctx.fillStyle = s[1]; ctx.strokeStyle = s[1]; ctx.lineWidth = 1.4;
      for (var i = 0; i < side.x.length; i++) {
        var x = sx(side.x[i]), y = sy(side.y[i]);
        ctx.beginPath(); ctx.arc(x, y, s[2] ? 3 : 3.6, 0, 2 * Math.PI);
        if (s[2]) ctx.fill(); else ctx.stroke();
        pts.push({ x: x, y: y, side: s[0], i: i });
      }
    });
  }
  function nearest(ev) {
    var rect = canvas.getBoundingClientRect(), mx = ev.clientX - rect.left, my = ev.clientY - rect.top;
    var best = null, bd = 64;
    pts.forEach(function (p) {
      var d = (p.x - mx) * (p.x - mx) + (p.y - my) * (p.y - my);
      if (d < bd) { bd = d; best = p; }
    });
    return best && { p: best, mx: mx, my: my };
  }
  canvas.addEventListener("mousemove", function (ev) {
    var n = nearest(ev);
    if (!n) { tip.hidden = true; return; }
    var side = P[n.p.side];
    tip.textContent = (n.p.side === "ref" ? "reference " : "target ") + hex(side.a[n.p.i]) + "  " + show(side.n[n.p.i]);
    tip.hidden = false;
    tip.style.left = Math.min(n.mx + 12, W - 200) + "px"; tip.style.top = (n.my + 12) + "px";
  });
  canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
  canvas.addEventListener("click", function (ev) {
    var n = nearest(ev);
    if (!n) return;
    var side = P[n.p.side];
    filterBox.value = n.p.side === "tgt" ? hex(side.a[n.p.i]) : side.n[n.p.i];
    state.page = 0; applyView();
    document.getElementById("table-section").scrollIntoView({ behavior: "smooth" });
  });
  var rt = null;
  window.addEventListener("resize", function () { clearTimeout(rt); rt = setTimeout(draw, 150); });
  draw();
})();
