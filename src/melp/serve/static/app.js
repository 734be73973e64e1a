// melp serve page: upload an ECG, draw it on ECG paper, list findings, link report sentences to beats.
// No framework, no build step: plain DOM and SVG. All user-visible text goes through textContent.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const MM_PER_S = 25;       // paper speed
const MM_PER_MV = 10;      // gain
const ROW_MM = 15;         // height of one lead's row
const LEFT_MM = 12;        // margin for the lead name and the 1 mV calibration pulse
const TOP_MM = 6;          // band for beat ticks and labels
const BEAT_HALF_S = 0.16;  // half width of a highlighted beat
const SHADE_FROM = 1.05;   // shade frames a sentence attends to at least 1.05 x uniform (as the demo report)
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];

const $ = (id) => document.getElementById(id);
const state = { files: null, result: null, pinned: null, upload: 0 };

function el(tag, attrs = {}, text = null) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function fmt(x, digits = 3) { return Number(x).toFixed(digits); }

function setStatus(text) { $("status").textContent = text; }

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function loadModelInfo() {
  try {
    const res = await fetch("/api/model");
    const card = await res.json();
    const id = card.identity || {};
    const parts = [id.model_dir || "model", card.presets && card.presets.matches ? `preset ${card.presets.matches}` : null,
      `${id.fs} Hz · ${id.seconds} s windows`, `${(id.n_parameters / 1e6).toFixed(1)} M parameters`,
      `ECG tower on ${card.backend.name}`, id.has_text ? null : "encoder only"];
    $("model-info").textContent = parts.filter(Boolean).join(" · ");
  } catch (err) {
    $("model-info").textContent = "model card unavailable";
  }
}

