"""A small live plot of training loss and validation accuracy, drawn with QPainter.

Light on purpose: it is redrawn after every training iteration on the GUI thread, where
a plotting library's redraw would cost more than the whole rest of an update.
"""

from __future__ import annotations

import math
from typing import Optional

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

__all__ = ["TrainingPlot"]

LOSS_COLOUR = QColor(255, 140, 60)
ACCURACY_COLOUR = QColor(90, 180, 255)


class TrainingPlot(QWidget):
    """Loss (left scale, from 0 to its largest value) and validation accuracy (right, 0-1)
    against the iteration count of the session."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.loss: list[tuple[int, float]] = []
        self.accuracy: list[tuple[int, float]] = []
        self.setToolTip("training loss (orange, left scale) and validation accuracy (blue, 0 to 1)")

    def clear(self) -> None:
        self.loss.clear()
        self.accuracy.clear()
        self.update()

    def add(self, step: int, loss: float, accuracy: Optional[float]) -> None:
        """One iteration's loss and (when measured) validation accuracy."""
        if math.isfinite(loss):
            self.loss.append((step, loss))
        if accuracy is not None and (not self.accuracy or self.accuracy[-1][1] != accuracy
                                     or step - self.accuracy[-1][0] > 1):
            self.accuracy.append((step, accuracy))
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().windowText().color()
        metrics = painter.fontMetrics()
        margin = metrics.horizontalAdvance("0.00") + 8
        area = QRectF(margin, 6, max(self.width() - 2 * margin, 10), max(self.height() - metrics.height() - 14, 10))
        painter.setPen(QPen(text, 1))
        painter.drawRect(area)
        if not self.loss:
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "loss and validation accuracy appear here")
            return
        last = max(self.loss[-1][0], 1)
        top_loss = max(v for _, v in self.loss) or 1.0
        self._line(painter, area, self.loss, last, top_loss, LOSS_COLOUR)
        self._line(painter, area, self.accuracy, last, 1.0, ACCURACY_COLOUR)
        bottom = area.bottom() + metrics.height() + 4
        painter.setPen(LOSS_COLOUR)
        painter.drawText(QPointF(2, area.top() + metrics.ascent()), f"{top_loss:.2f}")
        painter.drawText(QPointF(2, area.bottom()), "0")
        painter.drawText(QPointF(area.left(), bottom), "loss")
        painter.setPen(ACCURACY_COLOUR)
        painter.drawText(QPointF(area.right() + 4, area.top() + metrics.ascent()), "1")
        painter.drawText(QPointF(area.right() + 4, area.bottom()), "0")
        # The longer wording where the widget is wide enough, so labels never overlap.
        label, count = "validation accuracy", f"{last} iterations"
        free = area.width() - metrics.horizontalAdvance("loss") - 16
        if metrics.horizontalAdvance(label) + metrics.horizontalAdvance(count) > free:
            label, count = "accuracy", f"{last} it."
        painter.drawText(QPointF(area.right() - metrics.horizontalAdvance(label), bottom), label)
        painter.setPen(text)
        painter.drawText(QPointF(area.center().x() - metrics.horizontalAdvance(count) / 2, bottom), count)

    @staticmethod
    def _line(painter: QPainter, area: QRectF, points, last: int, top: float, colour: QColor) -> None:
        if not points:
            return
        path = QPainterPath()
        for i, (step, value) in enumerate(points):
            x = area.left() + area.width() * step / last
            y = area.bottom() - area.height() * min(max(value / top, 0.0), 1.0)
            if i == 0:
                path.moveTo(x, y)
            else:
                path.lineTo(x, y)
        painter.setPen(QPen(colour, 1.5))
        painter.drawPath(path)
