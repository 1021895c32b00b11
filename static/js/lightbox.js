// The lightbox over the gallery: a click on a tile shows the image full size in a modal
// <dialog> (which traps focus and makes the page behind inert) while the address becomes
// /view/<id>, so it can be shared and Back closes it. ← / → (buttons, keys, swipes) step
// through images across page boundaries, the grid behind following; Esc closes; focus goes
// back to the tile. Opening /view/<id> directly still gives the server's full page.
import { copyWithFeedback, formatSize } from "./common.js";

const SWIPE_PX = 50;

// `fetchPage(n)` resolves to the gallery JSON of page n; `showPage(json)` makes the grid
// behind show that page; `onClose()` runs once the lightbox has closed.
export function createLightbox(dialog, { fetchPage, showPage, onClose }) {
  const img = dialog.querySelector(".lightbox-image");
  const title = dialog.querySelector(".lightbox-title");
  const facts = dialog.querySelector(".lightbox-facts");
  const pageLink = dialog.querySelector(".lightbox-page");
  const prev = dialog.querySelector(".lightbox-prev");
  const next = dialog.querySelector(".lightbox-next");
  let current = null; // { data: gallery JSON of one page, index }

  const shown = () => (current ? current.data.images[current.index] : null);

  function show(data, index) {
    current = { data, index };
    const image = data.images[index];
    img.src = image.url;
    img.alt = image.original_name;
    img.width = image.width;
    img.height = image.height;
    title.textContent = image.original_name;
    facts.textContent = `${formatSize(image.size)} · ${image.width} × ${image.height} px · ${image.format}`;
    pageLink.href = `/view/${image.id}`;
    prev.disabled = index === 0 && data.page <= 1;
    next.disabled = index === data.images.length - 1 && data.page >= data.pages;
    dialog.dataset.id = String(image.id);
  }

  let opening = false;

  async function open(id, page, { push = true } = {}) {
    if (opening || dialog.open) return; // a double click must not stack two history entries
    opening = true;
    let data;
    try {
      data = await fetchPage(page);
    } finally {
      opening = false;
    }
    const index = data.images.findIndex((image) => image.id === id);
    if (index < 0) {
      window.location.assign(`/view/${id}`); // gone from this page meanwhile: the full page
      return;
    }
    show(data, index);
    if (!dialog.open) dialog.showModal();
    if (push) window.history.pushState({ lightbox: id, page }, "", `/view/${id}`);
  }

  // A page that cannot be fetched (the connection dropped) leaves the image on show; the
  // next press tries again.
  function step(delta) {
    stepTo(delta).catch(() => {});
  }

  async function stepTo(delta) {
    if (!current) return;
    let { data } = current;
    let index = current.index + delta;
    if (index < 0) {
      if (data.page <= 1) return;
      data = await fetchPage(data.page - 1);
      index = data.images.length - 1;
    } else if (index >= data.images.length) {
      if (data.page >= data.pages) return;
      data = await fetchPage(data.page + 1);
      index = 0;
    }
    if (index < 0 || index >= data.images.length) return;
    if (data !== current.data) showPage(data);
    show(data, index);
    const id = data.images[index].id;
    // One history entry for the whole visit: Back closes the lightbox, it does not step.
    window.history.replaceState({ lightbox: id, page: data.page }, "", `/view/${id}`);
  }

  function finishClose() {
    const image = shown();
    current = null;
    if (dialog.open) dialog.close();
    img.removeAttribute("src");
    onClose();
    const tileLink = image && document.querySelector(`.tile[data-id="${image.id}"] .tile-link`);
    if (tileLink) tileLink.focus();
  }

  // Closing goes through history when the lightbox pushed an entry, so Back and Esc agree.
  function close() {
    if (window.history.state?.lightbox) window.history.back();
    else finishClose();
  }

  window.addEventListener("popstate", (event) => {
    const state = event.state;
    if (state?.lightbox && !dialog.open) open(state.lightbox, state.page, { push: false }).catch(() => {});
    else if (!state?.lightbox && dialog.open) finishClose();
  });

  dialog.addEventListener("cancel", (event) => {
    event.preventDefault(); // Esc: close through history, like the close button
    close();
  });
  // The modal dialog makes the page inert, but Tab past its last button would leave for the
  // browser's own controls: wrap around instead, so focus stays in the lightbox.
  function wrapFocus(event) {
    const focusable = [...dialog.querySelectorAll("a[href], button:not(:disabled)")].filter(
      (el) => el.offsetParent !== null,
    );
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (event.shiftKey && document.activeElement === first) last.focus();
    else if (!event.shiftKey && document.activeElement === last) first.focus();
    else return;
    event.preventDefault();
  }

  dialog.addEventListener("keydown", (event) => {
    if (event.key === "Tab") {
      wrapFocus(event);
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowLeft") step(-1);
    else if (event.key === "ArrowRight") step(1);
    else return;
    event.preventDefault();
  });
  dialog.querySelector(".lightbox-close").addEventListener("click", close);
  prev.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  dialog.querySelector(".lightbox-copy").addEventListener("click", (event) => {
    const image = shown();
    if (image) copyWithFeedback(event.currentTarget, image.codes.direct);
  });
  // A click on the dark stage around the image closes, as in every lightbox.
  dialog.querySelector(".lightbox-stage").addEventListener("click", (event) => {
    if (event.target === event.currentTarget) close();
  });

  // Swipes on touch screens: left for the older image, right for the newer one.
  let touchStart = null;
  img.addEventListener("pointerdown", (event) => {
    if (event.pointerType !== "mouse") touchStart = { x: event.clientX, y: event.clientY };
  });
  img.addEventListener("pointerup", (event) => {
    if (!touchStart) return;
    const dx = event.clientX - touchStart.x;
    const dy = event.clientY - touchStart.y;
    touchStart = null;
    if (Math.abs(dx) > SWIPE_PX && Math.abs(dx) > Math.abs(dy)) step(dx < 0 ? 1 : -1);
  });
  img.addEventListener("pointercancel", () => {
    touchStart = null;
  });

  return {
    open,
    get isOpen() {
      return dialog.open;
    },
    // An image deleted anywhere: skip to the next one if it is on show, close if none is left.
    deleted(id) {
      if (!current) return;
      const { data } = current;
      const index = data.images.findIndex((image) => image.id === id);
      if (index < 0) return;
      const wasShown = index === current.index;
      data.images.splice(index, 1);
      if (data.images.length === 0) {
        close();
        return;
      }
      const before = index < current.index ? 1 : 0;
      const keep = wasShown ? Math.min(index, data.images.length - 1) : current.index - before;
      show(data, keep);
      if (wasShown) {
        const shownId = data.images[keep].id;
        window.history.replaceState({ lightbox: shownId, page: data.page }, "", `/view/${shownId}`);
      }
    },
  };
}
