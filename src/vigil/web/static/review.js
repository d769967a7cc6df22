// The review console's behaviour: hold-to-reveal, keyboard shortcuts, the exposure timer
// and the break prompt. No inline scripts (the CSP forbids them); no media is ever cached:
// unblurred bytes live in a blob URL only while the reveal is held.
(function () {
  "use strict";

  function csrfToken() {
    const headers = document.body.getAttribute("hx-headers");
    try { return headers ? JSON.parse(headers)["X-CSRF-Token"] : ""; } catch (e) { return ""; }
  }

  function post(url, data) {
    const body = new FormData();
    Object.entries(data || {}).forEach(([k, v]) => body.append(k, String(v)));
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin", cache: "no-store",
      headers: { "X-CSRF-Token": csrfToken() },
    });
  }

  function typing(event) {
    const t = event.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT") &&
      !(t.type === "checkbox" || t.type === "radio");
  }

  // --- Queue page: "n" starts reviewing -------------------------------------------------
  const start = document.getElementById("start-reviewing");
  if (start) {
    document.addEventListener("keydown", (event) => {
      if (event.key === "n" && !typing(event) && !event.ctrlKey && !event.metaKey && !event.altKey) {
        event.preventDefault();
        start.click();
      }
    });
  }

  const root = document.querySelector(".review");
  if (!root || root.dataset.holding !== "yes") { return; }
  const form = document.getElementById("decision-form");
  const items = Array.from(document.querySelectorAll(".item"));

  // --- Selection ------------------------------------------------------------------------
  function selected() { return document.querySelector(".item--selected") || items[0]; }
  function select(index) {
    if (!items.length) { return; }
    const i = (index + items.length) % items.length;
    items.forEach((el) => el.classList.remove("item--selected"));
    items[i].classList.add("item--selected");
    items[i].scrollIntoView({ block: "nearest" });
  }
  items.forEach((el, i) => el.addEventListener("click", () => select(i)));

  // --- Hold to reveal -------------------------------------------------------------------
  let active = null; // {itemId, img, url, revealId, released}

  function markViewed(itemId) {
    const box = document.querySelector(`input[data-viewed="${itemId}"]`);
    if (box) { box.disabled = false; box.checked = true; }
  }

  function endReveal(revealId) {
    if (revealId) { post(`/console/reveals/${revealId}/end`); }
  }

  async function reveal(itemId, scope) {
    if (active) { return; }
    const img = document.getElementById(`media-${itemId}`);
    if (!img) { return; }
    const state = { itemId: itemId, img: img, url: null, revealId: null, released: false };
    active = state;
    const response = await fetch(`/console/media/${itemId}/reveal?scope=${scope}`,
      { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) { active = null; return; }
    state.revealId = response.headers.get("X-Reveal-Id");
    if (scope === "full") { markViewed(itemId); }
    const blob = await response.blob();
    if (state.released) { endReveal(state.revealId); return; }
    state.url = URL.createObjectURL(blob);
    img.src = state.url;
    img.alt = "File, revealed";
    img.classList.add("revealed");
    root.classList.add("review--revealed");
  }

  function conceal() {
    const state = active;
    if (!state) { return; }
    active = null;
    state.released = true;
    state.img.src = state.img.dataset.preview;
    state.img.alt = "File, blurred";
    state.img.classList.remove("revealed");
    root.classList.remove("review--revealed");
    if (state.url) {
      URL.revokeObjectURL(state.url);
      endReveal(state.revealId);
    }
  }

  document.querySelectorAll("[data-reveal]").forEach((button) => {
    const go = (event) => {
      event.preventDefault();
      select(items.findIndex((el) => el.dataset.item === button.dataset.item));
      reveal(button.dataset.item, button.dataset.reveal);
    };
    button.addEventListener("pointerdown", go);
    ["pointerup", "pointerleave", "pointercancel", "blur"].forEach((name) =>
      button.addEventListener(name, conceal));
    button.addEventListener("keydown", (event) => {
      if ((event.key === " " || event.key === "Enter") && !event.repeat) { go(event); }
    });
    button.addEventListener("keyup", (event) => {
      if (event.key === " " || event.key === "Enter") { event.preventDefault(); conceal(); }
    });
    button.addEventListener("click", (event) => event.preventDefault());
  });
  window.addEventListener("blur", conceal);
  document.addEventListener("visibilitychange", () => { if (document.hidden) { conceal(); } });

  // --- Video: muted, never autoplayed, loaded only on request -----------------------------
  document.querySelectorAll("[data-play]").forEach((button) => {
    button.addEventListener("click", async () => {
      const itemId = button.dataset.play;
      const video = document.getElementById(`video-${itemId}`);
      if (!video.hidden) {
        video.pause();
        URL.revokeObjectURL(video.src);
        video.removeAttribute("src");
        video.hidden = true;
        endReveal(video.dataset.revealId);
        button.textContent = "Play video (muted)";
        return;
      }
      const response = await fetch(`/console/media/${itemId}/video`,
        { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) { return; }
      video.dataset.revealId = response.headers.get("X-Reveal-Id") || "";
      markViewed(itemId);
      video.muted = true;
      video.autoplay = false;
      video.src = URL.createObjectURL(await response.blob());
      video.hidden = false;
      button.textContent = "Hide video";
    });
  });

  // --- Keyboard shortcuts ---------------------------------------------------------------
  const shortcuts = {};
  document.querySelectorAll("[data-shortcut]").forEach((el) => { shortcuts[el.dataset.shortcut] = el; });
  const reason = document.getElementById("reason");

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "Escape" && typing(event)) { event.target.blur(); return; }
    if (typing(event)) { return; }
    const onButton = event.target && event.target.matches && event.target.matches("[data-reveal]");
    if (event.key === " " && !onButton) {
      event.preventDefault();
      if (!event.repeat) {
        const item = selected();
        const video = item.dataset.mediaType === "video";
        reveal(item.dataset.item, video ? "keyframes" : "full");
      }
      return;
    }
    if (event.key === "j") { select(items.indexOf(selected()) + 1); return; }
    if (event.key === "k") { select(items.indexOf(selected()) - 1); return; }
    if (/^[1-4]$/.test(event.key)) {
      const radios = form.querySelectorAll('input[name="industry"]');
      const radio = radios[Number(event.key) - 1];
      if (radio) { radio.checked = true; radio.focus(); }
      return;
    }
    const target = shortcuts[event.key];
    if (!target) { return; }
    event.preventDefault();
    if (target.dataset.needsReason === "yes" && !reason.value.trim()) {
      reason.focus();
      reason.setAttribute("aria-invalid", "true");
      reason.placeholder = "Write the reason first, then press the key again (Escape leaves this box).";
      return;
    }
    if (target.form === form) { form.requestSubmit(target); } else { target.click(); }
  });
  document.addEventListener("keyup", (event) => {
    if (event.key === " " && !typing(event)) { conceal(); }
  });

  // --- Exposure timer and break prompt --------------------------------------------------
  const clock = document.getElementById("exposure-time");
  const dialog = document.getElementById("break-dialog");
  let screenSeconds = Number(root.dataset.screenSeconds) || 0;
  let unsent = 0;
  const breakAfter = (Number(root.dataset.breakMinutes) || 45) * 60;
  const KEY = "vigil-seconds-since-break";
  let sinceBreak = Number(sessionStorage.getItem(KEY)) || 0;
  let nextPrompt = breakAfter;

  function showClock() {
    const minutes = Math.floor(screenSeconds / 60);
    clock.textContent = minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }
  showClock();
  setInterval(() => {
    if (document.hidden) { return; }
    screenSeconds += 1; unsent += 1; sinceBreak += 1;
    sessionStorage.setItem(KEY, String(sinceBreak));
    showClock();
    if (sinceBreak >= nextPrompt && dialog && !dialog.open) { dialog.showModal(); }
    if (unsent >= 30) { post("/console/exposure", { seconds: unsent }); unsent = 0; }
  }, 1000);
  window.addEventListener("pagehide", () => {
    if (unsent > 0) {
      const body = new FormData();
      body.append("seconds", String(unsent));
      body.append("csrf_token", csrfToken());
      navigator.sendBeacon("/console/exposure", body);
    }
  });
  if (dialog) {
    dialog.querySelector('[data-break="later"]').addEventListener("click", () => {
      nextPrompt = sinceBreak + 600;
      dialog.close();
    });
    dialog.querySelector("a").addEventListener("click", () => sessionStorage.setItem(KEY, "0"));
  }
})();
