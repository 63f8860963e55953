// The Equitas dashboard: reads the server's FHIR API and draws what it says.
// Every number on the page comes from an API response; the page computes no
// statistic of its own, so what a payer sees here is what the API exports.
"use strict";

const BASE = new URL("../fhir/", document.baseURI).href.replace(/\/$/, "");
// The $equity-report stratifier names (see the README's equity section).
const STRATIFIERS = [
  ["race", "Race (OMB)"], ["ethnicity", "Ethnicity"], ["race-ethnicity", "Race and ethnicity"],
  ["language", "Preferred language"], ["interpreter", "Interpreter needed"], ["sex", "Sex"],
  ["payer", "Payer"], ["age-band", "Age band"], ["disability", "Disability"],
  ["sexual-orientation", "Sexual orientation"], ["gender-identity", "Gender identity"],
  ["county", "County"], ["zip", "ZIP code"], ["svi", "Social vulnerability tier"],
  ["provider", "Attributed provider"],
];
const DEFAULT_STRATIFIERS = ["race", "ethnicity", "language"];

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
};

function setStatus(state, text) {
  const s = $("#status");
  s.dataset.state = state;
  s.textContent = text;
}

function headers(accept) {
  const h = { Accept: accept || "application/fhir+json" };
  const token = $("#token").value.trim() || sessionStorage.getItem("equitas.token") || "";
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function api(path, accept) {
  const res = await fetch(BASE + path, { headers: headers(accept) });
  const type = res.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    if (body && body.resourceType === "OperationOutcome" && body.issue && body.issue.length) {
      msg += ": " + body.issue.map((i) => i.diagnostics || (i.details && i.details.text) || i.code).join("; ");
    }
    throw new Error(path.split("?")[0] + ": " + msg);
  }
  return body;
}

// ---- formatting -----------------------------------------------------------

const pct = (x) => (x === null || x === undefined || Number.isNaN(x) ? "—" : (100 * x).toFixed(1) + "%");
const num = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "—" : Number(x).toFixed(d));
const count = (x) => (x === null || x === undefined ? "—" : String(x));

// ---- controls --------------------------------------------------------------

async function loadControls(params) {
  const fs = $("#stratifiers");
  const chosen = (params.get("stratifier") || DEFAULT_STRATIFIERS.join(",")).split(",");
  for (const [code, label] of STRATIFIERS) {
    fs.append(el("label", {}, el("input", { type: "checkbox", name: "stratifier", value: code, checked: chosen.includes(code) ? "" : null }), label));
  }
  const year = new Date().getFullYear() - 1;
  $("#periodStart").value = params.get("periodStart") || `${year}-01-01`;
  $("#periodEnd").value = params.get("periodEnd") || `${year}-12-31`;
  for (const k of ["priorPeriodStart", "priorPeriodEnd", "reference"]) if (params.get(k)) $("#" + k).value = params.get(k);

  const measures = await api("/Measure?_count=200&_elements=id,url,version,name,title");
  const sel = $("#measure");
  for (const e of measures.entry || []) {
    const m = e.resource;
    sel.append(el("option", { value: m.id, text: `${m.title || m.name || m.id}${m.version ? " (" + m.version + ")" : ""}` }));
  }
  const wanted = params.getAll("measure").flatMap((m) => m.split(","));
  sel.multiple = wanted.length > 1;
  for (const o of sel.options) o.selected = wanted.includes(o.value);

  // _summary=true would drop the ATR extensions (status, contract period);
  // listing the elements keeps them and still leaves the members out.
  const groups = await api("/Group?_elements=name,identifier,quantity,extension,managingEntity&_count=200").catch(() => ({ entry: [] }));
  const subj = $("#subject");
  for (const e of groups.entry || []) {
    const g = e.resource;
    subj.append(el("option", { value: "Group/" + g.id, text: g.name || g.id }));
  }
  if (params.get("subject")) subj.value = params.get("subject");
  renderAttribution(groups);
}

