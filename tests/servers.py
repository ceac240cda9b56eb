"""Real servers the tests send to: an SMTP server (aiosmtpd) and an HTTP webhook receiver, on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A port nothing listens on (the SMTP server that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Inbox:
    """An aiosmtpd handler keeping what it accepts: (sender, recipients, parsed message)."""

    port: int = 0
    messages: list[tuple[str, list[str], Any]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    @property
    def subjects(self) -> list[str]:
        return [message["Subject"] for _, _, message in self.messages]

    def body(self, index: int = -1) -> str:
        return self.messages[index][2].get_content()


@contextmanager
def smtp_server(port: int | None = None, **smtp_options: Any) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(), ready_timeout=5, **smtp_options)
    controller.start()
    inbox.port = controller.port
    try:
        yield inbox
    finally:
        controller.stop()


@dataclass
class Hook:
    """What the webhook receiver got; ``statuses`` are answered in turn, then 200."""

    url: str = ""
    payloads: list[dict] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@contextmanager
def webhook_server() -> Iterator[Hook]:
    hook = Hook()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's hook name)
            hook.payloads.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            status = hook.statuses.pop(0) if hook.statuses else 200
            answer = b"ok" if status == 200 else b"something broke"
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_port}/services/T000/B000/secret-token"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


