// The hearing view (twin_web/hearing.py): fills the page from data.json and re-hashes every evidence file
// in the browser (WebCrypto SHA-256) against the hash the court bundle lists: ✓ verified, ✗ failed.
// Every URL keeps the page's own query (the signed link's exp and sig).
"use strict";

(function () {
  const base = document.body.dataset.base;
  const query = window.location.search;
  const url = (path) => base + path + query;
  const state = { items: 0, done: 0, failed: 0, ready: false };
  window.twinHearing = state;

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function check(item, row) {
    const cell = row.querySelector("td.check");
    let status = "failed";
    let why = "";
    try {
      if (!window.crypto || !window.crypto.subtle) throw new Error("this browser cannot hash here (needs https)");
      const resp = await fetch(url("/files/" + item.sha256), { credentials: "same-origin", cache: "no-store" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const got = hex(await window.crypto.subtle.digest("SHA-256", await resp.arrayBuffer()));
      status = got === item.sha256 ? "verified" : "failed";
      why = got === item.sha256 ? "" : "SHA-256 is " + got;
    } catch (err) {
      why = String(err.message || err);
    }
    row.dataset.status = status;
    cell.textContent = status === "verified" ? "✓ verified" : "✗ failed";
    if (why) cell.title = why;
    state.done += 1;
    if (status !== "verified") state.failed += 1;
  }

  async function main() {
    const resp = await fetch(url("/data.json"), { credentials: "same-origin", cache: "no-store" });
    if (!resp.ok) {
      document.getElementById("summary").textContent = "cannot load the hearing (HTTP " + resp.status + ")";
      state.ready = true;
      return;
    }
    const data = await resp.json();
    if (data.overlays.includes("map.png")) document.getElementById("overlay-map").src = url("/overlays/map.png");
    if (data.overlays.includes("scene.png")) document.getElementById("overlay-scene").src = url("/overlays/scene.png");
    const tbody = document.querySelector("#evidence tbody");
    state.items = data.items.length;
    const rows = data.items.map((item) => {
      const row = el("tr", null, { "data-sha256": item.sha256, "data-status": "pending" });
      row.append(
        el("td", item.marker || ""),
        el("td", item.name),
        el("td", item.description),
        el("td", item.acquired_at),
        el("td", item.sha256, { class: "hash" }),
        el("td", "… checking", { class: "check" })
      );
      tbody.append(row);
      return [item, row];
    });
    const timeline = document.getElementById("timeline");
    for (const ev of data.timeline) {
      const li = el("li");
      li.append(el("time", ev.time), document.createTextNode(ev.what));
      timeline.append(li);
    }
    document.getElementById("signing").textContent =
      "Bundle SHA-256 " + data.bundle_sha256 + " · signed by " + data.agency + " (key " + data.key_fingerprint +
      ") · link valid until " + data.expires;
    await Promise.all(rows.map(([item, row]) => check(item, row)));
    document.getElementById("summary").textContent =
      state.failed ? state.failed + " of " + state.items + " items FAILED verification" : "all " + state.items + " items verified";
    state.ready = true;
  }

  main().catch((err) => {
    document.getElementById("summary").textContent = "error: " + err;
    state.ready = true;
  });
})();
