"""A stand-in for Docker's embedded DNS server (127.0.0.11 inside every container of a
user-defined network), for the Compose emulation tier.

    python tests/emulated_dns.py ADDRESS TABLE.json

Answers A queries for the names in TABLE.json (`{"backend": ["127.0.0.3"], ...}`: every
running container of a service, as Docker answers a service name) with a TTL of 600 s, as
Docker does; AAAA queries for those names get an empty answer (the networks have no IPv6),
and any other name NXDOMAIN (Docker would forward it to the host's resolvers; the emulation's
network has none). The table is read again for every query, so a test can move or add a
container. Prints `ready` once it listens.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
from pathlib import Path

TTL = 600
TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1


def parse_question(packet: bytes) -> tuple[str, int, int, int]:
    """(name, type, class, end offset) of the first question."""
    labels = []
    offset = 12
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype, qclass = struct.unpack(">HH", packet[offset + 1 : offset + 5])
    return ".".join(labels).lower(), qtype, qclass, offset + 5


def answer(packet: bytes, table: dict[str, list[str]]) -> bytes:
    query_id, flags = struct.unpack(">HH", packet[:4])
    name, qtype, qclass, end = parse_question(packet)
    question = packet[12:end]
    addresses = table.get(name.rstrip("."))
    records = b""
    rcode = 0
    if addresses is None:
        rcode = 3  # NXDOMAIN
    elif qtype == TYPE_A and qclass == CLASS_IN:
        for address in addresses:
            records += struct.pack(">HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4)
            records += socket.inet_aton(address)
    count = len(addresses or []) if qtype == TYPE_A else 0
    # QR, the query's RD bit, RA; one question; `count` answers.
    reply_flags = 0x8080 | (flags & 0x0100) | rcode
    header = struct.pack(">HHHHHH", query_id, reply_flags, 1, count, 0, 0)
    return header + question + records


def main() -> None:
    address, table_path = sys.argv[1], Path(sys.argv[2])
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((address, 53))
    print("ready", flush=True)
    while True:
        packet, client = server.recvfrom(4096)
        try:
            reply = answer(packet, json.loads(table_path.read_text()))
        except (IndexError, struct.error, ValueError):
            continue  # not a query this server understands: no answer, as a lost packet
        server.sendto(reply, client)


if __name__ == "__main__":
    main()
