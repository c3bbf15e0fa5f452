// Upload: each dropped or chosen file (folders walked) is one Store Instances request
// (STOW-RS, PS3.18 10.5) with its progress and the Store Instances Response's outcome.
"use strict";
(() => {
  const PARALLEL = 3;
  const drop = document.getElementById("drop");
  const body = document.querySelector("#uploads tbody");
  const summary = document.getElementById("summary");
  const queue = [];
  let running = 0;
  let stored = 0;
  let failed = 0;

  function outcome(response) {
    // Store Instances Response Module (PS3.18 10.5.3): Referenced/Failed SOP Sequences.
    const item = Array.isArray(response) ? response[0] : response;
    const sequence = (tag) => (item && item[tag] && item[tag].Value) || [];
    const failures = sequence("00081198");
    if (failures.length) {
      const reason = PF.value(failures[0], "00081197");
      const code = reason ? Number(reason).toString(16).toUpperCase().padStart(4, "0") : "";
      return { ok: false, text: `Failed ${code} ${PF.config.reasons[code] || ""}`.trim() };
    }
    const stored = sequence("00081199");
    if (stored.length) {
      const warning = PF.value(stored[0], "00081196");
      const study = item["00081190"] ? PF.value(item, "00081190").split("/studies/")[1] : "";
      const code = warning ? Number(warning).toString(16).toUpperCase().padStart(4, "0") : "";
      const text = code ? `Stored, warning ${code} ${PF.config.reasons[code] || ""}`.trim() : "Stored";
      return { ok: true, text, study: (study || "").split("/")[0] };
    }
    return { ok: false, text: "No outcome in the response" };
  }

  function detail(xhr) {
    try {
      const body = JSON.parse(xhr.responseText);
      return body.detail || body.message || "";
    } catch {
      return xhr.responseText.slice(0, 200);
    }
  }

  function done(row, ok, text, study) {
    row.cells[2].textContent = text;
    row.classList.add(ok ? "ok" : "failed");
    if (study) row.cells[3].replaceChildren(PF.link(`/console/studies/${study}`, "Open"));
    if (ok) stored += 1;
    else failed += 1;
    summary.textContent = `${stored} stored, ${failed} failed, ${queue.length + running - 1} waiting`;
  }

  async function send(file, row) {
    const boundary = "pacsflow-" + crypto.getRandomValues(new Uint32Array(2)).join("-");
    const head = `--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`;
    const data = new Blob([head, file, `\r\n--${boundary}--\r\n`]);
    const headers = await PF.headers({
      Accept: "application/dicom+json",
      "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`,
    });
    const progress = row.cells[1].firstChild;
    await new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${PF.root()}/studies`);
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) progress.value = event.loaded / event.total;
      };
      xhr.onload = () => {
        progress.value = 1;
        let parsed = null;
        try {
          parsed = JSON.parse(xhr.responseText);
        } catch {
          parsed = null;
        }
        if (parsed && (xhr.status === 200 || xhr.status === 202 || xhr.status === 409)) {
          const result = outcome(parsed);
          done(row, result.ok, result.ok ? result.text : `${result.text} (${xhr.status})`, result.study);
        } else {
          done(row, false, `${xhr.status}: ${detail(xhr)}`);
        }
        resolve();
      };
      xhr.onerror = () => {
        done(row, false, "The request did not complete");
        resolve();
      };
      xhr.send(data);
    });
  }

  function pump() {
    while (running < PARALLEL && queue.length) {
      const [file, row] = queue.shift();
      running += 1;
      send(file, row).finally(() => {
        running -= 1;
        pump();
      });
    }
  }

  function add(file, path) {
    const row = body.insertRow();
    PF.cell(row, path || file.name);
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", `Progress of ${path || file.name}`);
    PF.cell(row, bar);
    PF.cell(row, "Waiting");
    PF.cell(row, "");
    queue.push([file, row]);
  }

  async function walk(entry, into) {
    if (entry.isFile) {
      into.push(await new Promise((ok, bad) => entry.file((file) => ok([file, entry.fullPath.slice(1)]), bad)));
      return;
    }
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((ok, bad) => reader.readEntries(ok, bad));
      if (!batch.length) break;
      for (const child of batch) await walk(child, into);
    }
  }

  function start(files) {
    PF.clearError();
    for (const [file, path] of files) add(file, path);
    summary.textContent = `${stored} stored, ${failed} failed, ${queue.length + running} waiting`;
    pump();
  }

  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry());
    const files = [];
    if (entries.every(Boolean)) for (const entry of entries) await walk(entry, files);
    else for (const file of event.dataTransfer.files) files.push([file, file.name]);
    start(files);
  });
  for (const id of ["files", "folder"]) {
    const input = document.getElementById(id);
    input.addEventListener("change", () => {
      start([...input.files].map((file) => [file, file.webkitRelativePath || file.name]));
      input.value = "";
    });
  }
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      document.getElementById("files").click();
    }
  });
})();
