// The live gallery: listens on /ws and keeps the current page exactly what a reload would show.
//
// Page 1 inserts new images straight from the event; a tile shows the original until the
// image's thumbnails arrive (image.updated). Any change that shifts images across
// page boundaries (a delete, or an upload while on a later page) refetches this page once
// as JSON. Events carry ids, so duplicates and out-of-order delivery are harmless.
import { errorMessage, formatSize, localizeTimes, t } from "./common.js";
import { createLightbox } from "./lightbox.js";

const grid = document.getElementById("gallery-grid");
const tileTemplate = document.getElementById("tile-template");
const statusEl = document.getElementById("live-status");
const announcer = document.getElementById("live-announcer");
const state = {
  page: Number(grid.dataset.page),
  perPage: Number(grid.dataset.perPage),
  total: Number(document.getElementById("gallery-total").dataset.total),
};
const deletedIds = new Set();

function tileIds() {
  return [...grid.querySelectorAll(".tile")].map((tile) => Number(tile.dataset.id));
}

// The API's addresses are absolute; on this site the server's tiles use paths. Same markup.
function onSite(url) {
  const parsed = new URL(url, window.location.href);
  return parsed.origin === window.location.origin ? parsed.pathname : url;
}

// The <template> holds templates/_tile.html as the server rendered it (with a thumbnail and a
// delete button): fill in this image's values, and drop what it does not have.
function buildTile(image) {
  const tile = tileTemplate.content.firstElementChild.cloneNode(true);
  tile.dataset.id = String(image.id);
  const link = tile.querySelector(".tile-link");
  link.href = `/view/${image.id}`;
  const img = tile.querySelector("img");
  img.alt = image.original_name;
  if (image.thumb_url) {
    // The small WebP thumbnail (and its 2x twin for dense screens), as the server renders it.
    img.src = onSite(image.thumb_url);
    img.srcset = `${onSite(image.thumb_url)} 1x, ${onSite(image.thumb_2x_url)} 2x`;
    img.width = image.thumb_width;
    img.height = image.thumb_height;
  } else {
    img.src = onSite(image.url); // no thumbnail yet: the original
    img.removeAttribute("srcset");
    img.width = image.width;
    img.height = image.height;
  }
  const name = tile.querySelector(".tile-name");
  name.textContent = image.original_name;
  name.title = image.original_name;
  tile.querySelector(".tile-size").textContent = formatSize(image.size);
  tile.querySelector(".tile-time").setAttribute("datetime", image.uploaded_at);
  const del = tile.querySelector(".tile-delete");
  if (image.can_delete) {
    del.dataset.delete = String(image.id);
    del.setAttribute("aria-label", t("Delete {name}", { name: image.original_name }));
  } else {
    del.remove();
  }
  localizeTimes(tile);
  return tile;
}

function pagesFor(total) {
  return Math.max(1, Math.ceil(total / state.perPage));
}

function renderSummary() {
  const pages = pagesFor(state.total);
  const totalEl = document.getElementById("gallery-total");
  totalEl.dataset.total = String(state.total);
  totalEl.textContent = t("Images: {count}", { count: state.total });
  document.getElementById("gallery-pages").textContent = String(pages);
  document.getElementById("gallery-page").textContent = String(state.page);
  grid.dataset.page = String(state.page);
  document.getElementById("empty-state").hidden = grid.children.length > 0;
  const nav = document.querySelector(".pagination").dataset;
  if (Number(nav.pages) !== pages || Number(nav.page) !== state.page) refreshPagination();
}

// The page links are the server's (templates/_pagination.html): when the number of pages
// changes, or the lightbox turned the page, take them from this page as the server renders it.
let refreshingPagination = false;
let paginationStale = false;

async function refreshPagination() {
  if (refreshingPagination) {
    paginationStale = true; // the count changed while the page was on its way: once more
    return;
  }
  refreshingPagination = true;
  paginationStale = false;
  try {
    const response = await fetch(`/images/?page=${state.page}`, {
      headers: { Accept: "text/html" },
      credentials: "same-origin",
    });
    if (!response.ok) return; // e.g. this page is gone: resync() moves to the last one
    const html = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = html.querySelector(".pagination");
    if (fresh) document.querySelector(".pagination").replaceWith(document.importNode(fresh, true));
  } catch (error) {
    announce(t("Could not refresh the gallery: {error}", { error: error.message }));
  } finally {
    refreshingPagination = false;
  }
  if (paginationStale) refreshPagination();
}

function announce(text) {
  announcer.textContent = text;
}

let resyncTimer = null;
let resyncing = false;

// Coalesce bursts of events into one small request.
function scheduleResync() {
  if (resyncTimer !== null) return;
  resyncTimer = setTimeout(async () => {
    resyncTimer = null;
    await resync();
  }, 150);
}

// After a gap in the event stream (or a restore from backup) the server's page is the whole
// truth: forget which ids this tab saw deleted, since a restore can bring them back.
function fullResync() {
  deletedIds.clear();
  resync();
}

