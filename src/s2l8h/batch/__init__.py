"""Many scenes on dask.distributed: AOI windows from STAC, idempotent runs, a STAC catalogue.

Above ``inference`` and ``data`` (the layer of ``train`` and ``evaluate``).
"""

from s2l8h.batch.catalog import product_item, write_catalog
from s2l8h.batch.run import ManyResult, harmonize_many, run_scene
from s2l8h.batch.scenes import (
    SceneSpec,
    aoi_grid,
    parse_aoi,
    scenes_from_folders,
    scenes_from_item_collection,
    scenes_from_items,
    scenes_from_search,
)

__all__ = [
    "ManyResult",
    "SceneSpec",
    "aoi_grid",
    "harmonize_many",
    "parse_aoi",
    "product_item",
    "run_scene",
    "scenes_from_folders",
    "scenes_from_item_collection",
    "scenes_from_items",
    "scenes_from_search",
    "write_catalog",
]
