"""The bundle's offline viewer (``viewer.html``): the case, its overlays, and each item checked in the browser.

A page with no network access at all (no CDN, no fonts, no requests): it lists the
items from data embedded when the bundle was made, shows ``overlays/map.png`` and
``overlays/scene.png`` from beside it, and, once the user picks the unzipped folder
(or selects its files), re-computes the SHA-256 of every file the manifest lists with
WebCrypto (``crypto.subtle.digest``) and marks each item with a green ✓ or a red ✗:

* the item's file, custody record and transfers have the hashes listed;
* the record's and transfers' log leaves hold those hashes and their inclusion
  proofs lead to the root of the signed tree head;
* ``manifest.json``'s hash is the one the export leaf holds;
* the head's Ed25519 signature verifies with the bundled key, where the browser's
  WebCrypto has Ed25519 (recent Chromium, Firefox and Safari); otherwise it says so;
* the bundled key is the one the reader trusts: they type (or paste) the fingerprint
  the agency publishes, or open the page as ``viewer.html#fingerprint=HEX``. A page
  cannot know on its own whom to trust, so without a fingerprint it says, in the
  summary and on the key's line, that the bundle is only shown intact as signed by its
  own key and that who signed is not confirmed (a neither-green-nor-red "?"); with a
  fingerprint that is not the key's, every item is marked ✗.

``file://`` pages are a secure context in current browsers, so WebCrypto is available
when the page is opened from disk.
"""

from __future__ import annotations

import html
import json
from typing import Any

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>Court bundle: __TITLE__</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
td.mark { font-size: 1.4em; width: 1.5em; text-align: center; }
.ok { color: #0a7a28; } .bad { color: #c81414; } .wait { color: #888; } .warn { color: #a05a00; }
code { font-size: 0.85em; word-break: break-all; }
.overlays img { max-width: 49%; border: 1px solid #ccc; }
.marker { background: #0096a0; color: #fff; padding: 0 4px; font-weight: bold; }
#summary { font-size: 1.1em; padding: 0.5em; border: 1px solid #ccc; }
</style>
</head>
<body>
<h1>Court bundle: case <span id="case"></span></h1>
<p id="meta"></p>
<p>To check it: unzip the bundle, open this page from the unzipped folder, and choose that folder
(or select all its files). Every file is re-hashed in this browser; nothing leaves this computer.</p>
<p><label>Folder: <input type="file" id="folder" webkitdirectory directory multiple></label>
&nbsp; <label>or files: <input type="file" id="files" multiple></label></p>
<p><label>Fingerprint of the key you trust (the one <span id="agency-name"></span> publishes):
<input type="text" id="fingerprint" size="72" spellcheck="false" autocomplete="off" placeholder="64 hex digits"></label></p>
<div id="summary" class="wait">Not checked yet: choose the unzipped folder.</div>
<div id="head"></div>
<h2>Items</h2>
<table id="items"><thead><tr><th></th><th>Mark</th><th>Item</th><th>Category</th><th>Acquired</th><th>Place</th><th>Holder</th><th>SHA-256</th><th>Checks</th></tr></thead><tbody></tbody></table>
<h2>Other files</h2>
<table id="others"><thead><tr><th></th><th>File</th><th>SHA-256</th><th>Check</th></tr></thead><tbody></tbody></table>
<h2>Overlays</h2>
<div class="overlays"><img id="map" alt="map: overlays/map.png"> <img id="scene" alt="3D: overlays/scene.png"></div>
<script type="application/json" id="bundle-data">__DATA__</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("bundle-data").textContent);
const enc = new TextEncoder();
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
function hex(buf) { return Array.from(new Uint8Array(buf)).map((b) => b.toString(16).padStart(2, "0")).join(""); }
function unhex(s) { const out = new Uint8Array(s.length / 2); for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16); return out; }
async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }
function concat(...parts) { const n = parts.reduce((a, p) => a + p.length, 0); const out = new Uint8Array(n); let o = 0; for (const p of parts) { out.set(p, o); o += p.length; } return out; }
const leafHash = (data) => sha256(concat(new Uint8Array([0]), enc.encode(data)));
const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r));
function split(n) { let k = 1; while (k * 2 < n) k *= 2; return k; }
// RFC 6962 PATH, walked from the top to find each sibling's side, then folded from the leaf up
async function rootFromPath(leaf, index, size, path) {
  if (!(index >= 0 && index < size)) return null;
  const sides = []; let m = index, n = size;
  while (n > 1) { const k = split(n); if (m < k) { sides.push(true); n = k; } else { sides.push(false); m -= k; n -= k; } }
  if (sides.length !== path.length) return null;
  sides.reverse(); let h = leaf;
  for (let i = 0; i < path.length; i++) { const s = unhex(path[i]); h = sides[i] ? await nodeHash(h, s) : await nodeHash(s, h); }
  return hex(h);
}
function mark(td, ok, why) { td.textContent = ok ? "\u2713" : "\u2717"; td.className = "mark " + (ok ? "ok" : "bad"); td.title = why || ""; }