async function predict(files, { labels = "", report = true } = {}) {
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  form.append("labels", labels);
  form.append("report", report ? "true" : "false");
  const res = await fetch("/api/predict", { method: "POST", body: form });
  let body = null;
  try { body = await res.json(); } catch (err) { body = null; }
  if (!res.ok) {
    const detail = body && body.detail ? body.detail : `the server answered ${res.status}`;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return body;
}

// Two requests: the reading, tracing and findings first (no report: a fraction of a second), then the
// report with its sentence attention (a beam search: most of a prediction's time).
async function handleFiles(files) {
  if (!files || !files.length) return;
  const token = ++state.upload;
  state.files = Array.from(files);
  state.result = null;
  state.pinned = null;
  showError("");
  const names = state.files.map((f) => f.name).join(", ");
  setStatus(`Reading ${names}…`);
  const t0 = performance.now();
  const labels = $("labels").value;
  try {
    const first = await predict(state.files, { labels, report: false });
    if (token !== state.upload) return;
    state.result = first;
    render(first, { pending: true });
    setStatus(`${names}: read and scored in ${Math.round(performance.now() - t0)} ms; writing the report…`);
    const full = await predict(state.files, { labels, report: true });
    if (token !== state.upload) return;
    state.result = full;
    render(full, { pending: false });
    setStatus(`${names}: findings in ${Math.round(first.timing_ms.total)} ms, report in ${Math.round(performance.now() - t0)} ms.`);
  } catch (err) {
    if (token !== state.upload) return;
    $("result").hidden = state.result === null;
    setStatus("");
    showError(err.message);
  }
}

async function rescore(event) {
  event.preventDefault();
  if (!state.files || !state.result) return;
  const button = $("rescore");
  button.disabled = true;
  showError("");
  setStatus("Scoring labels…");
  try {
    const result = await predict(state.files, { labels: $("labels").value, report: false });
    state.result.findings = result.findings;
    renderFindings(result.findings);
    setStatus(`Re-scored ${result.findings.custom_labels.length} own label(s).`);
  } catch (err) {
    setStatus("");
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

function render(result, { pending = false } = {}) {
  $("result").hidden = false;
  renderReading(result.readings);
  renderTracing(result);
  if (pending) {
    $("report").replaceChildren(el("p", { class: "unavailable" }, "Writing the report…"));
  } else {
    renderReport(result.report, result.attention);
  }
  renderFindings(result.findings);
  renderEmbedding(result.embedding);
  applySentence(null);
}

function renderReading(r) {
  const dl = $("reading");
  dl.replaceChildren();
  const rows = [
    ["file", r.path],
    ["format", r.format],
    ["sampling rate", `${r.fs} Hz`],
    ["duration", `${fmt(r.duration_s, 2)} s (${r.n_samples} samples)`],
    ["units", r.units],
    ["leads found", `${r.leads_found.length}: ${r.leads_found.join(", ")}`],
    ["leads missing", r.leads_missing.length ? r.leads_missing.join(", ") : "none"],
  ];
  if (r.leads_derived && r.leads_derived.length) rows.push(["derived", r.leads_derived.join(", ")]);
  if (r.windows) rows.push(["model windows", `${r.windows.n_windows} × ${fmt(r.windows.window_s, 1)} s (${r.windows.length_policy})`]);
  const statements = r.metadata && r.metadata.statements;
  if (statements && statements.length) rows.push(["cart statements", statements.join("; ")]);
  for (const [k, v] of rows) { dl.append(el("dt", {}, k), el("dd", {}, String(v))); }
  const problems = $("problems");
  problems.replaceChildren();
  const items = [...(r.leads_missing.length ? [`missing lead(s): ${r.leads_missing.join(", ")}`] : []), ...r.problems];
  for (const p of new Set(items)) problems.append(el("li", {}, p));
  $("problems-box").hidden = items.length === 0;
}

function renderTracing(result) {
  const sig = result.signal;
  const svg = $("tracing");
  svg.replaceChildren();
  const width = LEFT_MM + sig.duration_s * MM_PER_S + 2;
  const height = TOP_MM + ROW_MM * sig.lead_names.length + 3;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const defs = el("svg:defs");
  const minor = el("svg:pattern", { id: "grid-minor", width: 1, height: 1, patternUnits: "userSpaceOnUse" });
  minor.append(el("svg:path", { d: "M 1 0 L 0 0 0 1", fill: "none", stroke: "#f4c7c1", "stroke-width": 0.05 }));
  const major = el("svg:pattern", { id: "grid-major", width: 5, height: 5, patternUnits: "userSpaceOnUse" });
  major.append(el("svg:rect", { width: 5, height: 5, fill: "url(#grid-minor)" }),
    el("svg:path", { d: "M 5 0 L 0 0 0 5", fill: "none", stroke: "#e58f86", "stroke-width": 0.13 }));
  defs.append(minor, major);
  svg.append(defs, el("svg:rect", { x: 0, y: 0, width, height, fill: "url(#grid-major)" }));
  svg.append(el("svg:g", { id: "attention" }));
  const ticks = el("svg:g", { id: "beats" });
  const beats = result.attention && result.attention.available ? result.attention.beats_s : [];
  beats.forEach((t, i) => {
    if (t > sig.duration_s) return;
    const x = LEFT_MM + t * MM_PER_S;
    ticks.append(el("svg:path", { class: "beat-tick", d: `M ${x - 0.8} 1.2 L ${x + 0.8} 1.2 L ${x} 2.6 Z`, "data-beat": i + 1 }));
  });
  svg.append(ticks);
  const traces = el("svg:g", { id: "traces" });
  sig.lead_names.forEach((name, row) => {
    const base = TOP_MM + ROW_MM * row + ROW_MM * 0.6;
    traces.append(el("svg:text", { class: "lead-label", x: 1, y: base - 3.2 }, name));
    traces.append(el("svg:path", { class: "cal", d: `M 4 ${base} L 5 ${base} L 5 ${base - MM_PER_MV} L 10 ${base - MM_PER_MV} L 10 ${base} L 11 ${base}` }));
    const values = sig.leads[row];
    if (!values) {
      traces.append(el("svg:text", { class: "missing-label", x: LEFT_MM + 2, y: base - 1 }, `lead ${name} missing in the file`));
      return;
    }
    const step = MM_PER_S / sig.fs;
    const pts = new Array(values.length);
    for (let i = 0; i < values.length; i++) pts[i] = `${fmt(LEFT_MM + i * step, 2)},${fmt(base - values[i] * MM_PER_MV, 2)}`;
    traces.append(el("svg:polyline", { class: "trace", points: pts.join(" "), "data-lead": name }));
  });
  svg.append(traces, el("svg:g", { id: "highlights" }));
  const note = sig.record_duration_s > sig.duration_s + 1e-6
    ? `Showing the first ${fmt(sig.duration_s, 1)} s of ${fmt(sig.record_duration_s, 1)} s (the window the report describes).`
    : `${fmt(sig.duration_s, 1)} s at ${sig.fs} Hz; ▼ marks detected beats.`;
  $("tracing-note").textContent = note;
}

function renderReport(report, attention) {
  const box = $("report");
  box.replaceChildren();
  if (!report.available) {
    box.append(el("p", { class: "unavailable" }, `No report: ${report.reason}`));
    return;
  }
  if (!attention.available) {
    box.append(el("p", {}, report.text || "(empty report)"));
    box.append(el("p", { class: "unavailable" }, `No sentence attention: ${attention.reason}`));
    return;
  }
  attention.sentences.forEach((s, i) => {
    const span = el("span", { class: "sentence", tabindex: 0, "data-index": i, "data-beats": s.beats_s.join(" ") }, s.sentence);
    span.style.borderBottomColor = COLOURS[i % COLOURS.length];
    span.addEventListener("mouseenter", () => applySentence(i));
    span.addEventListener("mouseleave", () => applySentence(state.pinned));
    span.addEventListener("focus", () => applySentence(i));
    span.addEventListener("click", () => { state.pinned = state.pinned === i ? null : i; applySentence(state.pinned); });
    span.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); span.click(); } });
    box.append(span, document.createTextNode(" "));
  });
}

