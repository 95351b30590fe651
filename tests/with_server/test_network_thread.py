"""A curl task goes on on the network thread: no worker between its head and its end.

When a curl transfer's head (or end) comes, the network thread runs the task's next steps
itself (``Waiter.run_on_wake``), and starts the tasks its end lets start; only steps that may
block (SQLite, the cookie file, waits while suspended) are handed to a worker
(``_wire.OFF_LOOP``). Listeners never run there. Threads are told apart by name.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pycurl
import pytest

from urlsession_module import _dispatch
from urlsession_module._stores._cache import HTTPCache
from urlsession_module._transport import _engine
from urlsession_module._transport._curl import _multi
from urlsession_module._transport._curl._direct import DirectWrite
from urlsession_module._transport._curl._easy import Transfer
from urlsession_module._transport._curl._signal import Signal
from urlsession_module._transport._metrics import Transaction
from urlsession_module.exceptions import ErrorCode, TransferError
from urlsession_module.testing import LocalServer

from ._util import wait_until

MakeSession = Callable[..., Any]
MakeRecorder = Callable[[Any], Any]
NETWORK = "urlsession-curl"


@pytest.fixture
def body_starts(mocker: Any) -> Iterator[list[str]]:
    """The thread each task's body started on (the first step after its head)."""
    names: list[str] = []
    real = _engine.start_body

    def start_body(*args: Any) -> None:
        names.append(threading.current_thread().name)
        real(*args)

    mocker.patch.object(_engine, "start_body", start_body)
    yield names


@pytest.mark.engine("curl")
def test_small_tasks_go_on_on_the_network_thread(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, body_starts: list[str]
) -> None:
    """30 small GETs on one connection (responses the cache does not store, so no SQLite):
    each one's steps after its head ran on the network thread, its listener elsewhere."""
    session = make_session(
        httpMaximumConnectionsPerHost=1, requestCachePolicy="reloadIgnoringLocalCacheData"
    )
    rec = recorder(session)
    heard: list[str] = []
    session.addEventListener(
        "sessioncompleted", lambda _e: heard.append(threading.current_thread().name)
    )
    ids = [
        session.dataTask(url=server.url(f"/cache?no_store=1&n={i}"), method="GET")
        for i in range(30)
    ]
    for tid in ids:
        done = rec.completed(tid)
        assert (done.success, done.statusCode) == (True, 200)
        assert done.responseText.startswith("response ")
    assert body_starts == [NETWORK] * 30
    wait_until(lambda: len(heard) == 30, 5.0, "every listener ran")
    assert NETWORK not in heard


@pytest.mark.engine("curl")
def test_an_unsafe_request_invalidates_stored_entries_on_a_worker(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, body_starts: list[str]
) -> None:
    """A POST (dataTask's default method) to a URL with nothing stored goes on on the network
    thread; one to a URL whose GET response is stored invalidates it on a worker."""
    session = make_session(httpMaximumConnectionsPerHost=1)
    rec = recorder(session)
    key = uuid.uuid4().hex  # URLs no other test stored
    # (its head comes 50 ms late: the worker that sent it has parked it by then, however busy
    # the machine; a head already in when the worker looks is read on the worker)
    assert rec.completed(
        session.dataTask(url=server.url(f"/slow?delay=0.05&nothing={key}"))
    ).success
    assert body_starts == [NETWORK]
    url = server.url(f"/cache?etag=stored&max_age=60&key={key}")
    first = rec.completed(session.dataTask(url=url, method="GET"))
    assert rec.completed(session.dataTask(url=url)).success  # the POST: the entry goes
    again = rec.completed(session.dataTask(url=url, method="GET"))
    assert again.responseText != first.responseText  # not served from the cache any more
    assert body_starts[-2] != NETWORK


