"""A real SMTP server (Debian's python3-aiosmtpd) for the vitals-notify tests.

Usage: python3 smtp_sink.py MAILDIR [USER:PASSWORD]

Listens on 127.0.0.1 on a port the OS picks and prints that port as its first line. Every
accepted message is parsed with Python's own MIME parser and saved as MAILDIR/<n>.json
(envelope, headers, decoded parts), written to a temporary name first so that a reader never
sees half a file. Recipients starting with "reject" are refused with 550. With USER:PASSWORD,
AUTH (PLAIN/LOGIN) is offered without TLS and required before MAIL. The server exits when its
parent process goes away, so a crashed test leaves nothing running.
"""

import asyncio
import email
import email.policy
import json
import os
import sys

from aiosmtpd.smtp import SMTP, AuthResult


class Saver:
    def __init__(self, maildir):
        self.maildir = maildir
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append({"type": part.get_content_type(), "content": part.get_content()})
        login = getattr(session, "login_data", None)
        doc = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated": bool(session.authenticated),
            "login": login.decode() if isinstance(login, bytes) else login,
            "content_type": msg.get_content_type(),
            "headers": [[k, str(v)] for k, v in msg.items()],
            "parts": parts,
        }
        tmp = os.path.join(self.maildir, ".%d.tmp" % self.count)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, os.path.join(self.maildir, "%d.json" % self.count))
        return "250 2.0.0 Ok: queued as %d" % self.count


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        if ok:
            session.login_data = auth_data.login
        return AuthResult(success=ok, handled=False)

    return authenticate


async def watch_parent(parent):
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    os._exit(0)


async def main():
    maildir = sys.argv[1]
    auth = sys.argv[2] if len(sys.argv) > 2 else None
    handler = Saver(maildir)
    kwargs = {"hostname": "sink.test"}
    if auth:
        user, password = auth.split(":", 1)
        kwargs.update(
            authenticator=authenticator_for(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **kwargs), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    asyncio.ensure_future(watch_parent(os.getppid()))
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