function applySentence(index) {
  const result = state.result;
  const attnLayer = $("attention");
  const hlLayer = $("highlights");
  if (!attnLayer || !hlLayer) return;
  attnLayer.replaceChildren();
  hlLayer.replaceChildren();
  for (const span of document.querySelectorAll(".sentence")) span.classList.toggle("active", Number(span.dataset.index) === index);
  const info = $("sentence-info");
  if (index === null || !result || !result.attention.available) { info.textContent = ""; return; }
  const sentence = result.attention.sentences[index];
  const colour = COLOURS[index % COLOURS.length];
  const sig = result.signal;
  const height = TOP_MM + ROW_MM * sig.lead_names.length;
  const times = result.attention.frame_times_s;
  const half = times.length > 1 ? (times[1] - times[0]) / 2 : sig.duration_s / 2;
  const peak = Math.max(...sentence.attention, SHADE_FROM + 1e-9);
  sentence.attention.forEach((a, n) => {
    if (a < SHADE_FROM || times[n] - half > sig.duration_s) return;
    const x = LEFT_MM + (times[n] - half) * MM_PER_S;
    const opacity = 0.06 + 0.3 * (a - SHADE_FROM) / (peak - SHADE_FROM);
    attnLayer.append(el("svg:rect", { class: "attn-band", x: fmt(x, 2), y: TOP_MM - 1, width: fmt(2 * half * MM_PER_S, 2),
      height: height - TOP_MM + 1, fill: colour, "fill-opacity": fmt(opacity, 3) }));
  });
  const all = result.attention.beats_s;
  sentence.beats_s.forEach((t) => {
    if (t > sig.duration_s) return;
    const number = all.findIndex((b) => Math.abs(b - t) < 1e-3) + 1;
    const x = LEFT_MM + (t - BEAT_HALF_S) * MM_PER_S;
    hlLayer.append(el("svg:rect", { class: "beat-highlight", x: fmt(x, 2), y: TOP_MM - 1, width: fmt(2 * BEAT_HALF_S * MM_PER_S, 2),
      height: height - TOP_MM + 1, fill: colour, stroke: colour, rx: 0.8, "data-time": t }));
    hlLayer.append(el("svg:text", { class: "beat-label", x: fmt(x + 0.6, 2), y: TOP_MM - 1.6, fill: colour }, number > 0 ? `beat ${number}` : "beat"));
  });
  const beats = sentence.beats_s.length
    ? `attends most to the beat(s) at ${sentence.beats_s.map((t) => `${fmt(t, 2)} s`).join(", ")}`
    : "attends to no single beat more than 1.05× uniform";
  info.textContent = `Sentence ${index + 1} ${beats}; peak attention ${fmt(sentence.peak, 2)}× uniform. Shading: attention over time.`;
}

function renderFindings(findings) {
  const list = $("findings");
  list.replaceChildren();
  if (!findings.available) {
    list.append(el("li", { class: "unavailable" }, `Zero-shot unavailable: ${findings.reason}`));
    return;
  }
  for (const r of findings.ranked) {
    const li = el("li", { class: r.custom ? "custom" : "", title: `${r.label} (${r.code}): cosine ${fmt(r.score, 4)}` });
    const name = el("span", { class: "name" }, r.label);
    if (r.custom) name.append(el("span", { class: "badge" }, "own"));
    // a bar centred on 0 over the cosine's range [-1, 1]: right of the centre positive, left negative
    const bar = el("span", { class: "bar" });
    const fill = el("span", { class: r.score >= 0 ? "pos" : "neg" });
    const half = Math.min(50, 50 * Math.abs(r.score));
    fill.style.width = `${Math.max(half, 0.8)}%`;
    fill.style.left = r.score >= 0 ? "50%" : `${50 - half}%`;
    bar.append(fill);
    li.append(name, bar, el("span", { class: "score" }, fmt(r.score, 3)));
    list.append(li);
  }
}

function renderEmbedding(embedding) {
  const box = $("embedding");
  if (!embedding) { box.textContent = ""; return; }
  box.textContent = `ECG embedding: ${embedding.dim}-d, L2-normalised, mean over ${embedding.n_windows} window(s); first values ` +
    embedding.ecg_latent.slice(0, 6).map((v) => fmt(v, 3)).join(", ") + " …";
}

function setUp() {
  const drop = $("drop");
  const input = $("file");
  $("pick").addEventListener("click", () => input.click());
  input.addEventListener("change", () => handleFiles(input.files));
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter") input.click(); });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => handleFiles(e.dataTransfer.files));
  $("label-form").addEventListener("submit", rescore);
  loadModelInfo();
}

setUp();
