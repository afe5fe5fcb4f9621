"""The request body limit, enforced on the bytes as they arrive (chunked bodies included).

A pure ASGI middleware outside everything else (auth, routing, FastAPI's body reading): a
declared Content-Length over the limit is refused before any byte of the body is read, and
a streamed body is cut the moment it passes the limit, so no request can make the process
hold more than the limit (plus the server's read buffer).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.models import Error


class BodyTooLarge(Exception):  # noqa: N818 - it is the condition, not an error of ours
    """Raised into the application when the body passes the limit."""


def error_response(status: int, detail: str) -> tuple[Message, Message]:
    """The two ASGI messages of a JSON error answer that closes the connection."""
    body = Error(detail=detail).model_dump_json().encode()
    start: Message = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        # Close: the unread rest of the body is never read, nor another request after it.
        (b"connection", b"close"),
    ]}
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """Answer 413 once a request body passes ``max_bytes``; never read the rest."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and (declared < 0 or declared > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        started = answered = False

        async def limited_receive() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not started:
                        await self._refuse(send)
                        answered = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:  # our 413 went out: whatever the app makes of the error is dropped
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not answered:
                raise

    async def _refuse(self, send: Send) -> None:
        for message in error_response(413, f"request body over {self.max_bytes} bytes"):
            await send(message)


def _content_length(scope: Scope) -> int | None:
    """The declared length; -1 when it is not a number (h11 refuses those before us)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None