$("case").textContent = DATA.case_id;
$("agency-name").textContent = DATA.agency;
const given = new URLSearchParams(location.hash.slice(1)).get("fingerprint");
if (given) $("fingerprint").value = given;
const pinned = () => ($("fingerprint").value || "").replace(/[\s:]/g, "").toLowerCase();
$("meta").textContent = `Twin: ${DATA.twin.title || DATA.twin.name} (manifest SHA-256 ${DATA.twin.manifest_sha256}). Signed, it says, by ${DATA.agency} with the key of fingerprint ${DATA.public_key.fingerprint}: enter below the fingerprint ${DATA.agency} publishes to confirm it. Made ${DATA.created} by ${DATA.created_by}.`;
if (DATA.overlays) { $("map").src = DATA.overlays.map; $("scene").src = DATA.overlays.scene; }
const rows = new Map();
for (const it of DATA.items) {
  const tr = el("tr"); const td = el("td", "\u2026", "mark wait"); tr.appendChild(td);
  const mk = el("td"); if (it.marker) mk.appendChild(el("span", it.marker, "marker")); tr.appendChild(mk);
  const what = el("td"); what.appendChild(el("strong", it.name)); what.appendChild(el("div", it.description)); tr.appendChild(what);
  tr.appendChild(el("td", it.category + (it.derived ? " (derived)" : "")));
  tr.appendChild(el("td", it.acquired_at));
  tr.appendChild(el("td", it.place ? `${it.place.lon}, ${it.place.lat} \u2014 ${it.place.jurisdiction}` : ""));
  tr.appendChild(el("td", it.holder));
  const code = el("td"); code.appendChild(el("code", it.sha256)); tr.appendChild(code);
  const checks = el("td", "", "wait"); tr.appendChild(checks);
  $("items").tBodies[0].appendChild(tr); rows.set(it.sha256, { td, checks });
}
const itemPaths = new Set(DATA.items.flatMap((it) => [it.file, it.record, ...it.transfers]));
const otherRows = new Map();
for (const f of DATA.files) {
  if (itemPaths.has(f.path)) continue;
  const tr = el("tr"); const td = el("td", "\u2026", "mark wait"); tr.appendChild(td);
  tr.appendChild(el("td", f.path)); const c = el("td"); c.appendChild(el("code", f.sha256)); tr.appendChild(c);
  const note = el("td", "", "wait"); tr.appendChild(note); $("others").tBodies[0].appendChild(tr); otherRows.set(f.path, { td, note });
}

function byPath(fileList) {
  const map = new Map();
  for (const f of fileList) {
    const rel = f.webkitRelativePath || f.name;
    const parts = rel.split("/");
    const candidates = f.webkitRelativePath ? [parts.slice(1).join("/"), rel] : [rel];
    for (const c of candidates) map.set(c, f);
  }
  return map;
}
function find(map, path) {
  if (map.has(path)) return map.get(path);
  const base = path.split("/").pop();  // files selected one by one carry no folder
  return map.get(base);
}
async function bytesOf(map, path) { const f = find(map, path); return f ? new Uint8Array(await f.arrayBuffer()) : null; }
async function textOf(map, path) { const b = await bytesOf(map, path); return b ? new TextDecoder().decode(b) : null; }