function formParams() {
  const p = new URLSearchParams();
  for (const o of $("#measure").selectedOptions) p.append("measure", o.value);
  p.set("periodStart", $("#periodStart").value);
  p.set("periodEnd", $("#periodEnd").value);
  const strat = [...document.querySelectorAll("input[name=stratifier]:checked")].map((i) => i.value);
  if (strat.length) p.set("stratifier", strat.join(","));
  p.set("reference", $("#reference").value);
  if ($("#subject").value) p.set("subject", $("#subject").value);
  if ($("#priorPeriodStart").value && $("#priorPeriodEnd").value) {
    p.set("priorPeriodStart", $("#priorPeriodStart").value);
    p.set("priorPeriodEnd", $("#priorPeriodEnd").value);
  }
  return p;
}

// ---- attribution summary ---------------------------------------------------

const ATR_STATUS = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/ext-attributionListStatus";
const ATR_PERIOD = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/ext-contractValidityPeriod";

function extension(r, url) {
  return (r.extension || []).find((x) => x.url === url);
}

function renderAttribution(bundle) {
  const rows = (bundle.entry || []).map((e) => e.resource).filter((g) => g.resourceType === "Group");
  const sec = $("#attribution");
  sec.hidden = rows.length === 0;
  const tbody = $("tbody", sec);
  tbody.replaceChildren();
  for (const g of rows) {
    const status = extension(g, ATR_STATUS);
    const period = extension(g, ATR_PERIOD);
    // The list's identifiers name the provider (NPI, TIN) and the contract;
    // managingEntity is the payer that manages the list.
    const ids = (g.identifier || []).map((i) => i.value).filter(Boolean).join(", ");
    const payer = g.managingEntity ? g.managingEntity.display || g.managingEntity.reference : "";
    const p = period && period.valuePeriod ? `${period.valuePeriod.start || ""} – ${period.valuePeriod.end || ""}` : "—";
    tbody.append(el("tr", { "data-group": g.id },
      el("td", { text: g.name || g.id }), el("td", { text: ids || "—" }), el("td", { text: payer || "—" }),
      el("td", { text: status ? (status.valueCode || (status.valueCodeableConcept && status.valueCodeableConcept.coding[0].code)) : "—" }),
      el("td", { text: count(g.quantity) }), el("td", { text: p })));
  }
}

// ---- charts ----------------------------------------------------------------

// Chart.js has no error bars of its own: this plugin draws each bar's
// interval whiskers and the reference rate as a dashed line.
const intervalPlugin = {
  id: "equitasIntervals",
  afterDatasetsDraw(chart) {
    const { ctx, scales: { x, y } } = chart;
    const meta = chart.getDatasetMeta(0);
    const ds = chart.data.datasets[0];
    ctx.save();
    ctx.strokeStyle = "#1d2733";
    ctx.lineWidth = 1.25;
    meta.data.forEach((bar, i) => {
      const ci = ds.intervals[i];
      if (!ci) return;
      const [lo, hi] = [y.getPixelForValue(100 * ci[0]), y.getPixelForValue(100 * ci[1])];
      const w = Math.min(10, bar.width / 4);
      ctx.beginPath();
      ctx.moveTo(bar.x, lo); ctx.lineTo(bar.x, hi);
      ctx.moveTo(bar.x - w, lo); ctx.lineTo(bar.x + w, lo);
      ctx.moveTo(bar.x - w, hi); ctx.lineTo(bar.x + w, hi);
      ctx.stroke();
    });
    const ref = chart.options.plugins.equitasIntervals.reference;
    if (ref !== null && ref !== undefined) {
      const py = y.getPixelForValue(100 * ref);
      ctx.setLineDash([6, 4]);
      ctx.strokeStyle = "#b42318";
      ctx.beginPath(); ctx.moveTo(x.left, py); ctx.lineTo(x.right, py); ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#b42318";
      ctx.font = "11px system-ui";
      ctx.fillText("reference " + (100 * ref).toFixed(1) + "%", x.left + 4, py - 4);
    }
    ctx.restore();
  },
};

