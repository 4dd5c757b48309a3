"""A minimal one-shot RESP client, for the node's own requests (joining a cluster)."""

from __future__ import annotations

import asyncio
from typing import Any

from redraft.resp import ErrorReply, ReplyParser, encode_command
from redraft.transport.peers import split_hostport


async def ask(addr: str, args: list[bytes], timeout: float = 5.0) -> Any:
    """Send one command to ``addr`` and return its reply.

    An error reply is returned as an ``Exception`` whose message is the error
    text (``"TRY 127.0.0.1:7481"``), not raised; connection problems raise.
    """
    host, port = split_hostport(addr)

    async def exchange() -> Any:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(encode_command(args))
            await writer.drain()
            parser = ReplyParser()
            while True:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError(f"{addr} closed the connection")
                replies = parser.parse(data)
                if replies:
                    reply = replies[0]
                    if isinstance(reply, ErrorReply):
                        return Exception(reply.text)
                    return reply
        finally:
            writer.close()

    return await asyncio.wait_for(exchange(), timeout)
