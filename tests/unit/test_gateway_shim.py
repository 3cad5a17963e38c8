"""The livepeer_gateway shim: every 1.0.0 name importable, deprecated, mapped or failing clearly."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import warnings

import pytest

import livepeer.client as client
import livepeer.trickle as trickle
from livepeer.client import LiveSession
from livepeer.trickle import media

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import livepeer_gateway as shim

# The public names of livepeer_gateway 1.0.0's __init__ (its __all__), as released on PyPI.
V1_NAMES = [
    "Control",
    "ControlConfig",
    "ControlMode",
    "ByocJobRequest",
    "ByocJobResponse",
    "ByocTrainingRequest",
    "ByocTrainingResponse",
    "ByocTrainingStatus",
    "ChannelWriter",
    "CapabilityId",
    "build_capabilities",
    "discover_orchestrators",
    "discover_runners",
    "get_training_status",
    "get_orch_info",
    "LiveVideoToVideo",
    "LiveRunnerCallResult",
    "LiveRunnerCallStream",
    "LiveRunnerGPU",
    "LiveRunnerInstance",
    "LiveRunnerPriceInfo",
    "LiveRunnerRegistration",
    "LiveRunnerSession",
    "LiveRunnerSessionCallback",
    "LiveRunnerSessionEvent",
    "LivePaymentChallenge",
    "LivePaymentSession",
    "LiveRunnerProxy",
    "LivepeerGatewayError",
    "LivepeerHTTPError",
    "NoOrchestratorAvailableError",
    "NoRunnerAvailableError",
    "OrchestratorRejection",
    "RunnerRejection",
    "PaymentError",
    "MediaPublish",
    "MediaPublishConfig",
    "MediaPublishTrack",
    "MediaPublishStats",
    "TrackQueueStats",
    "VideoOutputConfig",
    "AudioOutputConfig",
    "MediaOutput",
    "MediaOutputStats",
    "MediaBytesCallback",
    "MediaFrameCallback",
    "MediaPacketCallback",
    "AudioDecodedMediaFrame",
    "DecodedMediaFrame",
    "DemuxedMediaPacket",
    "ChannelEventCallback",
    "ChannelReader",
    "JSONLReader",
    "JSONLWriter",
    "Events",
    "PaymentSession",
    "parse_token",
    "RunnerSelectionCursor",
    "SelectionCursor",
    "orchestrator_selector",
    "runner_selector",
    "reserve_session",
    "StartJobRequest",
    "call_runner",
    "create_proxy",
    "create_trickle_channels",
    "register_runner",
    "remove_trickle_channels",
    "refresh_training_payment",
    "start_lv2v",
    "start_scope",
    "stop_runner_session",
    "submit_byoc_job",
    "submit_training_job",
    "TricklePublishError",
    "TricklePublisher",
    "TricklePublisherStats",
    "TricklePublisherTerminalError",
    "SegmentReader",
    "SegmentReaderStats",
    "TrickleSegmentWriteError",
    "TrickleSubscriber",
    "TrickleSubscriberStats",
    "VideoDecodedMediaFrame",
    "wait_for_training",
    "list_capabilities",
]


def test_every_v1_name_is_exported_and_importable() -> None:
    assert sorted(shim.__all__) == sorted(V1_NAMES)
    concrete = {"ByocJobRequest", "ByocJobResponse", "parse_token", "submit_byoc_job"}
    for name in concrete:  # real adapters: they warn when used (tested below)
        assert callable(getattr(shim, name))
    for name in sorted(set(V1_NAMES) - concrete):
        with pytest.warns(DeprecationWarning, match=f"livepeer_gateway.{name} is deprecated; use "):
            assert getattr(shim, name) is not None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("LivepeerGatewayError", client.LivepeerError),
        ("LivepeerHTTPError", client.APIStatusError),
        ("NoOrchestratorAvailableError", client.NoOrchestratorError),
        ("PaymentError", client.PaymentError),
        ("OrchestratorRejection", client.Rejection),
        ("TricklePublisher", trickle.TricklePublisher),
        ("TrickleSubscriber", trickle.TrickleSubscriber),
        ("JSONLWriter", trickle.JsonlWriter),
        ("ChannelReader", trickle.JsonSegmentReader),
        ("MediaPublish", media.MediaPublisher),
        ("LiveVideoToVideo", LiveSession),
    ],
)
def test_names_with_an_equivalent_are_the_new_objects(old: str, new: object) -> None:
    with pytest.warns(DeprecationWarning, match=f"livepeer_gateway.{old} is deprecated"):
        assert getattr(shim, old) is new


@pytest.mark.parametrize("name", ["start_lv2v", "get_orch_info", "submit_training_job", "Control"])
def test_names_without_an_equivalent_fail_clearly_when_used(name: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"livepeer_gateway.{name} is deprecated"):
        old = getattr(shim, name)
    with pytest.raises(client.LivepeerError, match=f"livepeer_gateway.{name} has no equivalent"):
        old("https://orch.example:8935")
    with pytest.raises(client.LivepeerError, match=r"docs/migration\.md"):
        old.some_attribute  # noqa: B018


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        shim.nope  # noqa: B018


def test_parse_token_keeps_the_v1_dict_shape() -> None:
    token = base64.b64encode(
        json.dumps(
            {"orchestrators": ["orch.example:8935"], "signer": "https://s.example", "x": 1}
        ).encode()
    ).decode()
    with pytest.warns(DeprecationWarning, match="use Gateway"):
        parsed = shim.parse_token(token)
    assert parsed == {"orchestrators": ["https://orch.example:8935"], "signer": "https://s.example"}
    with (
        pytest.warns(DeprecationWarning, match="parse_token is deprecated"),
        pytest.raises(client.ConfigError, match="base64"),
    ):
        shim.parse_token("not base64!")


def test_submit_byoc_job_without_any_orchestrator_raises_the_new_error() -> None:
    with pytest.warns(DeprecationWarning, match="ByocJobRequest is deprecated"):
        req = shim.ByocJobRequest(
            capability="text-reversal", payload={"text": "hi"}, timeout_seconds=2
        )
    with (
        pytest.warns(DeprecationWarning, match="submit_byoc_job is deprecated"),
        pytest.raises(client.NoOrchestratorError),
    ):
        shim.submit_byoc_job(req, orch_url="https://127.0.0.1:9")  # nothing listens there


def test_import_warns_in_a_fresh_interpreter() -> None:
    proc = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", "import livepeer_gateway"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "livepeer_gateway is deprecated; import livepeer.client instead" in proc.stderr
