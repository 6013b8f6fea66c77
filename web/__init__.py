"""The web console: one page of plain ES modules over the native API (see ``web/routes.py``)."""

from web.routes import CONSOLE_LOGIN, is_console_path, router

__all__ = ["CONSOLE_LOGIN", "is_console_path", "router"]
