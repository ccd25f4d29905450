"""The schema as code is complete: every collection a service uses is declared, and every hot
query names an index its collection declares (a real MongoDB then checks the plans:
tests/integration/shared/test_hot_queries_use_indexes.py)."""

from fragmenty_shared.schema import (
    ALERT_COLLECTIONS,
    COLLECTIONS,
    HISTORY_PREFIX,
    HOT_QUERIES,
    AlertCollections,
    Collections,
    spec,
)


def _names(holder: type) -> set[str]:
    return {value for key, value in vars(holder).items() if key.isupper()}


def test_every_collection_is_declared_once_with_its_growth() -> None:
    declared = [collection.name for collection in COLLECTIONS + ALERT_COLLECTIONS]
    assert len(declared) == len(set(declared))
    legacy = {Collections.LEGACY_EVENTS, Collections.LEGACY_PRICE_HISTORY}
    assert _names(Collections) - legacy <= set(declared)
    assert _names(AlertCollections) == {collection.name for collection in ALERT_COLLECTIONS}
    assert f"{HISTORY_PREFIX}NN" in declared


def test_every_hot_query_names_an_index_of_its_collection() -> None:
    for query in HOT_QUERIES:
        name = (
            f"{HISTORY_PREFIX}NN"
            if query.collection.startswith(HISTORY_PREFIX)
            else query.collection
        )
        indexes = {
            ", ".join(key for key, _ in index.document["key"].items())
            for index in spec(name).indexes
        }
        assert query.index == "_id" or query.index in indexes, query.who
