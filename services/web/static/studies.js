// The study list: Search for Studies (PS3.18 10.6) with paging; search terms stay out of the URL.
"use strict";
(() => {
  const PAGE = 25;
  const FIELDS = ["00081030", "00201206", "00201208", "00080061"].map((t) => `includefield=${t}`).join("&");
  const form = document.getElementById("search");
  const body = document.querySelector("#studies tbody");
  const count = document.getElementById("count");
  const previous = document.getElementById("previous");
  const next = document.getElementById("next");
  const pageLabel = document.getElementById("page");
  let offset = 0;

  function query() {
    const data = new FormData(form);
    const terms = new URLSearchParams();
    const name = String(data.get("PatientName") || "").trim();
    if (name) terms.set("PatientName", /[*?]$/.test(name) ? name : name + "*");
    for (const key of ["PatientID", "ModalitiesInStudy", "AccessionNumber"]) {
      const text = String(data.get(key) || "").trim();
      if (text) terms.set(key, text);
    }
    const from = String(data.get("from") || "").replaceAll("-", "");
    const to = String(data.get("to") || "").replaceAll("-", "");
    if (from || to) terms.set("StudyDate", from === to ? from : `${from}-${to}`);
    return terms;
  }

  function row(item) {
    const study = PF.value(item, "0020000D");
    const patient = PF.personName(item, "00100010") || "(no name)";
    const tr = body.insertRow();
    PF.cell(tr, PF.thumbnail(`/studies/${study}/thumbnail?viewport=64,64`, `Thumbnail of ${patient}`));
    PF.cell(tr, PF.link(`/console/studies/${study}`, patient));
    PF.cell(tr, PF.value(item, "00100020"));
    PF.cell(tr, PF.date(PF.value(item, "00080020")));
    PF.cell(tr, PF.values(item, "00080061"));
    PF.cell(tr, PF.value(item, "00081030"));
    PF.cell(tr, PF.value(item, "00080050"));
    PF.cell(tr, `${PF.value(item, "00201206")} / ${PF.value(item, "00201208")}`, "number");
    if (PF.config.viewer) PF.cell(tr, PF.link(PF.viewerUrl(study), "View"));
    else PF.cell(tr, "");
  }

  async function load() {
    PF.clearError();
    const terms = query();
    terms.set("limit", String(PAGE));
    terms.set("offset", String(offset));
    body.setAttribute("aria-busy", "true");
    performance.mark("pacsflow:studies-asked"); // bench/console_list.py measures these
    try {
      const { items, total } = await PF.dicom(`/studies?${terms}&${FIELDS}`);
      body.replaceChildren();
      items.forEach(row);
      const last = Math.min(offset + items.length, total);
      count.textContent = total ? `${total} studies; showing ${offset + 1}–${last}` : "No studies found";
      pageLabel.textContent = total ? `Page ${Math.floor(offset / PAGE) + 1} of ${Math.ceil(total / PAGE)}` : "";
      previous.disabled = offset === 0;
      next.disabled = offset + PAGE >= total;
      performance.measure("pacsflow:studies-shown", "pacsflow:studies-asked");
    } catch (error) {
      PF.showError(error);
    } finally {
      body.removeAttribute("aria-busy");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    load();
  });
  form.addEventListener("reset", () => setTimeout(() => { offset = 0; load(); }));
  previous.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  next.addEventListener("click", () => { offset += PAGE; load(); });
  load();
})();
