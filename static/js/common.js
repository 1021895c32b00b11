// Helpers shared by every page: messages, XSRF token, JSON requests, copying, deleting,
// local times and sizes.

const messages = JSON.parse(document.getElementById("messages")?.textContent || "{}");
export const lang = document.documentElement.lang || "en";

// The page's translation of an English message, with {name} fields filled in.
export function t(message, params = {}) {
  const text = messages[message] ?? message;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function xsrfToken() {
  const meta = document.querySelector('meta[name="xsrf-token"]');
  return meta ? meta.content : "";
}

// The server answers errors as {"error": "..."}; turn any failed response into that message.
export async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") return body.error;
  } catch (_) {
    // not JSON (e.g. a proxy's page): fall through
  }
  return t("The server answered {status}.", { status: response.status });
}

// navigator.clipboard only exists in secure contexts; plain-HTTP installs fall back to a
// hidden textarea and execCommand, which still works there.
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      // permission denied: try the fallback
    }
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (_) {
    ok = false;
  }
  area.remove();
  return ok;
}

// "Copied!" on the pressed button itself, cleared after a moment; screen readers hear it
// through the page's one status region (never a note left under every field).
const FEEDBACK_MS = 1500;

export function announce(text) {
  const region = document.getElementById("status-announcer");
  if (!region) return;
  region.textContent = text;
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => {
    region.textContent = "";
  }, FEEDBACK_MS * 2);
}

function restoreLabel(button) {
  clearTimeout(button.copyTimer);
  button.textContent = button.dataset.label;
  button.classList.remove("is-copied");
}

export async function copyWithFeedback(button, text) {
  const ok = await copyText(text);
  // Only the latest copy says so: an earlier button's "Copied!" would now be wrong.
  for (const other of document.querySelectorAll("button.is-copied")) {
    if (other !== button) restoreLabel(other);
  }
  const original = button.dataset.label || button.textContent;
  button.dataset.label = original;
  button.textContent = ok ? t("Copied!") : t("Press Ctrl+C to copy");
  button.classList.toggle("is-copied", ok);
  if (ok) announce(t("Copied!"));
  clearTimeout(button.copyTimer);
  button.copyTimer = setTimeout(() => restoreLabel(button), FEEDBACK_MS);
}

export async function deleteImage(id) {
  const response = await fetch(`/delete/${encodeURIComponent(id)}`, {
    method: "DELETE",
    headers: { "X-XSRFToken": xsrfToken(), Accept: "application/json" },
    credentials: "same-origin",
  });
  if (response.status !== 204) throw new Error(await errorMessage(response));
}

// Dates in the page's language, in the viewer's own time zone.
// Gallery tiles have room for the date only; the time is in the tooltip.
const timeFormat = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });

export function localizeTimes(root = document) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const moment = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      el.textContent = timeFormat.format(moment);
    }
  }
}

// Matches the server's sizes (handlers/i18n.py format_size): KB below one MB, then MB;
// "340.2 KB", "2.5 MB" in English, "340,2 КБ", "2,5 МБ" in Russian.
export function formatSize(bytes) {
  const kb = Math.round((bytes / 1024) * 10) / 10;
  const [value, unit] = kb < 1024 ? [kb, "KB"] : [bytes / 1048576, "MB"];
  const digits = { minimumFractionDigits: 1, maximumFractionDigits: 1 };
  if (lang === "ru") {
    const text = value.toLocaleString("ru-RU", digits).replace(/\s/g, "\u00a0");
    return `${text}\u00a0${unit === "KB" ? "КБ" : "МБ"}`;
  }
  return `${value.toLocaleString("en-US", digits)} ${unit}`;
}