async function resync() {
  if (resyncing) {
    scheduleResync();
    return;
  }
  resyncing = true;
  try {
    const response = await fetch(`/images/?page=${state.page}`, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (response.status === 404 && state.page > 1) {
      // This page no longer exists (images were deleted): go to the last page there is.
      window.location.replace("/images/?page=" + pagesFor(state.total));
      return;
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    const body = await response.json();
    state.total = body.total;
    grid.replaceChildren(...body.images.filter((i) => !deletedIds.has(i.id)).map(buildTile));
    renderSummary();
  } catch (error) {
    announce(t("Could not refresh the gallery: {error}", { error: error.message }));
  } finally {
    resyncing = false;
  }
}

function onCreated(image, total) {
  if (deletedIds.has(image.id)) return;
  state.total = total ?? state.total + 1;
  if (state.page === 1) {
    if (!tileIds().includes(image.id)) {
      // Keep newest-first order even if events arrive out of order.
      const after = [...grid.children].find((tile) => Number(tile.dataset.id) < image.id);
      grid.insertBefore(buildTile(image), after ?? null);
      while (grid.children.length > state.perPage) grid.lastElementChild.remove();
    }
  } else {
    scheduleResync(); // everything on later pages shifts by one
  }
  renderSummary();
  announce(t("New image: {name}", { name: image.original_name }));
}

// An image's thumbnails arrived (they are made after the upload answers): its tile, if this
// page shows it, gets the picture a reload renders. Only the <img> is swapped: a delete
// question open in the tile, or the focus, stays. Repeats change nothing.
function onUpdated(image) {
  if (deletedIds.has(image.id)) return;
  const img = grid.querySelector(`.tile[data-id="${image.id}"] img`);
  if (img) img.replaceWith(buildTile(image).querySelector("img"));
}

function onDeleted(id, total) {
  const seen = deletedIds.has(id);
  deletedIds.add(id);
  if (total !== undefined) state.total = total;
  else if (!seen) state.total = Math.max(0, state.total - 1);
  if (seen) {
    renderSummary();
    return;
  }
  const ids = tileIds();
  const tile = grid.querySelector(`.tile[data-id="${id}"]`);
  if (tile) tile.remove();
  // A delete on this page or an earlier one (a newer id) shifts this page's contents.
  if (tile || (ids.length > 0 && id > Math.max(...ids))) scheduleResync();
  renderSummary();
  if (tile) announce(t("An image was deleted."));
  lightbox.deleted(id);
}

// --- the WebSocket, with reconnect (exponential backoff and jitter) and resync ---
let attempts = 0;
let everConnected = false;

function setStatus(stateName, text) {
  statusEl.dataset.state = stateName;
  statusEl.textContent = text;
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/ws`);
  socket.addEventListener("message", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (_) {
      return;
    }
    if (event.type === "hello") {
      attempts = 0;
      setStatus("live", t("live"));
      if (everConnected) fullResync(); // we may have missed events while offline
      everConnected = true;
    } else if (event.type === "image.created") {
      onCreated(event.image, event.total);
    } else if (event.type === "image.updated") {
      onUpdated(event.image);
    } else if (event.type === "image.deleted") {
      onDeleted(event.id, event.total);
    } else if (event.type === "resync") {
      fullResync();
    }
  });
  socket.addEventListener("close", () => {
    setStatus("reconnecting", t("reconnecting…"));
    const delay = Math.min(30000, 500 * 2 ** attempts) * (0.5 + Math.random() / 2);
    attempts += 1;
    setTimeout(connect, delay);
  });
}

// --- the lightbox: tiles open over the grid; stepping past either end turns the page ---
async function fetchPage(number) {
  const response = await fetch(`/images/?page=${number}`, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(await errorMessage(response));
  return response.json();
}

function showPage(data) {
  state.page = data.page;
  state.total = data.total;
  grid.replaceChildren(...data.images.filter((i) => !deletedIds.has(i.id)).map(buildTile));
  renderSummary();
}

const lightbox = createLightbox(document.getElementById("lightbox"), {
  fetchPage,
  showPage,
  onClose() {
    // After stepping across pages the grid shows another page: let the address say which.
    const shownPage = Number(new URLSearchParams(window.location.search).get("page") || 1);
    if (shownPage !== state.page) window.history.replaceState(null, "", `/images/?page=${state.page}`);
  },
});

grid.addEventListener("click", (event) => {
  const link = event.target.closest(".tile-link");
  if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) {
    return; // a new tab or window: the full page, as the link says
  }
  event.preventDefault();
  lightbox.open(Number(link.closest(".tile").dataset.id), state.page).catch(() => {
    window.location.assign(link.href);
  });
});

// A delete done in this tab: remove the tile at once; the event from the server is then a no-op.
document.addEventListener("image-deleted", (event) => onDeleted(event.detail.id));

connect();
