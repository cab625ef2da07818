"""An instant OpenAI-compatible endpoint for measuring orchestration overhead: every chat
completion is answered at once with a fixed, valid reply (a JSON object ``{"text": ...}``, numbered
so that no two replies are equal and no tool's duplicate filter changes the count).

A bare asyncio HTTP/1.1 server with keep-alive and no dependencies, so that it answers many
thousands of requests a second and the clients, not the server, are what is measured.

    python bench/instant_server.py --port 8123      # serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json

_COUNTER = itertools.count()
_MODELS = json.dumps(
    {"object": "list", "data": [{"id": "instant", "object": "model", "owned_by": "instant"}]}
).encode()


def completion() -> bytes:
    number = next(_COUNTER)
    content = json.dumps(
        {"text": f"A fine film, number {number}: the cast is strong and the ending lands well."}
    )
    return json.dumps(
        {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "instant",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 60, "completion_tokens": 20, "total_tokens": 80},
        }
    ).encode()


def response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            method, path, _ = request_line.split(" ", 2)
            if method == "POST" and path.endswith("/chat/completions"):
                writer.write(response("200 OK", completion()))
            elif method == "GET" and path.endswith("/models"):
                writer.write(response("200 OK", _MODELS))
            else:
                writer.write(response("404 Not Found", b'{"error": "not found"}'))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
