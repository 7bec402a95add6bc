"""``faceprint gallery protect``: start a gallery of protected templates (:mod:`faceprint.privacy.protect`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from faceprint.cli.common import emit, fail, out, state
from faceprint.errors import FaceprintError


def protect(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Protect an empty (or new) gallery's templates with the key in $FACEPRINT_PROTECT_KEY or the file
    $FACEPRINT_PROTECT_KEY_FILE names (32 random bytes as hex or base64): every template is stored
    multiplied by the key's secret orthogonal matrix, scores stay the same, and galleries under
    different keys cannot be linked. The gallery records only a fingerprint of the key; every later
    enrolment and search needs the same key."""
    from faceprint import settings
    from faceprint.privacy.protect import KEY_HINT, SETTING, protect_gallery

    try:
        key = settings.protect_key()
        if key is None:
            raise fail(f"no protection key: set {KEY_HINT} ({settings.KEY_FORMAT})", 2)
        gallery = state.open_gallery(create=True)
        done = protect_gallery(gallery.store, key)
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    fingerprint = gallery.setting(SETTING)["fingerprint"]
    if as_json:
        emit({"gallery": str(gallery.store.path), "protected": True, "changed": done, "fingerprint": fingerprint})
    elif done:
        out.print(f"{escape(str(gallery.store.path))}: templates will be protected (key fingerprint {fingerprint})")
    else:
        out.print(f"{escape(str(gallery.store.path))}: already protected with this key (fingerprint {fingerprint})")


def register(app: typer.Typer) -> None:
    from faceprint.cli.gallery_admin import gallery_app

    gallery_app.command("protect")(protect)