async function verifySignature(map, headBytes) {
  const sig = await bytesOf(map, "log/head.sig");
  const pem = await textOf(map, DATA.public_key.path);
  if (!sig || !pem) return [false, "head signature or public key missing"];
  const pemHash = hex(await sha256(enc.encode(pem)));
  const listed = DATA.files.find((f) => f.path === DATA.public_key.path);
  if (!listed || listed.sha256 !== pemHash) return [false, "the public key is not the one listed"];
  let der;
  try { der = Uint8Array.from(atob(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "")), (c) => c.charCodeAt(0)); }
  catch (e) { return [false, "the public key is not readable"]; }
  const fingerprint = hex(await sha256(der.slice(der.length - 32)));  // SHA-256 of the raw Ed25519 key
  try {
    const key = await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, false, ["verify"]);
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, sig, headBytes);
    return [ok, ok ? "Ed25519 signature verifies" : "the Ed25519 signature does not verify", fingerprint];
  } catch (e) {
    return [null, "this browser cannot check Ed25519 signatures; run `twin evidence verify` for that check", fingerprint];
  }
}

function trusted(fingerprint) {
  const want = pinned();
  if (!fingerprint) return [false, "the bundle's key is missing or unreadable"];
  if (!want) return [null, `the bundle's key has fingerprint ${fingerprint}, not compared with a key you trust: enter the fingerprint ${DATA.agency} publishes above. Until then this page shows the bundle intact as signed by its own key, not who signed it.`];
  if (!/^[0-9a-f]{64}$/.test(want)) return [false, `"${$("fingerprint").value}" is not a key fingerprint (64 hex digits)`];
  if (want === fingerprint) return [true, `the bundle's key is the one you trust (fingerprint ${fingerprint})`];
  return [false, `the bundle was signed with key ${fingerprint}, not with the key you trust (${want})`];
}

