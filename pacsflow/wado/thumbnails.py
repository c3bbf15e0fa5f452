"""Series thumbnails made ahead by the pipeline: the step of a consumer of ``events``.

When instances of a series are stored, the series' representative (its middle instance) gets
its default thumbnail (PS3.18 8.3.6: JPEG, at most 128 pixels a side) rendered and stored
(``pacsflow.wado.thumbnail_store``), once per series and batch of events, unless the one
stored shows that representative already. A thumbnail request without parameters then reads
it instead of rendering. Best effort and idempotent: a series without an image gets none, a
failure leaves the thumbnail to be rendered on request, a redelivered event finds it made.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from pacsflow.errors import NotAcceptable, NotFound, ServiceUnavailable
from pacsflow.pipeline.records import IngestEvent
from pacsflow.ports import Index, ObjectStore
from pacsflow.render.params import RenderParams
from pacsflow.wado.locate import keys_of
from pacsflow.wado.rendered import THUMBNAIL, render_instance
from pacsflow.wado.thumbnail_store import store_thumbnail, stored_thumbnail

__all__ = ["make_series_thumbnails"]

log = logging.getLogger(__name__)

JPEG: Final = "image/jpeg"


async def make_series_thumbnails(
    events: Iterable[IngestEvent], index: Index, objects: ObjectStore
) -> int:
    """Make the thumbnails of the series whose instances ``events`` say were stored; how many
    were made (none for a series whose current one is stored, or that has no image)."""
    made = 0
    stored = (e for e in events if e.status == "stored")
    for site, study_uid, series_uid in dict.fromkeys(
        (e.site, e.study_uid, e.series_uid) for e in stored
    ):
        found = await index.list_middle_instances(site, study_uid, series_uid)
        if not found:
            continue  # deleted or moved since
        middle = found[0]
        if await stored_thumbnail(objects, site, middle) is not None:
            continue
        keys = keys_of(site, middle)
        try:
            rendered = await render_instance(
                objects, keys, middle.size, JPEG, RenderParams(), None, THUMBNAIL
            )
        except (NotAcceptable, NotFound) as exc:  # not an image, or gone since
            log.debug("series %s has no thumbnail: %s", series_uid, exc)
            continue
        except ServiceUnavailable:
            raise  # the batch is handled again once the backend answers
        except Exception:  # a bug must not stop the thumbnails of every later series
            log.exception("the thumbnail of series %s failed", series_uid)
            continue
        await store_thumbnail(objects, site, middle, rendered.body)
        made += 1
    return made
