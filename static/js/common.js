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

export async function copyWithFeedback(button, text) {
  const ok = await copyText(text);
  const original = button.dataset.label || button.textContent;
  button.dataset.label = original;
  button.textContent = ok ? t("Copied!") : t("Press Ctrl+C to copy");
  const status = button.closest(".copy-field")?.querySelector(".copy-status");
  if (status) status.textContent = ok ? t("Link copied to the clipboard.") : "";
  setTimeout(() => {
    button.textContent = original;
  }, 1500);
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
const timeFormat = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });

export function localizeTimes(root = document) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const moment = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      el.textContent = timeFormat.format(moment);
      el.title = moment.toISOString();
    }
  }
}

// Matches the server's sizes: "1,234.5 KB" in English, "1 234,5 КБ" in Russian.
export function formatKb(sizeKb) {
  const digits = { minimumFractionDigits: 1, maximumFractionDigits: 1 };
  if (lang === "ru") return `${sizeKb.toLocaleString("ru-RU", digits).replace(/\s/g, "\u00a0")}\u00a0КБ`;
  return `${sizeKb.toLocaleString("en-US", digits)} KB`;
}
