"""Azure OpenAI: classic (the deployment in the path, api-version in the query, the key
in ``api-key``) or v1 (like OpenAI, under openai/v1/). A ``request_path`` (a gateway in
front of Azure) takes the place of the whole path; the rest of the shape stays."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.transcribe.kinds.base import HEADROOM, MIB, SEED_FORMATS, Fields, Kind, Shape

if TYPE_CHECKING:
    from dropscribe.transcribe.models import Ask
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings


def _shape(
    endpoint: Endpoint,
    settings: FolderSettings,
    ask: Ask,  # noqa: ARG001 - every kind's shape takes the same
    fields: Fields,
    route: str,
) -> Shape:
    if endpoint.api_version == "v1":
        return Shape(endpoint.request_path or f"openai/v1/{route}", fields)
    del fields["model"]
    return Shape(
        endpoint.request_path or f"openai/deployments/{settings.model}/{route}",
        fields,
        params={"api-version": endpoint.api_version},
    )


KIND = Kind(
    "azure",
    _shape,
    upload_limit=25 * MIB - HEADROOM,
    accepted=SEED_FORMATS,
    auth=lambda key: {"api-key": key},
    speaking=True,
    known_voices=True,
    models_path="openai/v1/models",
)