async function check(fileList) {
  if (!window.crypto || !crypto.subtle) { $("summary").textContent = "This browser offers no WebCrypto here; open the page from disk (file://) in a current browser."; return; }
  const map = byPath(fileList);
  $("summary").textContent = "Checking\u2026"; $("summary").className = "wait";
  const hashes = new Map();
  for (const f of DATA.files) {
    const b = await bytesOf(map, f.path);
    hashes.set(f.path, b ? hex(await sha256(b)) : null);
  }
  const fileOk = (p) => { const f = DATA.files.find((x) => x.path === p); return !!f && hashes.get(p) === f.sha256; };
  // the head, its signature, and the export leaf that holds the manifest's hash
  const headBytes = await bytesOf(map, "log/head.json");
  let head = null, headNote = "log/head.json missing";
  if (headBytes) { try { head = JSON.parse(new TextDecoder().decode(headBytes)); headNote = `tree size ${head.tree_size}, root ${head.root_hash}, ${head.timestamp}`; } catch (e) { headNote = "log/head.json is not JSON"; } }
  const [sigOk, sigNote, keyPrint] = headBytes ? await verifySignature(map, headBytes) : [false, "no head"];
  const [trust, trustNote] = trusted(keyPrint);
  let exportOk = false, exportNote = "proofs/export.json missing";
  const manifestBytes = await bytesOf(map, "manifest.json");
  const exportText = await textOf(map, "proofs/export.json");
  if (head && exportText && manifestBytes) {
    try {
      const proof = JSON.parse(exportText); const leaf = proof.leaves[0]; const data = JSON.parse(leaf.leaf_data);
      const manifestHash = hex(await sha256(manifestBytes));
      const root = await rootFromPath(await leafHash(leaf.leaf_data), leaf.leaf_index, head.tree_size, leaf.audit_path);
      exportOk = data.kind === "export" && data.manifest_sha256 === manifestHash && data.case_id === DATA.case_id && root === head.root_hash;
      exportNote = exportOk ? "manifest.json is the one the export leaf holds, included in the signed tree" : "manifest.json or the export proof was altered";
    } catch (e) { exportNote = "proofs/export.json is damaged"; }
  }
  const headDiv = $("head"); headDiv.textContent = "";
  for (const [ok, label, note] of [[head !== null && sigOk !== false, "Tree head", headNote], [sigOk, "Signature", sigNote], [trust, "Key", trustNote], [exportOk, "Manifest", exportNote]]) {
    const p = el("p"); const s = el("span", ok === null ? "? " : ok ? "\u2713 " : "\u2717 ", ok === null ? "warn" : ok ? "ok" : "bad"); p.appendChild(s); p.appendChild(el("span", `${label}: ${note}`)); headDiv.appendChild(p);
  }
  let good = 0, bad = 0;
  for (const it of DATA.items) {
    const { td, checks } = rows.get(it.sha256); const notes = []; let ok = true;
    if (!fileOk(it.file)) { ok = false; notes.push(hashes.get(it.file) ? "file altered" : "file missing"); }
    if (!fileOk(it.record)) { ok = false; notes.push("custody record altered or missing"); }
    for (const t of it.transfers) if (!fileOk(t)) { ok = false; notes.push(`${t.split("/").pop()} altered or missing`); }
    try {
      const proof = JSON.parse(await textOf(map, it.proof));
      for (const leaf of proof.leaves) {
        const data = JSON.parse(leaf.leaf_data);
        const subjectHash = hashes.get(leaf.subject);
        const bound = data.kind === "record" ? data.record_sha256 === subjectHash && data.item === it.sha256 : data.transfer_sha256 === subjectHash;
        const root = head ? await rootFromPath(await leafHash(leaf.leaf_data), leaf.leaf_index, head.tree_size, leaf.audit_path) : null;
        if (!bound) { ok = false; notes.push(`log leaf ${leaf.leaf_index} does not hold ${leaf.subject.split("/").pop()}'s hash`); }
        if (!head || root !== head.root_hash) { ok = false; notes.push(`leaf ${leaf.leaf_index} not proven in the signed tree`); }
      }
    } catch (e) { ok = false; notes.push("inclusion proof missing or damaged"); }
    if (!exportOk || sigOk === false) { ok = false; notes.push("the bundle's head or manifest does not verify"); }
    if (trust === false) { ok = false; notes.push("signed with a key you do not trust"); }
    mark(td, ok, notes.join("; ")); checks.textContent = ok ? "file, record, transfers and log proofs verified" : notes.join("; ");
    checks.className = ok ? "ok" : "bad"; ok ? good++ : bad++;
  }
  for (const [path, { td, note }] of otherRows) {
    const ok = fileOk(path); mark(td, ok); note.textContent = ok ? "hash matches" : hashes.get(path) ? "altered" : "missing"; note.className = ok ? "ok" : "bad";
  }
  const s = $("summary");
  const intact = bad === 0 && exportOk && sigOk !== false;
  const unsure = sigOk === null ? " (Signature not checkable in this browser.)" : "";
  if (intact && trust === true) { s.textContent = `\u2713 All ${good} items verified, signed with the key you trust.` + unsure; s.className = "ok"; }
  else if (intact) { s.textContent = `? All ${good} items intact as the bundle's own key signed them; who signed is not confirmed: enter the fingerprint ${DATA.agency} publishes.` + unsure; s.className = "warn"; }
  else { s.textContent = `\u2717 ${bad} of ${good + bad} items failed verification.`; s.className = "bad"; }
  document.body.dataset.checked = "1"; document.body.dataset.good = String(good); document.body.dataset.bad = String(bad);
  document.body.dataset.trusted = trust === true ? "yes" : trust === false ? "no" : "unknown";
}
let chosen = null;
$("folder").addEventListener("change", (e) => { chosen = e.target.files; check(chosen); });
$("files").addEventListener("change", (e) => { chosen = e.target.files; check(chosen); });
$("fingerprint").addEventListener("input", () => { if (chosen) check(chosen); });
</script>
</body>
</html>
"""


def viewer_html(manifest: dict[str, Any], files: list[dict[str, Any]]) -> str:
    """The viewer page for a bundle's manifest (without its own entry) and the files listed so far."""
    data = {
        "case_id": manifest["case_id"],
        "created": manifest["created"],
        "created_by": manifest["created_by"],
        "agency": manifest["agency"],
        "public_key": manifest["public_key"],
        "twin": manifest["twin"],
        "overlays": manifest["overlays"],
        "items": manifest["items"],
        "files": [f for f in files if f["path"] != "viewer.html"],
    }
    payload = json.dumps(data, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    return TEMPLATE.replace("__TITLE__", html.escape(str(manifest["case_id"]))).replace("__DATA__", payload)