@pytest.mark.engine("curl")
def test_steps_that_may_block_are_handed_to_a_worker(
    server: LocalServer,
    make_session: MakeSession,
    recorder: MakeRecorder,
    mocker: Any,
    body_starts: list[str],
) -> None:
    """Cached responses (SQLite) and cookies set by a response (a shared file): the network
    thread never opens the cache's database; those tasks still end well."""
    opened: list[str] = []
    real = HTTPCache.storage.fget
    assert real is not None

    def storage(self: HTTPCache) -> Any:
        opened.append(threading.current_thread().name)
        return real(self)

    mocker.patch.object(HTTPCache, "storage", property(storage))
    session = make_session(httpMaximumConnectionsPerHost=2)  # default cache policy, on disk
    rec = recorder(session)
    urls = [server.url(f"/cache?etag=e{i % 3}&max_age=0") for i in range(12)]
    urls += [server.url(f"/cookies/set?k{i}=v{i}") for i in range(4)]
    ids = [session.dataTask(url=url, method="GET") for url in urls]
    for tid in ids:
        done = rec.completed(tid)
        assert done.success, done.message
    assert opened, "the cache was used"
    assert NETWORK not in opened
    assert len(body_starts) >= len(urls)


@pytest.mark.engine("curl")
def test_a_response_the_memory_tier_refreshes_goes_on_on_the_network_thread(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, body_starts: list[str]
) -> None:
    """One URL, stored (the same representation every time): the first response is stored
    and read back through SQLite (on a worker); once the memory tier holds the entry, the
    others refresh it on the network thread."""
    session = make_session(
        httpMaximumConnectionsPerHost=1, requestCachePolicy="reloadIgnoringLocalCacheData"
    )
    rec = recorder(session)
    url = server.url(f"/bytes/1024?key={uuid.uuid4().hex}")  # a key no other test stored
    for _ in range(10):  # one after the other: each sees what the one before stored
        done = rec.completed(session.dataTask(url=url, method="GET"))
        assert (done.success, done.statusCode) == (True, 200)
    assert body_starts[0] != NETWORK  # a new entry: written to SQLite
    # (An entry's writer lets go of the key when its body generator closes, which may come a
    # task late: then one more task reads the entry back through SQLite.)
    assert body_starts[-6:].count(NETWORK) >= 5, " ".join(n[-6:] for n in body_starts)


def test_a_wait_on_the_network_thread_fails_instead_of_hanging() -> None:
    """A body read that would wait, run on the network thread itself, raises -1 at once."""
    here = Signal(threading.Lock(), lambda _job: None, threading.get_ident())
    with pytest.raises(TransferError) as caught:
        here.refuse_wait()
    assert caught.value.code == ErrorCode.UNKNOWN
    elsewhere = Signal(threading.Lock(), lambda _job: None, None)
    elsewhere.refuse_wait()  # another thread may wait: no error


def test_gathered_wakeups_wake_a_queue_once_at_the_end() -> None:
    """Payloads queued in a burst run only when the burst ends, together and in order."""
    queue = _dispatch.ThreadDispatcher()
    ran: list[int] = []
    turns: set[str] = set()

    def job(i: int) -> Callable[[], None]:
        def run() -> None:
            ran.append(i)
            turns.add(threading.current_thread().name)

        return run

    try:
        with _dispatch.gathered_wakeups():
            for i in range(5):
                queue.submit(job(i))
            time.sleep(0.2)  # no thread was woken: nothing can run yet
            assert ran == []
        wait_until(lambda: len(ran) == 5, 5.0, "the burst delivered")
        assert ran == [0, 1, 2, 3, 4]
        assert turns == {"urlsession-delivery"}
    finally:
        queue.close()
        queue.join(5.0)


