"""The configuration documents the browser SDKs fetch before they send anything.

Segment's analytics-next loads ``GET {cdnURL}/v1/projects/{writeKey}/settings`` and
refuses to start without it; RudderStack's SDK loads ``GET {configUrl}/sourceConfig/``.
Ingest serves the least each needs to start and deliver to ingest itself: no device-mode
destinations, plugins, middleware or consent integrations (each of those would make the
SDK fetch code from its vendor's CDN), and no telemetry to the vendor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

# The short paths analytics-next posts to (the first letter of the call) and its
# batching endpoint, with the Segment call each stands for.
SEGMENT_SHORT_PATHS = {
    "t": "track",
    "p": "page",
    "i": "identify",
    "g": "group",
    "a": "alias",
    "s": "screen",
    "b": "batch",
}


def segment_settings(write_key: str, api_host: str, protocol: str) -> dict[str, Any]:
    """analytics-next's project settings, with its Segment.io integration sending to
    ``{protocol}://{api_host}`` (ingest's ``/v1``).

    Only the Segment.io integration is listed (more would make it load "legacy
    destinations" from Segment's CDN) and the SDK's own metrics are sampled at 0, since
    it would otherwise post them to the same host.
    """
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "addBundledMetadata": True,
                "unbundledIntegrations": [],
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {},
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
        "autoInstrumentationSettings": {"sampleRate": 0},
    }


def rudder_source_config(
    *, source_id: str, name: str, write_key: str, updated_at: datetime
) -> dict[str, Any]:
    """RudderStack's source configuration: the SDK checks ``source.id``, ``source.config``
    and ``source.destinations``; error and metrics reporting (to RudderStack) stay off."""
    stamp = updated_at.isoformat()
    return {
        "isHosted": False,
        "source": {
            "id": source_id,
            "name": name,
            "writeKey": write_key,
            "enabled": True,
            "workspaceId": "kpipulse",
            "updatedAt": stamp,
            "config": {
                "statsCollection": {
                    "errors": {"enabled": False},
                    "metrics": {"enabled": False},
                }
            },
            "destinations": [],
        },
        "updatedAt": stamp,
    }
