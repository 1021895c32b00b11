// Every page: copy buttons, delete buttons and local times, wired by delegation so tiles
// added later (live updates) work too.
import { copyWithFeedback, deleteImage, localizeTimes, t } from "./common.js";

document.addEventListener("click", async (event) => {
  const copyButton = event.target.closest("[data-copy-from]");
  if (copyButton) {
    const field = document.getElementById(copyButton.dataset.copyFrom);
    if (field) await copyWithFeedback(copyButton, field.value);
    return;
  }
  const deleteButton = event.target.closest("[data-delete]");
  if (!deleteButton || deleteButton.disabled) return;
  const container = deleteButton.closest(".tile, .image-view");
  const name = container?.querySelector(".tile-name, .view-title")?.textContent || t("this image");
  if (!window.confirm(t("Delete {name}? This cannot be undone.", { name }))) return;
  const id = deleteButton.dataset.delete;
  const errorBox = container?.querySelector(".tile-error");
  const label = deleteButton.textContent;
  deleteButton.disabled = true;
  deleteButton.textContent = t("Deleting…");
  container?.classList.add("is-deleting");
  if (errorBox) errorBox.textContent = "";
  try {
    await deleteImage(id);
  } catch (error) {
    deleteButton.disabled = false;
    deleteButton.textContent = label;
    container?.classList.remove("is-deleting");
    if (errorBox) errorBox.textContent = error.message;
    return;
  }
  if (deleteButton.dataset.afterDelete) {
    window.location.assign(deleteButton.dataset.afterDelete);
  } else {
    document.dispatchEvent(new CustomEvent("image-deleted", { detail: { id: Number(id) } }));
  }
});

// Arrow keys follow links marked data-hotkey (previous/next image), unless typing.
document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
  if (event.target.closest("input, textarea, select, [contenteditable]")) return;
  const link = document.querySelector(`a[data-hotkey="${event.key}"]`);
  if (link) {
    event.preventDefault();
    link.click();
  }
});

localizeTimes();
