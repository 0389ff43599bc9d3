"""Help for the docks: a link into ``docs/`` and a check that every control has a tooltip."""
from __future__ import annotations

from magicgui.widgets import Container, Label, ProgressBar
from magicgui.widgets.bases import ValueWidget

FALLBACK_PROJECT_URL = "https://github.com/napari-wbcseg/napari-wbcseg"
DISPLAY_ONLY = (Label, ProgressBar)  # show something, take no input


def project_url() -> str:
    """The project's source URL from the installed metadata ([project.urls] of pyproject)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("napari-wbcseg").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    for entry in urls:
        _, _, url = entry.partition(",")
        if url.strip().startswith("https://"):
            return url.strip().rstrip("/")
    return FALLBACK_PROJECT_URL


def docs_url(page: str) -> str:
    """Web address of ``docs/<page>`` (rendered by the code host)."""
    return f"{project_url()}/blob/main/docs/{page}"


def add_help_link(container: Container, page: str, text: str = "Help") -> Label:
    """Append a short link to ``docs/<page>`` that opens in the web browser."""
    from qtpy.QtCore import Qt

    url = docs_url(page)
    link = Label(name="help_link", tooltip=f"Open docs/{page} in the web browser ({url})")
    link.label = ""  # after creation: magicgui takes label="" for "use the name"
    native = link.native
    native.setTextFormat(Qt.TextFormat.RichText)
    native.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    native.setOpenExternalLinks(True)
    native.setText(f'<a href="{url}">{text}</a>')
    container.append(link)
    return link


def controls_without_tooltip(container: Container) -> list[str]:
    """Names of the input controls in ``container`` (nested containers included) that
    have no tooltip."""
    missing = []
    for widget in container:
        if isinstance(widget, Container):
            missing += controls_without_tooltip(widget)
        elif isinstance(widget, ValueWidget) and not isinstance(widget, DISPLAY_ONLY) \
                and not (widget.tooltip or "").strip():
            missing.append(widget.name or widget.label)
    return missing
