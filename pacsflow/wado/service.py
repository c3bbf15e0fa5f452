"""The WADO use cases (PS3.18 10.4 WADO-RS, 9 WADO-URI) over the index and the object store.

Built by the container like ``StowService``; the routes call one method each with the
resource's ``ResourceKey`` and the request's ``Retrieval``, and send the ``Payload`` back.
Renderings are kept in the ``RenderCache`` the container gives it (one per process).
"""

from __future__ import annotations

from pacsflow.ports import Index, ObjectStore
from pacsflow.uri.retrieve import retrieve_wado_uri
from pacsflow.wado.bulk import accepts_bulkdata, retrieve_pixel_data, retrieve_resource_bulkdata
from pacsflow.wado.bulkdata import retrieve_bulkdata
from pacsflow.wado.frames import retrieve_frames
from pacsflow.wado.instances import retrieve_instances
from pacsflow.wado.metadata import retrieve_metadata
from pacsflow.wado.render_cache import RenderCache
from pacsflow.wado.rendered import PLAIN, THUMBNAIL, retrieve_rendered
from pacsflow.wado.retrieval import Payload, ResourceKey, Retrieval

__all__ = ["WadoService"]


class WadoService:
    """Retrieve instances, metadata, frames, bulk data and renderings of stored objects."""

    def __init__(
        self,
        index: Index,
        objects: ObjectStore,
        anonymize_secret: str | None,
        renderings: RenderCache | None = None,
    ) -> None:
        self._index = index
        self._objects = objects
        self._secret = anonymize_secret
        self._renderings = renderings

    async def retrieve_instances(self, key: ResourceKey, retrieval: Retrieval) -> Payload:
        """Retrieve Study, Series or Instance (PS3.18 10.4.1.1.1); their bulk data when the
        client accepts ``multipart/related; type="application/octet-stream"`` first."""
        if accepts_bulkdata(retrieval.accept):
            return await retrieve_resource_bulkdata(self._index, self._objects, key, retrieval)
        return await retrieve_instances(self._index, self._objects, key, retrieval)

    async def retrieve_resource_bulkdata(self, key: ResourceKey, retrieval: Retrieval) -> Payload:
        """Study, Series or Instance Bulkdata (PS3.18 10.4.1.1.5, 10.4.3.3.5)."""
        return await retrieve_resource_bulkdata(self._index, self._objects, key, retrieval)

    async def retrieve_pixel_data(self, key: ResourceKey, retrieval: Retrieval) -> Payload:
        """Study or Series Pixel Data (PS3.18 10.4.1.1.6, 10.4.3.3.6)."""
        return await retrieve_pixel_data(self._index, self._objects, key, retrieval)

    async def retrieve_metadata(self, key: ResourceKey, retrieval: Retrieval) -> Payload:
        """Retrieve Study, Series or Instance Metadata (PS3.18 10.4.1.1.2)."""
        return await retrieve_metadata(self._index, self._objects, key, retrieval)

    async def retrieve_frames(
        self, key: ResourceKey, frames: str | None, retrieval: Retrieval
    ) -> Payload:
        """Retrieve Frames (PS3.18 10.4.1.1.3); ``frames`` None: every frame (Pixel Data)."""
        return await retrieve_frames(self._index, self._objects, key, frames, retrieval)

    async def retrieve_bulkdata(self, key: ResourceKey, path: str, retrieval: Retrieval) -> Payload:
        """Retrieve Bulkdata (PS3.18 10.4.1.1.5), whole or one byte range."""
        return await retrieve_bulkdata(self._index, self._objects, key, path, retrieval)

    async def retrieve_rendered(
        self, key: ResourceKey, frames: str | None, retrieval: Retrieval
    ) -> Payload:
        """Rendered Study, Series, Instance or Frames (PS3.18 10.4.1.1.4, 8.3.5)."""
        index, objects, cache = self._index, self._objects, self._renderings
        return await retrieve_rendered(index, objects, key, frames, retrieval, PLAIN, cache)

    async def retrieve_thumbnail(
        self, key: ResourceKey, frames: str | None, retrieval: Retrieval
    ) -> Payload:
        """Study, Series, Instance or Frame Thumbnail (PS3.18 8.3.6)."""
        index, objects, cache = self._index, self._objects, self._renderings
        return await retrieve_rendered(index, objects, key, frames, retrieval, THUMBNAIL, cache)

    async def retrieve_wado_uri(self, retrieval: Retrieval) -> Payload:
        """One WADO-URI request (PS3.18 9.1): the object or a rendering of it."""
        return await retrieve_wado_uri(self._index, self._objects, self._secret, retrieval)
