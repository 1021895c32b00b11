// Every page: copy buttons, delete buttons (confirmed inline, never with a browser dialog)
// and local times, wired by delegation so tiles added later (live updates) work too.
import { copyWithFeedback, deleteImage, localizeTimes, t } from "./common.js";

function makeButton(text, className) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.textContent = text;
  return button;
}

async function confirmedDelete(trigger, container, box, yes) {
  const errorBox = container?.querySelector(".tile-error");
  for (const button of box.querySelectorAll("button")) button.disabled = true;
  yes.textContent = t("Deleting…");
  container?.classList.add("is-deleting");
  if (errorBox) errorBox.textContent = "";
  const id = trigger.dataset.delete;
  try {
    await deleteImage(id);
  } catch (error) {
    box.remove();
    trigger.hidden = false;
    container?.classList.remove("is-deleting");
    if (errorBox) errorBox.textContent = error.message;
    trigger.focus();
    return;
  }
  if (trigger.dataset.afterDelete) {
    window.location.assign(trigger.dataset.afterDelete);
  } else {
    document.dispatchEvent(new CustomEvent("image-deleted", { detail: { id: Number(id) } }));
  }
}

// The delete button turns into "Delete? [Delete] [Cancel]" in place; Esc or Cancel undo that.
function askToDelete(trigger) {
  const container = trigger.closest(".tile, .image-view");
  const name = container?.querySelector(".tile-name, .view-title")?.textContent || t("this image");
  const box = document.createElement("span");
  box.className = "confirm-delete";
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", t("Delete {name}? This cannot be undone.", { name }));
  const question = document.createElement("span");
  question.className = "confirm-question";
  question.textContent = t("Delete?");
  const yes = makeButton(t("Delete"), "button danger confirm-yes");
  const no = makeButton(t("Cancel"), "button confirm-no");
  box.append(question, yes, no);
  const cancel = () => {
    box.remove();
    trigger.hidden = false;
    container?.classList.remove("is-confirming");
    trigger.focus();
  };
  no.addEventListener("click", cancel);
  box.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      cancel();
    }
  });
  yes.addEventListener("click", () => confirmedDelete(trigger, container, box, yes));
  trigger.hidden = true;
  container?.classList.add("is-confirming");
  trigger.after(box);
  no.focus(); // the safe choice: a second Enter never deletes by accident
}

document.addEventListener("click", async (event) => {
  const copyButton = event.target.closest("[data-copy-from]");
  if (copyButton) {
    const field = document.getElementById(copyButton.dataset.copyFrom);
    if (field) await copyWithFeedback(copyButton, field.value);
    return;
  }
  const trigger = event.target.closest("[data-delete]");
  if (trigger && !trigger.disabled && !trigger.hidden) askToDelete(trigger);
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
