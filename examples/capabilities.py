"""Typed, generated wrappers: ``gw.capabilities.<name>.run(...)`` validates arguments before any network I/O.

LIVEPEER_TOKEN=... python examples/capabilities.py      # or: make demo
"""

from __future__ import annotations

import os
import sys
import tempfile

from livepeer.client import Gateway, LivepeerError

# Empty: go-livepeer's default model for the pipeline (stabilityai/sdxl-turbo), which the devnet's stand-in
# serves; on the network, any model an orchestrator offers.
MODEL = os.environ.get("LIVEPEER_IMAGE_MODEL", "")


def main() -> int:
    with Gateway() as gw:
        try:
            out = gw.capabilities.text_to_image.run(
                prompt="a cat", model_id=MODEL, width=64, height=64
            )
        except LivepeerError as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return 1
        image = out.images[0]
        path = os.path.join(tempfile.gettempdir(), "livepeer-cat.png")
        image.url.save(path)
        print(
            f"seed {image.seed}, nsfw {image.nsfw}, saved {len(image.url.read())} bytes to {path}"
        )
        try:
            gw.capabilities.text_to_image.run(prompt="a cat", model_id=MODEL, width="wide")  # type: ignore[arg-type]
        except LivepeerError as exc:  # a ValidationError, raised before any request was sent
            print(f"rejected before sending: {str(exc).splitlines()[0]}")
        for offer in gw.list_capabilities():  # what `livepeer capabilities` prints
            price = (
                "-" if offer.price_per_unit is None else f"{offer.price_per_unit:g} {offer.unit}"
            )
            print(f"{offer.capability:44} {offer.route:5} {price:>22} capacity {offer.capacity}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
