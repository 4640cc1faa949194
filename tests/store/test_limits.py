"""The counters of ``limit`` rules: the Redis store gives the in-process store's answers, atomically,
shared by gateways in several processes, and a Redis out of reach fails the rule's way (closed for BLOCK)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lictor.errors import ConfigError, InternalError
from lictor.model import Action, Verdict
from lictor.policy import InMemoryLimitStore, LimitStore, PolicySet, load_policies
from lictor.runtime import Gateway
from lictor.store import open_limit_store
from lictor.store.redis import RedisLimitStore

ROOT = Path(__file__).parents[2]
T0 = 1_790_000_000.0  # a fixed clock: the stores count by the time they are given

POLICY = """\
apiVersion: lictor/v1
kind: Policy
metadata:
  name: quota
spec:
  target: {names: [web_search]}
  rules:
    - name: three-an-hour
      limit: {key: principal.id, max: 3, per: 1h}
      verdict: BLOCK
    - name: tolerant
      limit: {key: principal.id, max: 1000, per: 1h}
      verdict: BLOCK
      on_error: skip
    - name: noted
      limit: {key: principal.id, max: 1000, per: 1h}
      verdict: LOG
"""


def search(person: str = "ann") -> Action:
    return Action.from_dict({"system": "agent", "kind": "tool_call", "name": "web_search",
                             "principal": {"id": person}})


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[LimitStore]:
    if request.param == "memory":
        yield InMemoryLimitStore()
        return
    redis = RedisLimitStore(request.getfixturevalue("redis_url"))
    yield redis
    redis.close()


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "quota.yaml").write_text(POLICY)
    return tmp_path / "policies"


# --------------------------------------------------------------------------- the contract


def test_hits_are_counted_in_the_window_ending_now(store: LimitStore) -> None:
    counts = [store.hit("k", now=T0 + t, window=10, cap=100) for t in (0, 1, 2, 9.5, 10, 10.5, 30)]
    # at 10 the hit at 0 is out: the window is (now - 10, now]
    assert counts == [1, 2, 3, 4, 4, 5, 1]


def test_the_count_stops_at_the_cap(store: LimitStore) -> None:
    assert [store.hit("k", now=T0, window=60, cap=3) for _ in range(6)] == [1, 2, 3, 3, 3, 3]
    assert store.hit("k", now=T0 + 59, window=60, cap=3) == 3
    assert store.hit("k", now=T0 + 60, window=60, cap=3) == 2  # the capped hits at T0 are out


def test_keys_are_counted_apart_whatever_they_hold(store: LimitStore) -> None:
    keys = ["a", "a\x00b", "a\x00c", "*", "[x]?", "ключ", "🔑" * 300, "", "lictor:limit:a"]
    for round_ in (1, 2):
        assert [store.hit(k, now=T0, window=60, cap=10) for k in keys] == [round_] * len(keys)


def test_equal_times_count_as_separate_hits(store: LimitStore) -> None:
    assert [store.hit("k", now=T0, window=0.001, cap=5) for _ in range(3)] == [1, 2, 3]
    assert store.hit("k", now=T0 + 0.001, window=0.001, cap=5) == 1


def test_the_redis_store_keeps_its_keys_under_its_prefix(redis_url: str) -> None:
    store = RedisLimitStore(redis_url)
    prefix = redis_url.rpartition("prefix=")[2]
    assert store.prefix == prefix
    assert store.key("policy/rule\x00ann").startswith(f"{prefix}:limit:")
    assert len(store.key("x" * 10_000)) == len(store.key(""))
    store.hit("policy/rule\x00ann", now=T0, window=60, cap=2)
    client = store._client
    assert client.exists(store.key("policy/rule\x00ann")) == 1
    assert 0 < client.pttl(store.key("policy/rule\x00ann")) <= 61_000
    store.clear()
    assert client.exists(store.key("policy/rule\x00ann")) == 0
    store.close()


def test_a_connection_that_redis_dropped_is_replaced_on_the_next_hit(redis_url: str) -> None:
    store = RedisLimitStore(redis_url)
    assert store.hit("k", now=T0, window=60, cap=5) == 1
    other = RedisLimitStore(redis_url)
    assert other._client.client_kill_filter(_id=store._client.client_id()) == 1  # this store's only
    assert store.hit("k", now=T0, window=60, cap=5) == 2
    for s in (store, other):
        s.close()


# --------------------------------------------------------------------------- the same answers


hits = st.lists(st.tuples(st.integers(0, 3), st.floats(0, 5, allow_nan=False)), min_size=1, max_size=60)


# the fixture's prefix is shared by the examples; each example uses keys of its own
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hits=hits, windows=st.lists(st.sampled_from([0.001, 0.5, 1, 2.5, 7, 3600]), min_size=4, max_size=4),
       caps=st.lists(st.integers(1, 6), min_size=4, max_size=4), start=st.floats(0, 2e9))
def test_redis_gives_the_in_process_answers(redis_url: str, hits: list[tuple[int, float]],
                                            windows: list[float], caps: list[int], start: float) -> None:
    """For any hits in time order (each key its own window and cap, as each limit rule has), the two
    stores give the same counts."""
    redis = RedisLimitStore(redis_url)
    memory = InMemoryLimitStore()
    run = uuid.uuid4().hex  # a fresh set of keys for each example
    now = start
    try:
        for key, step in hits:
            now += step
            args = {"now": now, "window": windows[key], "cap": caps[key]}
            assert redis.hit(f"{run}{key}", **args) == memory.hit(f"{run}{key}", **args)
    finally:
        redis.close()


# --------------------------------------------------------------------------- atomic


def test_threads_hitting_one_key_each_get_a_distinct_count(redis_url: str) -> None:
    stores = [RedisLimitStore(redis_url), RedisLimitStore(redis_url)]  # two pools, as two processes
    threads, each = 8, 40
    counts: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work(n: int) -> None:
        barrier.wait()
        mine = [stores[n % 2].hit("k", now=T0, window=60, cap=10_000) for _ in range(each)]
        with lock:
            counts.extend(mine)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(counts) == list(range(1, threads * each + 1))
    assert stores[0].hit("k", now=T0, window=60, cap=10_000) == threads * each + 1
    for s in stores:
        s.close()


# --------------------------------------------------------------------------- gateways sharing counters

DECIDER = """
import json, sys
from lictor.model import Action
from lictor.runtime import Gateway