function drawChart(canvas, strat) {
  const shown = strat.strata.filter((s) => !s.masked && s.rate !== null && s.rate !== undefined);
  const colors = shown.map((s) => (s.isReference ? "#1f6feb" : s.reportable ? "#7aa7e8" : "#c5cfdb"));
  const chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels: shown.map((s) => s.label),
      datasets: [{ label: "rate (%)", data: shown.map((s) => 100 * s.rate), backgroundColor: colors, intervals: shown.map((s) => s.ci) }],
    },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      scales: { y: { min: 0, max: 100, title: { display: true, text: "rate (%)" } } },
      plugins: { legend: { display: false }, equitasIntervals: { reference: strat.reference ? strat.reference.rate : null },
        tooltip: { callbacks: { afterLabel: (c) => { const s = shown[c.dataIndex]; return `n=${s.den}, 95% CI ${pct(s.ci[0])}–${pct(s.ci[1])}`; } } } },
    },
    plugins: [intervalPlugin],
  });
  canvas.dataset.chartStatus = "rendered";
  canvas.dataset.points = String(shown.length);
  return chart;
}

// ---- tables ----------------------------------------------------------------

// yoyCell shows the change of a group's rate since the prior period: the
// arrow is the direction of the rate, the colour whether that is better
// (the API's trend, which knows the measure's direction and significance).
function yoyCell(s) {
  if (!s.prior || s.prior.rate === null || s.prior.rateChange === null || s.masked) return el("td", { text: "—" });
  const d = s.prior.rateChange;
  const cls = Math.abs(d) < 1e-9 ? "arrow-flat" : d > 0 ? "arrow-up" : "arrow-down";
  const tone = s.prior.trend === "improving" ? "better" : s.prior.trend === "worsening" ? "worse" : "";
  const sig = s.prior.rateChangeP !== null && s.prior.rateChangeP < 0.05 ? " *" : "";
  return el("td", { class: `${cls} ${tone}`, "data-trend": s.prior.trend || "", text: `${(100 * d).toFixed(1)} pts${sig}`, title: `prior ${pct(s.prior.rate)}; ${s.prior.trend || ""}` });
}

function strataTable(strat, improvement) {
  const head = el("tr", {}, ...["Group", "Denominator", "Numerator", "Rate", "95% CI", "Gap vs ref.", "Gap 95% CI", "Ratio", "Ratio 95% CI", "Year over year", "Notes"].map((h) => el("th", { text: h })));
  const body = strat.strata.map((s) => {
    const masked = (v) => (s.masked ? el("td", { class: "masked", text: "masked" }) : el("td", { text: v }));
    const notes = [s.isReference ? "reference" : "", s.masked ? "suppressed (privacy)" : "", !s.masked && !s.reportable ? "n<30, not compared" : "", s.flag || ""].filter(Boolean).join("; ");
    const gapCls = s.worse ? "worse" : "";
    return el("tr", { "data-stratum": s.label, "data-masked": s.masked ? "true" : "false" },
      el("td", { text: s.label }), masked(count(s.den)), masked(count(s.num)), masked(pct(s.rate)),
      masked(s.ci ? `${pct(s.ci[0])}–${pct(s.ci[1])}` : "—"),
      el("td", { class: gapCls, text: s.absGap === null || s.absGap === undefined ? "—" : (100 * s.absGap).toFixed(1) + " pts" }),
      el("td", { text: s.absGapCI ? `${(100 * s.absGapCI[0]).toFixed(1)} – ${(100 * s.absGapCI[1]).toFixed(1)}` : "—" }),
      el("td", { text: num(s.ratio) }),
      el("td", { text: s.ratioCI ? `${num(s.ratioCI[0])}–${num(s.ratioCI[1])}` : "—" }),
      yoyCell(s), el("td", { text: notes }));
  });
  return el("table", { class: "strata" }, el("thead", {}, head), el("tbody", {}, ...body));
}

