"""The ai route's pure parts: list_capabilities rows from GetOrchestrator, and the reply checks of ``result``."""

from __future__ import annotations

import pytest

from livepeer.client import FileOutput, ProtocolError
from livepeer.client._ops import Reply
from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.client._route import Offering, Probe
from livepeer.client._routes import ai

URL = "https://o.example:8935"


def _info() -> bytes:
    info = pb.OrchestratorInfo()
    prices = [
        (37, "text-reversal", 300, 3),  # BYOC: 100 wei per second
        (27, "sd-turbo", 50, 10),  # text-to-image/sd-turbo: 5 wei per pixel
        (33, "", 7, 0),  # llm, no model, no pixelsPerUnit: the price itself
        (99, "unknown", 1, 1),  # not a pipeline we know: no row
        (37, "", 1, 1),  # BYOC without a capability name: no row
    ]
    for cap, constraint, per_unit, pixels in prices:
        pi = info.capabilities_prices.add()
        pi.capability, pi.constraint = cap, constraint
        pi.pricePerUnit, pi.pixelsPerUnit = per_unit, pixels
    models = info.capabilities.constraints.PerCapability[27].models
    models["sd-turbo"].capacity, models["sd-turbo"].capacityInUse = 4, 1
    models["busy"].capacity, models["busy"].capacityInUse = (
        1,
        3,
    )  # more in use than capacity: 0 free
    info.capabilities.constraints.PerCapability[99].models["x"].capacity = 1  # unknown id: no row
    return bytes(info.SerializeToString())


def test_offerings_from_getorchestrator() -> None:
    rows = ai.offerings_from_info(URL, Reply(200, {}, _info(), URL, 0.0))
    assert sorted(rows, key=lambda o: (o.capability, o.price_per_unit is None)) == [
        Offering("llm", URL, "ai", 7.0, "wei/pixel"),
        Offering("text-reversal", URL, "byoc", 100.0, "wei/second"),
        Offering("text-to-image/busy", URL, "ai", capacity=0),
        Offering("text-to-image/sd-turbo", URL, "ai", 5.0, "wei/pixel"),
        Offering("text-to-image/sd-turbo", URL, "ai", capacity=3),
    ]


def test_undecodable_getorchestrator_lists_nothing() -> None:
    assert ai.offerings_from_info(URL, Reply(200, {}, b"\xff\xff\xff", URL, 0.0)) == []


def _media(url: str) -> FileOutput:
    return FileOutput(url)


PROBE = Probe(URL, "ai", ok=True)


def test_result_checks_the_pipeline_reply_and_turns_media_urls_into_files() -> None:
    value = {"images": [{"url": "data:image/png;base64,AAAA", "seed": 1}]}
    out = ai.ROUTE.result("text-to-image", "application/json", value, PROBE, _media)
    assert isinstance(out, dict)
    image = out["images"][0]
    assert isinstance(image["url"], FileOutput)
    assert image["seed"] == 1


@pytest.mark.parametrize(
    ("ctype", "value", "why"),
    [
        ("application/json", {"error": {"message": "boom"}}, "200 with an error: boom"),
        ("application/json", {"nothing": 1}, "without 'images'"),
        ("text/html", None, "instead of JSON"),
    ],
)
def test_result_refuses_what_the_pipeline_does_not_answer(
    ctype: str, value: object, why: str
) -> None:
    with pytest.raises(ProtocolError, match=why):
        ai.ROUTE.result("text-to-image", ctype, value, PROBE, _media)


def test_other_routes_return_the_value_as_is() -> None:
    from livepeer.client._routes import apps, byoc

    value = {"error": "not ours to judge"}
    for route in (byoc.ROUTE, apps.ROUTE):
        assert route.result("x", "application/json", value, PROBE, _media) is value
