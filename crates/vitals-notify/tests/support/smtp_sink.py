"""A real SMTP server (Debian's python3-aiosmtpd) for the vitals-notify tests.

Usage: python3 smtp_sink.py MAILDIR [--auth USER:PASSWORD] [--starttls|--implicit CERT KEY]

Listens on 127.0.0.1 on a port the OS picks and prints that port as its first line. Every
accepted message is parsed with Python's own MIME parser and saved as MAILDIR/<n>.json
(envelope, headers, decoded parts), written to a temporary name first so that a reader never
sees half a file. Recipients starting with "reject" are refused with 550. With --auth, AUTH
(PLAIN/LOGIN) is offered, also without TLS, and required before MAIL. With --starttls the
server requires STARTTLS before anything else; with --implicit it speaks TLS from the first
byte (SMTPS). The server exits when its parent process goes away, so a crashed test leaves
nothing running.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl

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
        login = getattr(session, "vitals_login", None)
        doc = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated": bool(session.authenticated),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
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
            session.vitals_login = auth_data.login
        return AuthResult(success=ok, handled=False)

    return authenticate


async def watch_parent(parent):
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    os._exit(0)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("maildir")
    parser.add_argument("--auth")
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--implicit", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    handler = Saver(args.maildir)
    kwargs = {"hostname": "sink.test"}
    if args.auth:
        user, password = args.auth.split(":", 1)
        kwargs.update(
            authenticator=authenticator_for(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    server_ssl = None
    for pair, implicit in ((args.starttls, False), (args.implicit, True)):
        if pair:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(pair[0], pair[1])
            if implicit:
                server_ssl = ctx
            else:
                kwargs.update(tls_context=ctx, require_starttls=True)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **kwargs), "127.0.0.1", 0, ssl=server_ssl
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    asyncio.ensure_future(watch_parent(os.getppid()))
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