function indicesTable(strat) {
  if (!strat.indices || !Object.keys(strat.indices).length) return el("p", { class: "note", text: "Fewer than two comparable groups: no summary indices." });
  const rows = Object.entries(strat.indices).map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: typeof v === "number" ? num(v, 4) : String(v) })));
  return el("table", { class: "indices" }, el("thead", {}, el("tr", {}, el("th", { text: "Index" }), el("th", { text: "Value" }))), el("tbody", {}, ...rows));
}

function renderMeasures(model) {
  const root = $("#measures");
  root.replaceChildren();
  for (const m of model.measures) {
    const sec = el("section", { class: "measure", "data-measure": m.id });
    sec.append(el("h2", { text: m.title || m.id }),
      el("p", { class: "summary", text: `Overall ${pct(m.overall.rate)} (${count(m.overall.num)} / ${count(m.overall.den)}; 95% CI ${m.overall.ci ? pct(m.overall.ci[0]) + "–" + pct(m.overall.ci[1]) : "—"}). ${m.improvement === "decrease" ? "Lower is better." : "Higher is better."}` }));
    for (const s of m.stratifiers) {
      const canvas = el("canvas", { "aria-label": `${m.id} rates by ${s.name}`, role: "img" });
      const ref = s.reference ? ` Reference: ${s.reference.label} (${pct(s.reference.rate)}).` : " No comparable reference group.";
      sec.append(el("h3", { text: `By ${s.name}` }), el("p", { class: "note", text: ref }),
        el("div", { class: "stratifier", "data-stratifier": s.code },
          el("div", { class: "chart" }, canvas),
          el("div", {}, strataTable(s, m.improvement), indicesTable(s))));
      root.append(sec);
      drawChart(canvas, s);
    }
    if (m.composite) sec.append(el("p", { class: "summary", text: m.composite }));
  }
}

// ---- care gaps -------------------------------------------------------------

function parseCSV(text) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") { if (c === "\r" && text[i + 1] === "\n") i++; row.push(cell); rows.push(row); row = []; cell = ""; }
    else cell += c;
  }
  if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
  return rows.filter((r) => r.length > 1 || r[0] !== "");
}

async function renderGaps(params) {
  const sec = $("#gaps");
  const subject = params.get("subject");
  if (!subject) { sec.hidden = true; return; }
  const q = new URLSearchParams({ periodStart: params.get("periodStart"), periodEnd: params.get("periodEnd"), subject, status: "open-gap", _format: "text/csv" });
  for (const m of params.getAll("measure").flatMap((x) => x.split(","))) q.append("measureId", m);
  let rows;
  try {
    rows = parseCSV(await api("/Measure/$care-gaps?" + q.toString(), "text/csv"));
  } catch (e) {
    sec.hidden = false;
    $(".note", sec).textContent = "Care gaps unavailable: " + e.message;
    return;
  }
  sec.hidden = false;
  const [head, ...body] = rows;
  $(".note", sec).textContent = `${body.length} open gap(s) for ${subject}.`;
  $("thead", sec).replaceChildren(el("tr", {}, ...(head || []).map((h) => el("th", { text: h }))));
  $("tbody", sec).replaceChildren(...body.map((r) => el("tr", {}, ...r.map((c) => el("td", { text: c })))));
}

// ---- the report ------------------------------------------------------------

const DIMENSIONS = {
  "race-omb1997": "race", "ethnicity-omb1997": "ethnicity", "language-preferred": "preferred language",
};

