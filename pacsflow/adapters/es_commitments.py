"""Elasticsearch/OpenSearch adapter of the commitment store port (pipeline mode); see the port.

One index, ``{prefix}-commitments``, one document per request keyed ``{site}|{uid}``. ``create``
indexes with ``op_type=create`` (a second request of the UID gets 409, ``TransactionInUse``);
``finish`` reads the document in real time and writes the result only while it is still
``working``, guarded by ``if_seq_no``/``if_primary_term``, so of two replicas finishing the
same request the first write wins and the other reads it back. Request, barrier and result are
stored, not indexed; ``purge`` is a ``delete_by_query`` on state and finish time.
"""

from __future__ import annotations

from typing import Any, Final

from elasticsearch import ConflictError, NotFoundError

from pacsflow.adapters.es_index import _unavailable, doc_id
from pacsflow.adapters.es_store import ElasticsearchStore
from pacsflow.errors import IndexUnavailable
from pacsflow.ports.commitments import JsonDict, StoredCommitment, TransactionInUse

__all__ = ["ElasticsearchCommitmentStore", "commitment_body", "commitment_source"]

_STORED: Final = {"type": "object", "enabled": False}
_FINISH_ATTEMPTS: Final = 5


def commitment_body() -> JsonDict:
    """The mappings of the commitments index."""
    keyword = {"type": "keyword"}
    properties = {
        "site": keyword,
        "transaction_uid": keyword,
        "state": keyword,
        "created": {"type": "double"},
        "finished": {"type": "double"},
        "stored": _STORED,
    }
    return {"mappings": {"dynamic": "strict", "properties": properties}}


def commitment_source(item: StoredCommitment) -> JsonDict:
    """The document of a record (pure; golden-tested)."""
    return {
        "site": item.site,
        "transaction_uid": item.transaction_uid,
        "state": item.state,
        "created": item.created,
        "finished": item.finished,
        "stored": {
            "request": item.request,
            "barrier": {str(p): o for p, o in item.barrier.items()},
            "result": item.result,
        },
    }


def _record(source: JsonDict) -> StoredCommitment:
    stored = source["stored"]
    return StoredCommitment(
        site=source["site"],
        transaction_uid=source["transaction_uid"],
        request=stored["request"],
        created=float(source["created"]),
        barrier={int(p): int(o) for p, o in stored["barrier"].items()},
        state="done" if source["state"] == "done" else "working",
        result=stored["result"],
        finished=source["finished"],
    )


class ElasticsearchCommitmentStore(ElasticsearchStore):
    """The commitment store in the ``{prefix}-commitments`` index."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "pacsflow",
        **credentials: Any,
    ) -> None:
        """``credentials``: ``api_key``, ``basic_auth``, ``ca_certs`` (``ElasticsearchStore``)."""
        self._index = f"{prefix}-commitments"
        super().__init__(
            url,
            {self._index: commitment_body()},
            "commitment store",
            **credentials,
        )

    async def create(self, item: StoredCommitment) -> None:
        """Index a new document; ``TransactionInUse`` when the id exists."""
        with _unavailable("create"):
            try:
                await self._es.index(
                    index=self._index,
                    id=doc_id(item.site, item.transaction_uid),
                    document=commitment_source(item),
                    op_type="create",
                    refresh=True,
                )
            except ConflictError:
                raise TransactionInUse(
                    f"Transaction UID {item.transaction_uid} is already in use"
                ) from None

    async def _get(self, site: str, transaction_uid: str) -> dict[str, Any] | None:
        with _unavailable("get"):
            try:
                hit = await self._es.get(index=self._index, id=doc_id(site, transaction_uid))
            except NotFoundError:
                return None
        return dict(hit)

    async def get(self, site: str, transaction_uid: str) -> StoredCommitment | None:
        """The record (a real-time get), or ``None``."""
        hit = await self._get(site, transaction_uid)
        return None if hit is None else _record(hit["_source"])

    async def finish(
        self, site: str, transaction_uid: str, result: JsonDict, finished: float
    ) -> StoredCommitment:
        """Write the result while the document is still working (optimistic concurrency)."""
        for _ in range(_FINISH_ATTEMPTS):
            hit = await self._get(site, transaction_uid)
            if hit is None:
                raise KeyError(transaction_uid)
            record = _record(hit["_source"])
            if record.state == "done":
                return record
            source = commitment_source(record)
            source.update(state="done", finished=finished)
            source["stored"]["result"] = result
            with _unavailable("finish"):
                try:
                    await self._es.index(
                        index=self._index,
                        id=doc_id(site, transaction_uid),
                        document=source,
                        if_seq_no=hit["_seq_no"],
                        if_primary_term=hit["_primary_term"],
                        refresh=True,
                    )
                except ConflictError:
                    continue  # written meanwhile: read it again
            return _record(source)
        raise IndexUnavailable(f"commitment {transaction_uid}: the result could not be written")

    async def purge(self, site: str, finished_before: float) -> int:
        """Delete the done documents of ``site`` finished before ``finished_before``."""
        query = {
            "bool": {
                "filter": [
                    {"term": {"site": site}},
                    {"term": {"state": "done"}},
                    {"range": {"finished": {"lt": finished_before}}},
                ]
            }
        }
        with _unavailable("purge"):
            answer = await self._es.delete_by_query(
                index=self._index, query=query, refresh=True, conflicts="proceed"
            )
        return int(answer.get("deleted", 0))
