// The status page: /console/status.json every few seconds, counters turned into rates, plotted
// with uPlot (vendored, static/vendor/uplot-1.6.32).
"use strict";
(() => {
  const EVERY_MS = 3000;
  const KEEP = 200;
  const series = { t: [], published: [], processed: [], lag: [] };
  let last = null;
  let ratePlot = null;
  let lagPlot = null;

  function list(id, pairs) {
    const dl = document.getElementById(id);
    dl.replaceChildren();
    for (const [term, text, bad] of pairs) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = text;
      if (bad) dd.className = "bad";
      dl.append(dt, dd);
    }
  }

  const bytes = (n) => {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  };

  function width(element) {
    return Math.max(240, element.clientWidth || 320);
  }

  function plot(element, labels, data) {
    const options = {
      width: width(element),
      height: 180,
      series: [{}, ...labels.map((label, i) => ({ label, stroke: ["#1769aa", "#c0392b"][i], width: 2 }))],
      axes: [{}, { size: 60 }],
      scales: { x: { time: true } },
    };
    return new uPlot(options, data, element);
  }

  function render(now) {
    list("archive", Object.entries(now.archive).map(([k, v]) => [k, k === "error" ? v : String(v), k === "error"]));
    const ingest = now.ingest;
    list("ingest", ingest.error ? [["error", ingest.error, true]] : [
      ["published", String(ingest.published)],
      ["processed", String(ingest.processed)],
      ["lag", String(ingest.lag), ingest.lag > 0],
      ["roles here", now.roles.join(", ")],
    ]);
    const storage = now.storage;
    const objects = storage.objects;
    list("storage", [
      ["objects", objects.kind === "file" ? `${bytes(objects.bytes)} in ${objects.files} files` : objects.note || objects.kind],
      ["data volume", storage.data_dir.error || `${bytes(storage.data_dir.used)} used, ${bytes(storage.data_dir.free)} free`, Boolean(storage.data_dir.error)],
    ]);
    list("backends", Object.entries(now.backends).map(([name, b]) => [name, b.ready ? "ready" : `not ready: ${b.reason}`, !b.ready]));
    const dead = now.dead_letters;
    document.getElementById("dead-total").textContent = dead.error ? `(${dead.error})` : `(${dead.total})`;
    const tbody = document.querySelector("#dead tbody");
    tbody.replaceChildren();
    for (const letter of dead.recent || []) {
      const tr = tbody.insertRow();
      PF.cell(tr, `${letter.reason} ${PF.config.reasons[letter.reason] || ""}`.trim());
      PF.cell(tr, letter.message);
      PF.cell(tr, letter.site);
      PF.cell(tr, letter.study_uid ? PF.link(`/console/studies/${letter.study_uid}`, letter.study_uid) : "");
      PF.cell(tr, letter.sop_uid);
      PF.cell(tr, `${letter.partition}:${letter.offset}`);
    }
    document.getElementById("updated").textContent = `Updated ${new Date(now.time * 1000).toLocaleTimeString()}`;
  }

  function record(now) {
    if (now.ingest.error) return;
    if (last && !last.ingest.error) {
      const seconds = Math.max(now.time - last.time, 0.001);
      series.t.push(now.time);
      series.published.push((now.ingest.published - last.ingest.published) / seconds);
      series.processed.push((now.ingest.processed - last.ingest.processed) / seconds);
      series.lag.push(now.ingest.lag);
      for (const key of Object.keys(series)) if (series[key].length > KEEP) series[key].shift();
      const rates = [series.t, series.published, series.processed];
      const lags = [series.t, series.lag];
      if (!ratePlot) {
        ratePlot = plot(document.getElementById("rate-plot"), ["published", "processed"], rates);
        lagPlot = plot(document.getElementById("lag-plot"), ["lag"], lags);
      } else {
        ratePlot.setData(rates);
        lagPlot.setData(lags);
      }
    }
    last = now;
  }

  async function tick() {
    try {
      const answer = await PF.request("/console/status.json", { headers: { Accept: "application/json" } });
      if (!answer.ok) throw new Error(await PF.reason(answer));
      const now = await answer.json();
      PF.clearError();
      render(now);
      record(now);
    } catch (error) {
      PF.showError(error);
    } finally {
      setTimeout(tick, EVERY_MS);
    }
  }

  window.addEventListener("resize", () => {
    for (const [chart, id] of [[ratePlot, "rate-plot"], [lagPlot, "lag-plot"]]) {
      if (chart) chart.setSize({ width: width(document.getElementById(id)), height: 180 });
    }
  });
  tick();
})();
