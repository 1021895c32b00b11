// Helpers shared by every page: XSRF token, JSON requests, copying, deleting, local times.

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
  return `The server answered ${response.status} ${response.statusText}`.trim();
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
  button.textContent = ok ? "Copied!" : "Press Ctrl+C to copy";
  const status = button.closest(".copy-field")?.querySelector(".copy-status");
  if (status) status.textContent = ok ? "Link copied to the clipboard." : "";
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

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function localizeTimes(root = document) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const moment = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      el.textContent = timeFormat.format(moment);
      el.title = moment.toISOString();
    }
  }
}

export function formatKb(sizeKb) {
  return `${sizeKb.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 })} KB`;
}
