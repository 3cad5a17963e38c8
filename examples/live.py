"""Live video-to-video: publish generated frames, read transformed frames, steer with control, watch events.

    LIVEPEER_TOKEN=... python examples/live.py          # or: make demo (starts a local devnet first)

Against the devnet, model ``grayscale`` turns the colour bars gray; ``noop`` passes them through.
"""

from __future__ import annotations

import os

import anyio
import numpy as np

from livepeer.client import Gateway

FPS = 15
SECONDS = 3


def colour_bars(i: int, size: int = 256) -> np.ndarray:
    """Moving RGB bars, so the output visibly changes from frame to frame."""
    x = (np.arange(size) + 4 * i) % size
    frame = np.zeros((size, size, 3), np.uint8)
    frame[:, :, 0] = (x < size // 3) * 255
    frame[:, :, 1] = ((x >= size // 3) & (x < 2 * size // 3)) * 255
    frame[:, :, 2] = (x >= 2 * size // 3) * 255
    return frame


async def main() -> None:
    model = os.environ.get("LIVEPEER_LIVE_MODEL", "grayscale")
    async with Gateway() as gw, gw.live("live-video-to-video", model=model) as session:
        print(f"session {session.stream_id} on {session.orchestrator}")
        output = session.subscribe()
        events = session.events()

        async def publish() -> None:
            async with session.publish(fps=FPS) as pub:
                for i in range(FPS * SECONDS):
                    await pub.write_frame(colour_bars(i))
                    await anyio.sleep(1 / FPS)

        async with anyio.create_task_group() as tg:
            tg.start_soon(publish)
            await session.control.write({"prompt": "make it moody"})
            received = 0
            async for frame in output:
                received += 1
                if received == 1:
                    r, g, b = frame.to_ndarray(format="rgb24")[0, 0]
                    print(
                        f"first output frame {frame.width}x{frame.height}, pixel (r={r}, g={g}, b={b})"
                    )
                if received >= FPS * SECONDS // 2:
                    break
            print(f"received {received} output frames")
            event = await events.__anext__()
            print(f"event: {event.get('type')} {event.get('state', '')}".rstrip())
            tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)
