"""Domain errors: what went wrong, in words a person can act on. No HTTP here;
`handlers/base.py` is the one place that turns these into status codes."""

from collections.abc import Callable
from typing import Any


class ImageHostingError(Exception):
    """Base class; `message` is safe to show to the client.

    The text is an English template with `{name}` fields filled from `params`, so it can be
    translated first and filled in afterwards (`render`)."""

    default_message = "Something went wrong."

    def __init__(self, message: str | None = None, **params: Any) -> None:
        self.template = message or self.default_message
        self.params = params
        self.message = self.template.format(**params) if params else self.template
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in an image worker process and re-raised here: keep the template and its
        # fields (the default would keep only the English text, untranslatable).
        return _rebuild, (type(self), self.template, self.params)

    def render(self, translate: Callable[[str], str]) -> str:
        text = translate(self.template)
        return text.format(**self.params) if self.params else text


class InvalidUpload(ImageHostingError):
    default_message = "The upload is missing or malformed."


class UploadTooLarge(ImageHostingError):
    default_message = "The file is larger than the upload limit."


class ImageTooManyPixels(UploadTooLarge):
    default_message = "The image has too many pixels."


class UnsupportedImage(ImageHostingError):
    default_message = "The file is not a JPEG, PNG or GIF image."


class InvalidPage(ImageHostingError):
    default_message = "The page number must be a positive whole number."


class NotFound(ImageHostingError):
    default_message = "Nothing is here."


class ImageNotFound(NotFound):
    default_message = "No such image. It may have been deleted."


class PageNotFound(NotFound):
    default_message = "The gallery has no such page."


class NotAuthenticated(ImageHostingError):
    default_message = "Those credentials are not valid."


class NotAllowed(ImageHostingError):
    default_message = "Only the person who uploaded this image can delete it."


class ServiceUnavailable(ImageHostingError):
    default_message = "The service is temporarily unavailable. Please try again in a moment."


def _rebuild(cls: type[ImageHostingError], template: str, params: dict[str, Any]) -> Exception:
    return cls(template, **params)
