"""The ASGI app of one backend: the emulated API (:mod:`picky_mock.api`), the admin API
(:mod:`picky_mock.admin`) and the connection check of the transport faults
(:mod:`picky_mock.transport`), composed.

Nothing here decides anything about the API; see :mod:`picky_mock.backend`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import admin
from .api import ADMIN_PREFIX, BALANCE_PATHS, PUSH_PATHS, ApiRoutes, unknown_path
from .backend import Backend
from .guard import AdminGuard
from .transport import CONNECTION_PATH, InProcessFault, answer_connection_check

__all__ = ["ADMIN_PREFIX", "BALANCE_PATHS", "PUSH_PATHS", "InProcessFault", "PickyApp", "create_app"]

_EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class PickyApp:
    """The ASGI app of one backend.

    Requests to the API paths go straight to :class:`~picky_mock.api.ApiRoutes` (the hot path: no
    routing table or middleware in between), and so does the connection check, which needs the
    server's own ``send``; everything else (the admin API, unknown paths) is served by the Starlette
    app in :attr:`starlette`, whose state holds the backend.
    """

    def __init__(self, backend: Backend | None = None) -> None:
        self.backend = backend = backend or Backend()
        self.api = ApiRoutes(backend)
        self.starlette = Starlette(
            lifespan=self._lifespan,
            routes=[
                *admin.ROUTES,
                Route(ADMIN_PREFIX, admin.not_found, methods=_EVERY_METHOD),
                Route(ADMIN_PREFIX + "/{rest:path}", admin.not_found, methods=_EVERY_METHOD),
                Route("/{rest:path}", unknown_path, methods=_EVERY_METHOD),
            ]
        )
        self.starlette.router.redirect_slashes = False
        self.starlette.router.default = self._unmatched
        self.starlette.state.backend = backend
        self.state = self.starlette.state
        self._judges = self.api.judges

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Under a server that runs the ASGI lifespan (``picky-mock serve`` does), the webhook
        dispatcher delivers from the server's own event loop, not a thread of its own
        (:meth:`~picky_mock.webhooks.Dispatcher.attach`)."""
        self.backend.start(attach=True)
        try:
            yield
        finally:
            await self.backend.webhooks.detach()
            self.backend.close()  # stopped: the next startup attaches again

    async def _unmatched(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A path even the catch-all routes do not match (one with a newline: their patterns stop at
        it): the same JSON 404 as any other unknown path, not Starlette's plain-text one."""
        path: str = scope["path"]
        admin_path = path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")
        response = await (admin.not_found if admin_path else unknown_path)(Request(scope, receive))
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path in self._judges:
                await self.api(scope, receive, send)
                return
            if path == CONNECTION_PATH and scope["method"] == "GET":
                await answer_connection_check(scope, receive, send)
                return
        await self.starlette(scope, receive, send)


def create_app(backend: Backend | None = None) -> AdminGuard:
    """The ASGI app over ``backend`` (a fresh one with default settings when not given), behind
    the admin API's protection (:mod:`picky_mock.guard`)."""
    app = PickyApp(backend)
    return AdminGuard(app, app.backend.settings)