policies, home, redis, times = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
gateway = Gateway.open(policies=policies, database=f"sqlite:///{home}/audit.db", key_file=f"{home}/audit.key",
                       payload_key_file=f"{home}/payload.key", redis=redis)
action = Action.from_dict({"system": "agent", "kind": "tool_call", "name": "web_search", "principal": {"id": "ann"}})
verdicts = []
for _ in range(times):
    decision = gateway.decide(action)
    verdicts.append([decision.verdict.name, sorted(r.rule for r in decision.reasons if r.rule == "three-an-hour")])
gateway.close()
print(json.dumps(verdicts))
"""


def decide_elsewhere(policies: Path, home: Path, redis_url: str, times: int) -> subprocess.Popen[str]:
    home.mkdir()
    return subprocess.Popen([sys.executable, "-c", DECIDER, str(policies), str(home), redis_url, str(times)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def outcome(proc: subprocess.Popen[str]) -> list[list[object]]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def open_gateway(policies: Path | PolicySet, home: Path, redis: str | None) -> Gateway:
    home.mkdir()
    return Gateway.open(policies=policies, database=f"sqlite:///{home}/audit.db", key_file=home / "audit.key",
                        payload_key_file=home / "payload.key", redis=redis)


def test_a_limit_trips_across_two_gateway_processes(tmp_path: Path, policies: Path, redis_url: str) -> None:
    here = open_gateway(policies, tmp_path / "here", redis_url)
    try:
        assert [here.decide(search()).verdict for _ in range(2)] == [Verdict.ALLOW] * 2
        # the other process's first search is the third in the hour, its second the fourth
        assert outcome(decide_elsewhere(policies, tmp_path / "there", redis_url, 2)) == [
            ["ALLOW", []], ["BLOCK", ["three-an-hour"]]]
        last = here.decide(search())
        assert last.verdict is Verdict.BLOCK
        assert [r.rule for r in last.reasons if r.rule == "three-an-hour"] == ["three-an-hour"]
        assert here.decide(search("ben")).verdict is Verdict.ALLOW  # another key
    finally:
        here.close()


def test_processes_deciding_at_once_allow_exactly_the_limit(tmp_path: Path, policies: Path,
                                                             redis_url: str) -> None:
    procs = [decide_elsewhere(policies, tmp_path / f"p{n}", redis_url, 5) for n in range(3)]
    verdicts = [v for proc in procs for v, _ in outcome(proc)]
    assert verdicts.count("ALLOW") == 3 and verdicts.count("BLOCK") == 12


def test_the_redis_setting_makes_the_gateway_count_in_redis(tmp_path: Path, policies: Path,
                                                            redis_url: str) -> None:
    from lictor.config import AuditSettings, Settings

    def gateway(name: str, redis: str | None) -> Gateway:
        (tmp_path / name).mkdir()
        settings = Settings(database=f"sqlite:///{tmp_path / name / 'audit.db'}", redis=redis,
                            audit=AuditSettings(key_file=tmp_path / name / "audit.key",
                                                payload_key_file=tmp_path / name / "payload.key"))
        return Gateway.from_settings(settings, policies=load_policies(policies))

    shared = [gateway("a", redis_url), gateway("b", redis_url)]
    alone = gateway("c", None)
    try:
        assert isinstance(shared[0].policies.limits, RedisLimitStore)
        assert isinstance(alone.policies.limits, InMemoryLimitStore)
        verdicts = [shared[n % 2].decide(search()).verdict for n in range(4)]
        assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.BLOCK]
        assert alone.decide(search()).verdict is Verdict.ALLOW
    finally:
        for g in (*shared, alone):
            g.close()


# --------------------------------------------------------------------------- Redis out of reach


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_redis_out_of_reach_raises_an_internal_error_without_the_password() -> None:
    store = RedisLimitStore(f"redis://:s3cret-pw@127.0.0.1:{unused_port()}/0")
    with pytest.raises(InternalError, match="cannot count a hit in the Redis limit store") as caught:
        store.hit("k", now=T0, window=1, cap=1)
    assert "s3cret-pw" not in str(caught.value)
    with pytest.raises(InternalError):
        store.ping()
    store.close()


def test_limit_rules_follow_their_on_error_when_redis_is_out_of_reach(tmp_path: Path, policies: Path) -> None:
    gateway = open_gateway(policies, tmp_path / "gw", f"redis://127.0.0.1:{unused_port()}/0")
    try:
        started = datetime.now(UTC)
        decision = gateway.decide(search())
        assert datetime.now(UTC) - started < timedelta(seconds=5)
        # BLOCK applies (fail closed); the BLOCK rule with on_error: skip and the LOG rule do not
        assert decision.verdict is Verdict.BLOCK
        assert [r.rule for r in decision.reasons] == ["three-an-hour"]
        assert [(e.rule, e.applied) for e in decision.errors] == [
            ("three-an-hour", True), ("tolerant", False), ("noted", False)]
        assert all(e.message.startswith("limit store error: cannot count a hit in the Redis limit store")
                   for e in decision.errors)
        assert decision.audit is not None and decision.audit["index"] is not None  # and it is recorded
    finally:
        gateway.close()


# --------------------------------------------------------------------------- opening by URL


def test_open_limit_store_by_url(redis_url: str) -> None:
    assert isinstance(open_limit_store("memory://"), InMemoryLimitStore)
    redis = open_limit_store(redis_url)
    assert isinstance(redis, RedisLimitStore)
    redis.close()
    for url in ("rediss://cache:6380/0", "unix:///run/redis.sock?db=1"):
        assert isinstance(open_limit_store(url), RedisLimitStore)  # nothing connects before a hit


@pytest.mark.parametrize(("url", "message"), [
    ("memcached://cache", "unknown limit store URL scheme 'memcached'"),
    ("cache:6379", "unknown limit store URL scheme '(none)'"),
    ("memory://x", "memory:// takes no path"),
    ("redis://cache/0?prefix=a*b", "prefix 'a*b' is not"),
    ("redis://cache/0?prefix=", "prefix '' is not"),
    ("redis://cache/zero", "the database of a Redis URL is a number"),
    ("redis://cache:port/0", "cannot use the Redis URL"),
])
def test_open_limit_store_refuses_what_it_cannot_use(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("*", r"\*").replace("(", r"\(").replace(")", r"\)")) as caught:
        open_limit_store(url)
    assert caught.value.path == "redis"


def test_an_event_loop_does_not_wait_on_redis_itself(tmp_path: Path, policies: Path, redis_url: str) -> None:
    gateway = open_gateway(policies, tmp_path / "here", redis_url)
    counted_on: list[int] = []
    limits = gateway.policies.limits
    hit = limits.hit

    def recording(key: str, *, now: float, window: float, cap: int) -> int:
        counted_on.append(threading.get_ident())
        return hit(key, now=now, window=window, cap=cap)

    limits.hit = recording  # type: ignore[method-assign]

    async def decide() -> tuple[Verdict, int]:
        return (await gateway.adecide(search())).verdict, threading.get_ident()

    try:
        verdict, loop_thread = asyncio.run(decide())
        assert verdict is Verdict.ALLOW
        assert counted_on and loop_thread not in counted_on  # counted in a worker thread
    finally:
        gateway.close()
