"""Live sessions (``gw.live``): route-independent session core plus the per-route job starters."""

from ._session import LiveChannels, LiveJob, LivePublisher, LiveSession, check_channel_url

__all__ = ["LiveChannels", "LiveJob", "LivePublisher", "LiveSession", "check_channel_url"]
