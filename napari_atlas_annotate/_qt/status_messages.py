"""How the dock widgets tell the user what happened: a status line plus, for errors, a
napari notification. The widget keeps running whatever the message."""

from __future__ import annotations


class StatusMessages:
    """Mixin for widgets with a ``self.status`` QLabel; remembers ``last_error``."""

    last_error: str = ""

    def _error(self, message: str | BaseException) -> None:
        self.last_error = str(message)
        self.status.setText(f"<span style='color:#e05050'>{self.last_error}</span>")
        try:
            from napari.utils.notifications import show_error

            show_error(self.last_error)
        except Exception:  # notifications are a courtesy; the status line shows the message
            pass

    def _info(self, message: str) -> None:
        self.status.setText(message)
