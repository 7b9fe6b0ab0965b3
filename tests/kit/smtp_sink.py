"""A real SMTP server for the tests (aiosmtpd): accepts every message on 127.0.0.1:PORT and
writes each, parsed by Python's email package, as one JSON file into OUT_DIR. A recipient at the
domain `reject.test` is refused for good (550), as a relay refuses an address that does not exist.

    python smtp_sink.py PORT OUT_DIR

Prints `ready` once it listens; runs until killed.
"""
import email
import json
import os
import sys
import threading
import time
import uuid
from email import policy

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().endswith("@reject.test"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        attachments = [
            {
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "method": part.get_param("method"),
                "content": part.get_content() if part.get_content_maintype() == "text"
                else None,
            }
            for part in msg.iter_attachments()
        ]
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "reply_to": str(msg["Reply-To"]) if msg["Reply-To"] else None,
            "subject": str(msg["Subject"]),
            "message_id": str(msg["Message-ID"]) if msg["Message-ID"] else None,
            "date": str(msg["Date"]) if msg["Date"] else None,
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "attachments": attachments,
        }
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}"
        tmp = os.path.join(self.out, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out, name + ".json"))
        return "250 Message accepted"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