def test_held_wakeups_wake_each_queue_once_when_flushed(mocker: Any) -> None:
    """A thread that holds its wake-ups (the network thread does) wakes each queue it fed
    once, when it flushes them, with that queue's payloads in order; once it lets go of the
    hold, a payload wakes its queue at once again."""
    queues = [_dispatch.ThreadDispatcher(), _dispatch.ThreadDispatcher()]
    ran: list[tuple[int, int]] = []
    wakeups = mocker.spy(_dispatch._OnDemandThreads, "submit")
    hold = _dispatch.HeldWakeups()
    try:
        for i in range(3):
            for q, queue in enumerate(queues):
                queue.submit(lambda q=q, i=i: ran.append((q, i)))
        time.sleep(0.2)  # held: no thread was woken, nothing can run yet
        assert ran == [] and hold.held and wakeups.call_count == 0
        hold.flush()
        assert not hold.held and wakeups.call_count == 2
        wait_until(lambda: len(ran) == 6, 5.0, "the held payloads delivered")
        assert [i for q, i in ran if q == 0] == [0, 1, 2]
        assert [i for q, i in ran if q == 1] == [0, 1, 2]
    finally:
        hold.release()
    try:
        queues[0].submit(lambda: ran.append((0, 3)))
        wait_until(lambda: len(ran) == 7, 5.0, "a payload after the release, at once")
    finally:
        for queue in queues:
            queue.close()
            queue.join(5.0)


def _three_tasks_are_delivered(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder
) -> None:
    """Three small GETs, one after the other, each heard within 5 s (a held wake-up that
    never went would leave its end undelivered)."""
    session = make_session(requestCachePolicy="reloadIgnoringLocalCacheData")
    rec = recorder(session)
    for i in range(3):
        tid = session.dataTask(url=server.url(f"/cache?no_store=1&n={i}"), method="GET")
        done = rec.completed(tid, timeout=5.0)
        assert (done.success, done.statusCode) == (True, 200)


@pytest.mark.engine("curl")
def test_the_network_thread_lets_held_wakeups_go_before_it_sleeps(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """With the busy bound out of the way (an hour), a task's end is still delivered: the
    network thread wakes the queues it holds before it waits for the network."""
    mocker.patch.object(_multi, "_LINGER", 3600.0)
    _three_tasks_are_delivered(server, make_session, recorder)


@pytest.mark.engine("curl")
def test_a_busy_network_thread_lets_held_wakeups_go_within_the_linger(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, mocker: Any
) -> None:
    """A network thread that never finds itself idle (here its poller always has something:
    libcurl's timeout) still wakes the queues it holds, ``_LINGER`` after it held them."""
    real_wait = _multi._Epoll.wait

    def never_idle(self: Any, timeout: float) -> list[tuple[int, int]]:
        ready = real_wait(self, 0.0)
        if not ready:
            time.sleep(0.001)
            ready = [(pycurl.SOCKET_TIMEOUT, 0)]
        return ready

    mocker.patch.object(_multi._Epoll, "wait", never_idle)
    _three_tasks_are_delivered(server, make_session, recorder)


@pytest.mark.engine("curl")
@pytest.mark.parametrize("kind", ["data", "download"])
def test_a_finished_transfer_is_freed_without_the_cyclic_collector(
    server: LocalServer, make_session: MakeSession, recorder: MakeRecorder, kind: str
) -> None:
    """With metrics on (the default), a task's transfer leaves no reference cycle behind (its
    direct writer, its transaction's wait): refcounting frees it, the collector finds none.
    A cycle per task made collections 50 % more frequent on scenario b."""
    session = make_session(requestCachePolicy="reloadIgnoringLocalCacheData")
    rec = recorder(session)

    def make(url: str) -> str:
        if kind == "data":
            return str(session.dataTask(url=url, method="GET"))
        return str(session.downloadTask(url=url))

    assert rec.completed(make(server.url("/cache?no_store=1&n=warm"))).success
    gc.collect()
    gc.disable()
    try:
        ids = [make(server.url(f"/cache?no_store=1&n={i}")) for i in range(8)]
        for tid in ids:
            done = rec.completed(tid)
            assert done.success, done.message
            assert done.metrics["transactionMetrics"][-1]["responseStartDate"] is not None
        live = session._transport.engine._live  # (its length read: no iteration)
        wait_until(lambda: len(live) == 0, 5.0, "every transfer let go")
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        stuck = [o for o in gc.garbage if isinstance(o, (Transfer, Transaction, DirectWrite))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert stuck == []
