"""The review gallery's Qt list model, thumbnail loader and item painter.

One ``QListView`` shows every cell; a header item as wide as the view starts each group
(the view wraps after it).  Thumbnails are made off the GUI thread (a ``QThreadPool``),
only for the items the view paints (it asks for ``DecorationRole`` while painting; the
delegate's size hint never does), cached per (image, cell, nucleus + cytoplasm checksum,
class code): a reclassified cell gets a new outline colour, the other cells stay cached.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from qtpy.QtCore import QAbstractListModel, QModelIndex, QObject, QRect, QRunnable, QSize, Qt, \
    QThreadPool, Signal
from qtpy.QtGui import QColor, QFont, QImage, QPen, QPixmap
from qtpy.QtWidgets import QStyle, QStyledItemDelegate

from ..core.cell_thumbnails import cell_boxes, cell_thumbnail
from ..core.gallery_groups import GalleryRows

KIND_ROLE = Qt.ItemDataRole.UserRole + 1
REVIEWED_ROLE = Qt.ItemDataRole.UserRole + 2
HEADER, CELL = "header", "cell"
HEADER_HEIGHT = 22
PAD = 3  # px around a thumbnail inside its tile
MAX_CACHE = 6000  # thumbnails kept (96 px: ~27 kB each)
WORKERS = 2


@dataclass
class ThumbnailSource:
    """One image's pixels and label copies for the workers (never the live layers, which
    edits change in place), with its cell boxes found once, on first use."""

    image: np.ndarray
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    checksum: str
    scale: float
    _boxes: dict | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def boxes(self) -> dict:
        with self._lock:
            if self._boxes is None:
                self._boxes = cell_boxes(self.nucleus, self.cytoplasm)
            return self._boxes


def render(source: ThumbnailSource, cell_id: int, size: int, color: str) -> np.ndarray:
    """Any thread: the thumbnail of one cell (``cell_thumbnail`` looked up at call time)."""
    box = source.boxes().get(int(cell_id))
    if box is None:
        return np.full((size, size, 3), 60, np.uint8)
    return cell_thumbnail(source.image, source.nucleus, source.cytoplasm, cell_id, size=size,
                          scale=source.scale, outline=color, bbox=box)


class _Signals(QObject):
    done = Signal(object, object)  # cache key, RGB array (None on failure)


class _Job(QRunnable):
    def __init__(self, signals, key, source, cell_id, size, color):
        super().__init__()
        self.signals, self.key, self.args = signals, key, (source, cell_id, size, color)

    def run(self):
        try:
            rgb = render(*self.args)
        except Exception:  # a cell gone between request and run: a grey tile, no crash
            rgb = None
        try:
            self.signals.done.emit(self.key, rgb)
        except RuntimeError:  # the gallery was closed meanwhile
            pass


def _pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QPixmap.fromImage(QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())


class GalleryModel(QAbstractListModel):
    def __init__(self, size: int = 96, parent=None):
        super().__init__(parent)
        self.size = size
        self.rows = GalleryRows([])
        self.sources: dict[str, ThumbnailSource] = {}
        self.colors: dict[int, str] = {}
        self._cache: dict[tuple, QPixmap] = {}
        self._pending: set[tuple] = set()
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(WORKERS)
        self._signals = _Signals()
        self._signals.done.connect(self._on_done)
        self.placeholder = QPixmap(size, size)
        self.placeholder.fill(QColor("#303030"))

    # ---- Qt model ------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()):  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.rows)

    def flags(self, index):
        row = self.rows.rows[index.row()] if index.isValid() else None
        if row is None or row.cell is None:
            return Qt.ItemFlag.NoItemFlags  # headers are never current nor selected
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        row = self.rows.rows[index.row()]
        if role == KIND_ROLE:
            return HEADER if row.cell is None else CELL
        if row.cell is None:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.rows.header_text(row.group)
            if role == Qt.ItemDataRole.ForegroundRole:
                return QColor(self.rows.groups[row.group].color)
            return None
        cell = row.cell
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnail(cell)
        if role == REVIEWED_ROLE:
            return cell.reviewed
        if role == Qt.ItemDataRole.DisplayRole:
            conf = cell.confidence
            return "" if not np.isfinite(conf) else f"{conf:.2f}"
        if role == Qt.ItemDataRole.ToolTipRole:
            conf = "" if not np.isfinite(cell.confidence) else f", confidence {cell.confidence:.2f}"
            return (f"{cell.image}, cell {cell.cell_id}: code {cell.code}{conf}"
                    f"{', cut by the border' if cell.touches_border else ''}"
                    f"{', reviewed' if cell.reviewed else ''}")
        return None

    # ---- contents ------------------------------------------------------------------------
    def set_rows(self, rows: GalleryRows) -> bool:
        """Show ``rows``; True when the layout changed (a reset), False when only the
        cells' data did (the view keeps its scroll position and current item)."""
        if rows.layout == self.rows.layout:
            self.rows = rows
            if len(rows):
                self.dataChanged.emit(self.index(0), self.index(len(rows) - 1))
            return False
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()
        return True

    def cache_key(self, cell) -> tuple | None:
        source = self.sources.get(cell.image)
        return None if source is None else (cell.image, cell.cell_id, source.checksum, cell.code)

    def thumbnail(self, cell) -> QPixmap:
        """The cached thumbnail, else the placeholder and a request to the workers."""
        key = self.cache_key(cell)
        if key is None:
            return self.placeholder
        pix = self._cache.get(key)
        if pix is not None:
            return pix
        if key not in self._pending:
            self._pending.add(key)
            color = self.colors.get(cell.code, "#808080")
            self.pool.start(_Job(self._signals, key, self.sources[cell.image], cell.cell_id,
                                 self.size, color))
        return self.placeholder

    def _on_done(self, key, rgb) -> None:
        self._pending.discard(key)
        if rgb is None:
            return
        if len(self._cache) >= MAX_CACHE:
            for old in list(self._cache)[:MAX_CACHE // 4]:  # oldest first (dict order)
                del self._cache[old]
        self._cache[key] = _pixmap(rgb)
        row = self.rows.row_of(key[:2])
        if row is not None:
            ix = self.index(row)
            self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])

    def close(self) -> None:
        try:
            self.pool.clear()  # queued jobs never start; running ones find no receiver
            self._signals.done.disconnect(self._on_done)
        except (RuntimeError, TypeError):  # already deleted with the application
            pass


