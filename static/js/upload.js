// The upload page: many files at once (picker, drag and drop, paste), one XHR per file with
// its own progress bar, client-side checks first, the server's message on failure.
import { copyWithFeedback, errorMessage, formatKb, t, xsrfToken } from "./common.js";

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

function addItem(name) {
  const item = itemTemplate.content.firstElementChild.cloneNode(true);
  item.querySelector(".upload-name").textContent = name;
  list.prepend(item);
  return item;
}

function fail(item, message) {
  item.classList.add("is-error");
  item.querySelector("progress").hidden = true;
  item.querySelector(".upload-message").textContent = message;
}

function succeed(item, image) {
  item.classList.add("is-done");
  item.querySelector("progress").value = 100;
  item.querySelector(".upload-message").textContent = t("Uploaded ({size})", {
    size: formatKb(image.size_kb),
  });
  const row = item.querySelector(".upload-link");
  const field = row.querySelector("input");
  field.value = image.url;
  row.querySelector("button").addEventListener("click", (e) => copyWithFeedback(e.currentTarget, image.url));
  row.hidden = false;
}

function uploadOne(file) {
  const item = addItem(file.name);
  if (!accepted(file.name)) {
    fail(item, t("Only .jpg, .jpeg, .png and .gif files are accepted."));
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
