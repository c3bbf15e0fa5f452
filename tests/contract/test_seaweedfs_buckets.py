"""SeaweedFS as the tests start it (``tests/support/durable.py``) takes objects large enough
to need volumes into several buckets: with its default 8 volumes, the first bucket written
took 7 and a later bucket none ("No writable volumes"), found by the chaos trials (issue 23)."""

from __future__ import annotations

import os
from pathlib import Path

from pacsflow.adapters.s3_store import S3ObjectStore
from tests.support.durable import S3_KEY, S3_SECRET, make_bucket, run_seaweedfs


async def test_seaweedfs_stores_large_objects_in_three_buckets(tmp_path: Path) -> None:
    data = os.urandom(600 * 1024)  # above the filer's inline limit: kept in volumes
    with run_seaweedfs(tmp_path / "data") as endpoint:
        for bucket in ("log", "archive", "other"):
            make_bucket(endpoint, bucket)
            store = S3ObjectStore(endpoint, bucket, access_key=S3_KEY, secret_key=S3_SECRET)
            await store.start()
            try:
                await store.put("a/object.dcm", data)
                assert await store.get("a/object.dcm") == data, bucket
            finally:
                await store.close()
