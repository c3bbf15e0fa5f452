// pacsflow console: its configuration, sign-in (OpenID Connect, authorization code with PKCE,
// RFC 7636) and calls to the archive's own DICOMweb API (PS3.18). Shared by every page.
"use strict";
const PF = (() => {
  const config = JSON.parse(document.getElementById("pf-config").textContent);
  const TOKEN = "pacsflow.token";
  const PENDING = "pacsflow.sign-in";
  let site = sessionStorage.getItem("pacsflow.site") || config.site;
  if (!(site in config.roots)) site = config.site;

  const absolute = (root) => (root.includes("://") ? root : location.origin + root);
  const root = () => absolute(config.roots[site]);
  const b64url = (bytes) =>
    btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));

  function token() {
    const saved = JSON.parse(sessionStorage.getItem(TOKEN) || "null");
    return saved && saved.expires > Date.now() / 1000 + 10 ? saved.access_token : null;
  }

  async function discovery() {
    const answer = await fetch(config.auth.issuer + "/.well-known/openid-configuration");
    if (!answer.ok) throw new Error(`the OpenID provider answered ${answer.status}`);
    return answer.json();
  }

  async function signIn() {
    const provider = await discovery();
    const verifier = random(48);
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    const state = random(16);
    sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, back: location.pathname }));
    const query = new URLSearchParams({
      response_type: "code",
      client_id: config.auth.clientId,
      redirect_uri: location.origin + "/console/callback",
      scope: config.auth.scope,
      state,
      code_challenge: b64url(new Uint8Array(digest)),
      code_challenge_method: "S256",
    });
    if (config.auth.resource) query.set("resource", config.auth.resource);
    location.assign(provider.authorization_endpoint + "?" + query);
    return new Promise(() => {}); // the page is leaving
  }

  async function finishSignIn() {
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    sessionStorage.removeItem(PENDING);
    const answer = new URLSearchParams(location.search);
    if (!pending || answer.get("state") !== pending.state) throw new Error("sign-in state mismatch");
    if (answer.get("error")) throw new Error(`sign-in refused: ${answer.get("error")}`);
    const provider = await discovery();
    const body = new URLSearchParams({
      grant_type: "authorization_code",
      code: answer.get("code") || "",
      redirect_uri: location.origin + "/console/callback",
      client_id: config.auth.clientId,
      code_verifier: pending.verifier,
    });
    if (config.auth.resource) body.set("resource", config.auth.resource);
    const reply = await fetch(provider.token_endpoint, { method: "POST", body });
    if (!reply.ok) throw new Error(`the token endpoint answered ${reply.status}`);
    const granted = await reply.json();
    const expires = Date.now() / 1000 + (granted.expires_in || 300);
    sessionStorage.setItem(TOKEN, JSON.stringify({ access_token: granted.access_token, expires }));
    location.replace(pending.back || "/");
  }

  async function headers(extra = {}) {
    if (!config.auth) return extra;
    const bearer = token();
    if (!bearer) await signIn();
    return { ...extra, Authorization: "Bearer " + bearer };
  }

  async function request(url, options = {}) {
    const answer = await fetch(url, { ...options, headers: await headers(options.headers) });
    if (answer.status === 401 && config.auth) {
      sessionStorage.removeItem(TOKEN);
      await signIn();
    }
    return answer;
  }

  async function reason(answer) {
    const text = (await answer.text()).slice(0, 300);
    try {
      const body = JSON.parse(text);
      return `${answer.status}: ${body.detail || body.message || text}`;
    } catch {
      return `${answer.status}: ${text || answer.statusText}`;
    }
  }

  async function dicom(path) {
    const answer = await request(root() + path, { headers: { Accept: "application/dicom+json" } });
    if (answer.status === 204) return { items: [], total: 0 };
    if (!answer.ok) throw new Error(await reason(answer));
    const items = await answer.json();
    return { items, total: Number(answer.headers.get("X-Total-Count") ?? items.length) };
  }

  async function image(path) {
    const answer = await request(root() + path, { headers: { Accept: "image/jpeg, image/png" } });
    if (!answer.ok) return null;
    return URL.createObjectURL(await answer.blob());
  }

  // The principal's rights on the chosen site (read, write, delete, admin): which actions to offer.
  async function rights() {
    const answer = await request("/console/rights.json", { headers: { Accept: "application/json" } });
    if (!answer.ok) throw new Error(await reason(answer));
    const body = await answer.json();
    return body.rights[site] || [];
  }

  function value(item, tag) {
    const element = item[tag];
    const first = element && element.Value ? element.Value[0] : undefined;
    if (first === undefined || first === null) return "";
    if (typeof first === "object") return first.Alphabetic || first.Ideographic || "";
    return String(first);
  }

  const values = (item, tag) => ((item[tag] && item[tag].Value) || []).join("\\");
  const personName = (item, tag) => value(item, tag).replace(/\^+/g, ", ").replace(/, $/, "");
  const date = (text) => (text.length === 8 ? `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6)}` : text);

  function cell(row, content, className) {
    const td = row.insertCell();
    if (content instanceof Node) td.append(content);
    else td.textContent = content;
    if (className) td.className = className;
    return td;
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function thumbnail(path, label) {
    const img = document.createElement("img");
    img.className = "thumb";
    img.alt = label;
    img.width = img.height = 64;
    image(path).then((url) => {
      if (url) img.src = url;
      else img.classList.add("none");
    });
    return img;
  }

  function showError(error) {
    const box = document.getElementById("pf-error");
    box.textContent = String(error && error.message ? error.message : error);
    box.hidden = false;
  }

  function clearError() {
    document.getElementById("pf-error").hidden = true;
  }

  function setup() {
    const picker = document.getElementById("pf-site");
    if (picker) {
      picker.value = site;
      picker.addEventListener("change", () => {
        sessionStorage.setItem("pacsflow.site", picker.value);
        location.reload();
      });
    }
    document.getElementById("pf-root").href = root() + "/studies";
    const button = document.getElementById("pf-sign");
    if (button) {
      button.hidden = false;
      button.textContent = token() ? "Sign out" : "Sign in";
      button.addEventListener("click", () => {
        if (token()) {
          sessionStorage.removeItem(TOKEN);
          location.assign("/");
        } else signIn().catch(showError);
      });
    }
  }

  document.addEventListener("DOMContentLoaded", setup);
  window.addEventListener("unhandledrejection", (event) => showError(event.reason));

  return {
    config, root, site: () => site, request, dicom, image, value, values, personName, date,
    cell, link, thumbnail, showError, clearError, finishSignIn, reason, headers, rights,
    viewerUrl: (study) => `/viewer?StudyInstanceUIDs=${encodeURIComponent(study)}`
      + (site === config.site ? "" : `&datasources=${encodeURIComponent(config.sources[site])}`),
  };
})();
