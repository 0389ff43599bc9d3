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
    # napari's dark theme draws Qt's default link blue nearly unreadable
    native.setText(f'<a href="{url}" style="color: #7fb0ff;">{text}</a>')
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


#: Qt classes a user acts on (magicgui builds every control from these)
_CONTROL_CLASSES = ("QAbstractButton", "QAbstractSpinBox", "QComboBox", "QLineEdit",
                    "QAbstractSlider", "QTextEdit", "QPlainTextEdit")


def native_controls_without_tooltip(root) -> list[str]:
    """Descriptions of the Qt controls under the QWidget ``root`` whose tooltip is empty,
    on the control and on each of its parents up to ``root`` (a spin box's inner line edit
    shares its spin box's tooltip).  Hidden and disabled controls count too: they appear."""
    from qtpy import QtWidgets

    classes = tuple(getattr(QtWidgets, name) for name in _CONTROL_CLASSES)
    missing = []
    for widget in root.findChildren(QtWidgets.QWidget):
        if (not isinstance(widget, classes) or isinstance(widget, QtWidgets.QScrollBar)
                or widget.objectName() == "qt_tableview_cornerbutton"):
            continue  # a scroll area's bars and a table's corner are not the dock's controls
        w, tip = widget, ""
        while w is not None and not tip:
            tip = (w.toolTip() or "").strip()
            w = None if w is root else w.parentWidget()
        if not tip:
            text = (widget.text() if isinstance(widget, (QtWidgets.QAbstractButton,
                                                         QtWidgets.QLineEdit)) else
                    widget.currentText() if isinstance(widget, QtWidgets.QComboBox) else "")
            missing.append(f"{type(widget).__name__} {text or widget.objectName()!r}")
    return missing


def help_links(root) -> list[str]:
    """The docs pages (``docs/<page>``) the help links under the QWidget ``root`` open."""
    import re

    from qtpy import QtWidgets

    pages = []
    for label in root.findChildren(QtWidgets.QLabel):
        pages += re.findall(r'href="[^"]*/docs/([^"]+)"', label.text())
    return pages
