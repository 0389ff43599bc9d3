"""A small live plot of the training loss and the validation score, drawn with QPainter.

No plotting library: two series and a few labels are all the dock needs.  The loss (left
axis, one point per batch, raw in a faint line and smoothed in a bold one) and the
validation score (right axis, one point per epoch; epoch 0 is the starting model) share
the x axis in batches.  A dashed line carries the starting model's score across, so an
epoch below it is plain to see.
"""
from __future__ import annotations

from qtpy.QtCore import QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

LOSS_COLOR = QColor(255, 160, 40)
SCORE_COLOR = QColor(80, 200, 120)


class LossPlot(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss: list[tuple[float, float]] = []  # (batch, loss)
        self.score: list[tuple[float, float]] = []  # (batch, validation score)
        self.x_max = 1.0
        self.reference: float | None = None  # the starting model's validation score
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("training loss per batch (left axis, bold: smoothed) and validation "
                        "score per epoch (right axis; the first point is the starting model)")

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(300, 170)

    # ---- data ------------------------------------------------------------------------------
    def clear(self, x_max: float = 1.0) -> None:
        self.loss, self.score, self.x_max = [], [], max(float(x_max), 1.0)
        self.reference = None
        self.update()

    def set_reference(self, value: float | None) -> None:
        finite = value is not None and value == value and abs(value) != float("inf")
        self.reference = float(value) if finite else None
        self.update()

    def add_loss(self, x: float, value: float) -> None:
        if value == value and abs(value) != float("inf"):  # finite only
            self.loss.append((float(x), float(value)))
            self.x_max = max(self.x_max, float(x))
            self.update()

    def add_score(self, x: float, value: float) -> None:
        if value == value and abs(value) != float("inf"):
            self.score.append((float(x), float(value)))
            self.update()

    def smoothed(self, alpha: float = 0.15) -> list[tuple[float, float]]:
        out, s = [], None
        for x, y in self.loss:
            s = y if s is None else (1 - alpha) * s + alpha * y
            out.append((x, s))
        return out

    # ---- drawing ---------------------------------------------------------------------------
    def paintEvent(self, event):  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        fg = pal.color(pal.ColorRole.WindowText)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        p.setFont(font)
        fm = p.fontMetrics()
        h_text = fm.height()
        area = QRectF(self.rect()).adjusted(fm.horizontalAdvance("0.000") + 8, h_text + 6,
                                            -(fm.horizontalAdvance("0.00") + 8), -(h_text + 4))
        grid = QColor(fg)
        grid.setAlpha(60)
        p.setPen(QPen(grid, 1))
        p.drawRect(area)
        self._legend(p, fm, fg)
        x0, x1 = 0.0, self.x_max
        p.setPen(fg)
        p.drawText(QRectF(area.left(), area.bottom() + 2, area.width(), h_text),
                   Qt.AlignmentFlag.AlignLeft, "0")
        p.drawText(QRectF(area.left(), area.bottom() + 2, area.width(), h_text),
                   Qt.AlignmentFlag.AlignRight, f"{x1:.0f} batches")
        if self.loss:
            ys = [y for _, y in self.loss]
            lo, hi = min(ys), max(ys)
            lo, hi = (lo - 0.05, hi + 0.05) if hi - lo < 1e-6 else (lo, hi)
            self._axis_labels(p, area, lo, hi, left=True, color=LOSS_COLOR)
            faint = QColor(LOSS_COLOR)
            faint.setAlpha(90)
            self._line(p, area, self.loss, (x0, x1, lo, hi), QPen(faint, 1))
            self._line(p, area, self.smoothed(), (x0, x1, lo, hi), QPen(LOSS_COLOR, 2))
        if self.score:
            ys = [y for _, y in self.score]
            lo, hi = max(0.0, min(ys) - 0.02), min(1.0, max(ys) + 0.02)
            lo, hi = (lo - 0.01, hi + 0.01) if hi - lo < 1e-6 else (lo, hi)
            self._axis_labels(p, area, lo, hi, left=False, color=SCORE_COLOR)
            if self.reference is not None and len(self.score) > 1:
                pen = QPen(SCORE_COLOR, 1, Qt.PenStyle.DashLine)
                self._line(p, area, [(x0, self.reference), (x1, self.reference)],
                           (x0, x1, lo, hi), pen)
            self._line(p, area, self.score, (x0, x1, lo, hi), QPen(SCORE_COLOR, 2), dots=True)
        if not self.loss and not self.score:
            p.setPen(grid)
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, "loss and validation score appear here")
        p.end()

    def _legend(self, p, fm, fg):
        x = 4.0
        for color, text in ((LOSS_COLOR, "training loss"), (SCORE_COLOR, "validation score")):
            p.setPen(QPen(color, 3))
            y = fm.height() / 2 + 2
            p.drawLine(QPointF(x, y), QPointF(x + 14, y))
            p.setPen(fg)
            p.drawText(QPointF(x + 18, fm.ascent() + 2), text)
            x += 30 + fm.horizontalAdvance(text)

    @staticmethod
    def _axis_labels(p, area, lo, hi, *, left, color):
        p.setPen(color)
        fm = p.fontMetrics()
        fmt = "{:.3g}" if left else "{:.2f}"
        for value, y in ((hi, area.top()), (lo, area.bottom() - fm.height())):
            rect = (QRectF(0, y, area.left() - 4, fm.height()) if left else
                    QRectF(area.right() + 4, y, fm.horizontalAdvance("0.000"), fm.height()))
            align = Qt.AlignmentFlag.AlignRight if left else Qt.AlignmentFlag.AlignLeft
            p.drawText(rect, align | Qt.AlignmentFlag.AlignVCenter, fmt.format(value))

    @staticmethod
    def _line(p, area, points, bounds, pen, dots=False):
        x0, x1, lo, hi = bounds

        def to_px(x, y):
            fx = (x - x0) / (x1 - x0) if x1 > x0 else 0.0
            fy = (y - lo) / (hi - lo) if hi > lo else 0.5
            return QPointF(area.left() + fx * area.width(), area.bottom() - fy * area.height())

        path = QPainterPath()
        for i, (x, y) in enumerate(points):
            (path.lineTo if i else path.moveTo)(to_px(x, y))
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)
        if dots:
            p.setBrush(pen.color())
            for x, y in points:
                p.drawEllipse(to_px(x, y), 3.0, 3.0)