class GalleryDelegate(QStyledItemDelegate):
    """Paints headers as a full-width bar, cells as their thumbnail with a frame."""

    def __init__(self, view, size: int):
        super().__init__(view)
        self.view, self.size = view, size

    def sizeHint(self, option, index):  # noqa: N802 (Qt API) -- never asks for the thumbnail
        if index.data(KIND_ROLE) == HEADER:
            width = self.view.viewport().width() - 2 * self.view.spacing() - 2
            return QSize(max(width, self.size), HEADER_HEIGHT)
        return QSize(self.size + 2 * PAD, self.size + 2 * PAD)

    def paint(self, painter, option, index):
        rect = option.rect
        painter.save()
        if index.data(KIND_ROLE) == HEADER:
            painter.fillRect(rect, QColor("#262930"))
            font = QFont(option.font)
            font.setBold(True)
            painter.setFont(font)
            painter.setPen(index.data(Qt.ItemDataRole.ForegroundRole) or QColor("white"))
            painter.drawText(rect.adjusted(6, 0, 0, 0), int(Qt.AlignmentFlag.AlignVCenter),
                             index.data(Qt.ItemDataRole.DisplayRole) or "")
            painter.restore()
            return
        pix = index.data(Qt.ItemDataRole.DecorationRole)
        inner = QRect(rect.x() + PAD, rect.y() + PAD, self.size, self.size)
        if pix is not None:
            painter.drawPixmap(inner, pix)
        conf = index.data(Qt.ItemDataRole.DisplayRole)
        if conf:
            painter.fillRect(QRect(inner.x(), inner.bottom() - 13, 30, 14), QColor(0, 0, 0, 150))
            painter.setPen(QColor("white"))
            painter.drawText(QRect(inner.x() + 2, inner.bottom() - 13, 30, 14),
                             int(Qt.AlignmentFlag.AlignVCenter), conf)
        if index.data(REVIEWED_ROLE):
            painter.setPen(QPen(QColor("#40ff40"), 2))
            painter.drawText(QRect(inner.right() - 15, inner.y() + 1, 14, 14),
                             int(Qt.AlignmentFlag.AlignCenter), "\u2713")
        if option.state & QStyle.StateFlag.State_Selected:
            painter.setPen(QPen(QColor("white"), 3))
            painter.drawRect(rect.adjusted(1, 1, -2, -2))
        painter.restore()
