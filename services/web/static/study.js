// One study: its attributes, its series with instance counts and thumbnails (QIDO-RS), and an
// instance's attributes (Retrieve Metadata, PS3.18 10.4) with keywords from the dictionary.
"use strict";
(() => {
  const study = document.getElementById("study").dataset.study;
  const seriesBody = document.querySelector("#series tbody");
  const section = document.getElementById("attributes");
  let dictionary = null;

  async function keywords() {
    if (!dictionary) dictionary = (await fetch("/console/dictionary.json")).json();
    return dictionary;
  }

  function describe(item) {
    const list = document.createElement("dl");
    const rows = [
      ["Patient", PF.personName(item, "00100010")],
      ["Patient ID", PF.value(item, "00100020")],
      ["Birth date", PF.date(PF.value(item, "00100030"))],
      ["Sex", PF.value(item, "00100040")],
      ["Study date", PF.date(PF.value(item, "00080020"))],
      ["Description", PF.value(item, "00081030")],
      ["Accession", PF.value(item, "00080050")],
      ["Modalities", PF.values(item, "00080061")],
      ["Series / instances", `${PF.value(item, "00201206")} / ${PF.value(item, "00201208")}`],
      ["Study Instance UID", study],
    ];
    for (const [term, text] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = text;
      list.append(dt, dd);
    }
    document.getElementById("study").replaceChildren(list);
    document.getElementById("title").textContent = PF.personName(item, "00100010") || "Study";
  }

  function shown(element) {
    if (!element) return "";
    if (element.vr === "SQ") return `${(element.Value || []).length} item(s)`;
    if (element.BulkDataURI || element.InlineBinary) return "(bulk data)";
    return (element.Value || []).map((v) => (typeof v === "object" ? v.Alphabetic || "" : String(v))).join("\\");
  }

  async function attributes(series, instance, label) {
    const names = await keywords();
    const { items } = await PF.dicom(`/studies/${study}/series/${series}/instances/${instance}/metadata`);
    const tbody = section.querySelector("tbody");
    tbody.replaceChildren();
    for (const [tag, element] of Object.entries(items[0] || {}).sort()) {
      const tr = tbody.insertRow();
      PF.cell(tr, `(${tag.slice(0, 4)},${tag.slice(4)})`);
      PF.cell(tr, names[tag] || "");
      PF.cell(tr, element.vr || "");
      PF.cell(tr, shown(element));
    }
    document.getElementById("attributes-title").textContent = `Attributes of ${label}`;
    section.hidden = false;
    section.scrollIntoView();
  }

  async function showAttributes(series, label) {
    const { items } = await PF.dicom(`/studies/${study}/series/${series}/instances?limit=1`);
    if (items.length) await attributes(series, PF.value(items[0], "00080018"), label);
  }

  async function load() {
    const found = await PF.dicom(`/studies?StudyInstanceUID=${study}&includefield=all`);
    if (!found.items.length) throw new Error("This study is not in the archive (or not on this site).");
    describe(found.items[0]);
    const { items } = await PF.dicom(`/studies/${study}/series?includefield=all`);
    items.sort((a, b) => Number(PF.value(a, "00200011")) - Number(PF.value(b, "00200011")));
    for (const item of items) {
      const series = PF.value(item, "0020000E");
      const label = `series ${PF.value(item, "00200011")} ${PF.value(item, "0008103E")}`.trim();
      const tr = seriesBody.insertRow();
      PF.cell(tr, PF.thumbnail(`/studies/${study}/series/${series}/thumbnail?viewport=64,64`, `Thumbnail of ${label}`));
      PF.cell(tr, PF.value(item, "00200011"), "number");
      PF.cell(tr, PF.value(item, "00080060"));
      PF.cell(tr, PF.value(item, "0008103E"));
      PF.cell(tr, PF.value(item, "00201209"), "number");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Attributes";
      button.addEventListener("click", () => showAttributes(series, label).catch(PF.showError));
      PF.cell(tr, button);
    }
  }

  const open = document.getElementById("open");
  if (open) open.href = PF.viewerUrl(study);
  const remove = document.getElementById("delete");
  if (remove) {
    // Offered only to a principal with the delete right on this site (Delete Study answers
    // 204 once applied, 202 once accepted by the pipeline).
    PF.rights()
      .then((held) => {
        remove.hidden = !held.includes("delete");
        remove.dataset.allowed = String(!remove.hidden);
      })
      .catch(PF.showError);
    remove.addEventListener("click", async () => {
      if (!confirm("Delete this study from the archive?")) return;
      const answer = await PF.request(`${PF.root()}/studies/${study}`, { method: "DELETE" });
      if (answer.ok) location.assign("/");
      else PF.showError(await PF.reason(answer));
    });
  }
  load().catch(PF.showError);
})();
