"""The bounded dedupe set, the flood limiter and the Origin allowlist."""

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fragmenty_notifier.metrics import FastHistogram
from fragmenty_notifier.sockets import OriginPolicy
from fragmenty_notifier.token_bucket import TokenBucket
from fragmenty_shared.recent_ids import RecentIds


def test_recent_ids_drop_duplicates_and_forget_the_oldest() -> None:
    seen = RecentIds(3)
    assert seen.add("a")
    assert seen.add("b")
    assert seen.add("c")
    assert not seen.add("a")
    assert seen.add("d")  # forgets "a"
    assert "a" not in seen
    assert "d" in seen
    assert len(seen) == 3
    assert seen.add("a")


def test_recent_ids_need_room() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RecentIds(0)


def test_a_token_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=0.001, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://fragmenty.example", True),
        ("https://FRAGMENTY.example/", True),
        ("https://evil.example", False),
        ("null", False),
        (None, True),
    ],
)
def test_origin_allowlist(origin: str | None, allowed: bool) -> None:
    policy = OriginPolicy.of(["https://fragmenty.example"], allow_missing=True)
    assert policy.permits(origin) is allowed


def test_missing_origin_can_be_refused_and_star_allows_all() -> None:
    assert not OriginPolicy.of(["https://a.example"], allow_missing=False).permits(None)
    assert OriginPolicy.of(["*"], allow_missing=False).permits("https://anything.example")


def test_the_fast_histogram_exposes_prometheus_buckets() -> None:
    registry = CollectorRegistry()
    histogram = FastHistogram(
        "t_latency_seconds", "Test.", "origin", ("a", "b"), (0.1, 1.0), registry
    )
    for amount in (0.05, 0.1, 0.5, 2.0):
        histogram.labels("a").observe(amount)
    sample = registry.get_sample_value
    assert sample("t_latency_seconds_bucket", {"origin": "a", "le": "0.1"}) == 2
    assert sample("t_latency_seconds_bucket", {"origin": "a", "le": "1.0"}) == 3
    assert sample("t_latency_seconds_bucket", {"origin": "a", "le": "+Inf"}) == 4
    assert sample("t_latency_seconds_count", {"origin": "a"}) == 4
    assert sample("t_latency_seconds_sum", {"origin": "a"}) == 2.65
    assert sample("t_latency_seconds_count", {"origin": "b"}) == 0
    assert b"# TYPE t_latency_seconds histogram" in generate_latest(registry)
