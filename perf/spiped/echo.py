#!/usr/bin/env python3
"""Echo server for the connection-rate and idle-memory benchmarks (research spiped.md 5.4).

usage: echo.py PORT   -- listens on 127.0.0.1:PORT, echoes every byte until EOF, then closes.
"""
import asyncio
import sys


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024, reuse_address=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
