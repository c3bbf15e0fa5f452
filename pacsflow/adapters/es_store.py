"""What the stores kept in the index's Elasticsearch share: a client, its indices, a probe.

The workitem store and the commitment store live in the cluster of the index, under its prefix
and with its credentials; each creates its indices (strict mappings) at start and answers
``check`` with a bounded, unretried ``match_none`` count over them.
"""

from __future__ import annotations

from typing import Any, Final

from elasticsearch import AsyncElasticsearch, BadRequestError

from pacsflow.adapters.es_index import _PlainJsonNode, _unavailable
from pacsflow.errors import IndexUnavailable

__all__ = ["ElasticsearchStore"]

JsonDict = dict[str, Any]

_TIMEOUT: Final = 10.0
CHECK_TIMEOUT: Final = 2.0


class ElasticsearchStore:
    """A client of the indices ``bodies`` names (index name -> creation body)."""

    def __init__(
        self,
        url: str,
        bodies: dict[str, JsonDict],
        what: str,
        *,
        api_key: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        ca_certs: str | None = None,
    ) -> None:
        self._url = url
        self._bodies = bodies
        self._what = what  # "workitem store": how messages name it
        self._options: JsonDict = {
            **{"node_class": _PlainJsonNode, "request_timeout": _TIMEOUT},
            **{"max_retries": 2, "retry_on_timeout": True},
            **{"api_key": api_key, "basic_auth": basic_auth},
            **({"ca_certs": ca_certs} if ca_certs is not None else {}),
        }
        self._client: AsyncElasticsearch | None = None

    @property
    def _es(self) -> AsyncElasticsearch:
        if self._client is None:
            raise IndexUnavailable(f"the {self._what} is not started")
        return self._client

    async def start(self) -> None:
        """Connect and create the indices (idempotent)."""
        if self._client is None:
            self._client = AsyncElasticsearch(self._url, **self._options)
        for name, body in self._bodies.items():
            with _unavailable("creation"):
                try:
                    await self._es.indices.create(index=name, **body)
                except BadRequestError as exc:
                    if exc.error != "resource_already_exists_exception":
                        raise

    async def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def check(self) -> None:
        """Count nothing in the indices (bounded, not retried)."""
        probe = self._es.options(request_timeout=CHECK_TIMEOUT, max_retries=0)
        with _unavailable("check"):
            answer = await probe.count(index=list(self._bodies), query={"match_none": {}})
        if answer.body.get("_shards", {}).get("failed"):
            raise IndexUnavailable(f"Elasticsearch {self._what} check: shards failed")
