// Every page: copy buttons, delete buttons and local times, wired by delegation so tiles
// added later (live updates) work too.
import { copyWithFeedback, deleteImage, localizeTimes } from "./common.js";

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
  const name = container?.querySelector(".tile-name, .view-title")?.textContent || "this image";
  if (!window.confirm(`Delete ${name}? This cannot be undone.`)) return;
  const id = deleteButton.dataset.delete;
  const errorBox = container?.querySelector(".tile-error");
  const label = deleteButton.textContent;
  deleteButton.disabled = true;
  deleteButton.textContent = "Deleting…";
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

localizeTimes();