// normalize turns the $equity-report dashboard JSON (output=dashboard) into
// what the renderers draw; it only renames, it computes nothing.
function normalize(r) {
  const interval = (lo, hi) => (lo === null || lo === undefined || hi === null || hi === undefined ? null : [lo, hi]);
  return {
    measures: (r.measures || []).map((m) => ({
      id: m.id,
      title: m.title || m.id,
      improvement: m.improvementNotation,
      overall: { num: m.overall.numerator, den: m.overall.denominator, rate: m.overall.rate, ci: interval(m.overall.ciLow, m.overall.ciHigh) },
      composite: m.equity ? `Equity score ${num(m.equity.score, 1)} (attainment ${num(m.equity.attainment, 1)}${m.equity.improvement === null ? "" : ", improvement " + num(m.equity.improvement, 0)}); quality ${num(m.quality, 1)}.` : "",
      stratifiers: (m.stratifiers || []).map((st) => ({
        code: st.code,
        name: st.dimensions.map((d) => DIMENSIONS[d] || d).join(" × "),
        reference: st.reference ? { label: st.reference.display || st.reference.stratum, rate: st.reference.rate } : null,
        indices: st.indices ? Object.fromEntries(st.indices.values.map((v) => [v.name, v.value])) : null,
        strata: st.strata.map((x) => {
          const d = x.disparity;
          return {
            label: x.display || x.code,
            num: x.numerator, den: x.denominator, rate: x.rate, ci: interval(x.ciLow, x.ciHigh),
            masked: x.suppression === "privacy-primary" || x.suppression === "privacy-complementary",
            reportable: x.reportable, isReference: x.isReference,
            flag: x.missing ? "unknown / declined" : "",
            absGap: d ? d.absGap : null, absGapCI: d ? interval(d.absGapCiLow, d.absGapCiHigh) : null,
            ratio: d ? d.disparityRatio : null, ratioCI: d ? interval(d.drCiLow, d.drCiHigh) : null,
            worse: !!(d && d.significant && d.absGap > 0),
            prior: x.prior,
          };
        }),
      })),
    })),
    composite: r.composite,
    notes: r.notes || [],
  };
}

async function show(params) {
  if (!params.getAll("measure").length) { setStatus("idle", "Choose a measure and a period."); return; }
  setStatus("loading", "Computing the equity report…");
  history.replaceState(null, "", "?" + params.toString());
  const q = new URLSearchParams(params);
  q.set("output", "dashboard");
  const report = await api("/$equity-report?" + q.toString(), "application/json");
  const model = normalize(report);
  renderMeasures(model);
  if (model.composite) {
    const c = model.composite;
    $("#measures").append(el("p", { class: "summary", id: "composite", text: `Composite ${num(c.score, 1)} = quality ${num(c.quality, 1)} weighted ${num(1 - c.equityWeight, 2)} + equity ${num(c.equity, 1)} weighted ${num(c.equityWeight, 2)}.` }));
  }
  for (const n of model.notes) $("#measures").append(el("p", { class: "note", text: n }));
  await renderGaps(params);
  const charts = document.querySelectorAll("canvas[data-chart-status=rendered]").length;
  setStatus("ready", `${model.measures.length} measure(s), ${charts} chart(s).`);
}

async function main() {
  const params = new URLSearchParams(location.search);
  const tok = params.get("token");
  if (tok) { sessionStorage.setItem("equitas.token", tok); params.delete("token"); }
  if (typeof Chart === "undefined") {
    setStatus("error", "The chart library is missing from this build: run `make ui` and rebuild.");
    return;
  }
  try {
    await loadControls(params);
    $("#controls").addEventListener("submit", (ev) => {
      ev.preventDefault();
      if ($("#token").value) sessionStorage.setItem("equitas.token", $("#token").value.trim());
      show(formParams()).catch((e) => setStatus("error", e.message));
    });
    await show(params);
  } catch (e) {
    setStatus("error", e.message);
  }
}

document.addEventListener("DOMContentLoaded", main);
