// The uploader (home and upload pages): many files at once (picker, drag and drop, paste),
// one XHR per file with its own preview and progress bar, client-side checks first, the
// server's message on failure; a finished file shows its thumbnail, its page and the share
// codes (direct link, Markdown, HTML, BBCode) with one copy button each.
import { copyWithFeedback, errorMessage, formatSize, t, xsrfToken } from "./common.js";

const form = document.getElementById("upload-form");
// The limits and formats come from the server (server/config.py, server/formats.py).
const MAX_BYTES = Number(form.dataset.maxBytes);
const LIMIT_MB = form.dataset.limitMb;
const EXTENSIONS = form.dataset.extensions.split(" ");
const EXTENSION_FOR_TYPE = JSON.parse(form.dataset.typeExtensions);
const accepted = (name) => EXTENSIONS.some((ext) => name.toLowerCase().endsWith(ext));

const input = document.getElementById("file");
const dropZone = document.getElementById("drop-zone");
const list = document.getElementById("upload-list");
const itemTemplate = document.getElementById("upload-item-template");

function addItem(file) {
  const item = itemTemplate.content.firstElementChild.cloneNode(true);
  item.querySelector(".upload-name").textContent = file.name;
  list.prepend(item);
  return item;
}

// A preview straight from the file while it uploads (an object URL: CSP allows blob:); a
// file the browser cannot draw just leaves the square empty.
function showPreview(item, file) {
  const preview = item.querySelector(".upload-thumb img");
  const objectUrl = URL.createObjectURL(file);
  const release = () => URL.revokeObjectURL(objectUrl);
  preview.addEventListener("load", release, { once: true });
  preview.addEventListener("error", release, { once: true });
  preview.src = objectUrl;
}

function fail(item, message) {
  item.classList.add("is-error");
  item.querySelector("progress").hidden = true;
  item.querySelector(".upload-message").textContent = message;
}

function succeed(item, image) {
  item.classList.add("is-done");
  const progress = item.querySelector("progress");
  progress.value = 100;
  progress.hidden = true;
  item.querySelector(".upload-message").textContent = t("Uploaded ({size})", {
    size: formatSize(image.size),
  });
  const page = `/view/${image.id}`;
  const thumb = item.querySelector(".upload-thumb");
  thumb.href = page;
  // Thumbnails are made just after the upload answers: until the server has one, the
  // preview drawn from the file itself stays (the same picture, already on screen).
  if (image.thumb_url) thumb.querySelector("img").src = image.thumb_url;
  item.querySelector(".upload-view").href = page;
  for (const row of item.querySelectorAll(".upload-code")) {
    const text = image.codes[row.dataset.code];
    const label = row.querySelector(".copy-label").textContent;
    row.querySelector("input").value = text;
    const button = row.querySelector("button");
    button.setAttribute("aria-label", `${t("Copy")} ${label}`);
    button.addEventListener("click", () => copyWithFeedback(button, text));
  }
  item.querySelector(".upload-codes").hidden = false;
}

function uploadOne(file) {
  const item = addItem(file);
  if (!accepted(file.name)) {
    const extensions = EXTENSIONS.slice(0, -1).join(", ");
    fail(item, t("Only {extensions} and {last} files are accepted.", { extensions, last: EXTENSIONS.at(-1) }));
    return;
  }
  if (file.size === 0) {
    fail(item, t("The file is empty."));
    return;
  }
  if (file.size > MAX_BYTES) {
    const size = (file.size / 1048576).toLocaleString(document.documentElement.lang, {
      maximumFractionDigits: 1,
      minimumFractionDigits: 1,
    });
    fail(item, t("The file is {size} MB; the limit is {limit} MB.", { size, limit: LIMIT_MB }));
    return;
  }
  showPreview(item, file); // only for a file that is going to be sent
  const data = new FormData();
  data.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  const progress = item.querySelector("progress");
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
  });
  xhr.addEventListener("load", async () => {
    const response = new Response(xhr.response, { status: xhr.status, statusText: xhr.statusText });
    if (xhr.status === 201) succeed(item, await response.json());
    else fail(item, await errorMessage(response));
  });
  xhr.addEventListener("error", () => fail(item, t("The upload failed: the connection was lost.")));
  xhr.open("POST", "/upload/");
  xhr.setRequestHeader("X-XSRFToken", xsrfToken());
  xhr.setRequestHeader("Accept", "application/json");
  xhr.send(data);
}

function uploadAll(files) {
  for (const file of files) uploadOne(file);
}

// Only a no-JS visitor has the submit button (in <noscript>); Enter in the form lands here.
form.addEventListener("submit", (event) => {
  event.preventDefault();
  uploadAll(input.files);
  form.reset();
});

input.addEventListener("change", () => {
  uploadAll(input.files);
  form.reset();
});

for (const type of ["dragenter", "dragover"]) {
  dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add("is-over");
  });
}
for (const type of ["dragleave", "drop"]) {
  dropZone.addEventListener(type, () => dropZone.classList.remove("is-over"));
}
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  uploadAll(event.dataTransfer.files);
});

// Pasted screenshots often have no useful name: give them one with the right extension.
document.addEventListener("paste", (event) => {
  const files = [...(event.clipboardData?.files ?? [])].map((file) => {
    if (accepted(file.name) || !EXTENSION_FOR_TYPE[file.type]) return file;
    return new File([file], `pasted${EXTENSION_FOR_TYPE[file.type]}`, { type: file.type });
  });
  if (files.length > 0) {
    event.preventDefault();
    uploadAll(files);
  }
});
