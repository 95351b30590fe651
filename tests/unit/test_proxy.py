"""Titanium proxy semantics (``_proxy``, ``_events.Event``): listeners, fireEvent, bubbling."""

from __future__ import annotations

import copy
import logging
import random
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

import urlsession_module as URLSession
from urlsession_module import (
    CreationOnlyError,
    Event,
    InvalidArgumentTypeError,
    InvalidArgumentValueError,
)
from urlsession_module._proxy import Proxy


class Widget(Proxy):
    """A proxy with a creation-only key, like a configuration's identifier."""

    _api_name = "Test.Widget"
    _creation_only: ClassVar[frozenset[str]] = frozenset({"kind"})


def collector() -> tuple[list[Event], Callable[[Event], None]]:
    got: list[Event] = []
    return got, got.append


# -- listeners --------------------------------------------------------------------------------


def test_listener_receives_event_with_attribute_and_item_access() -> None:
    """A listener gets an Event reading fields as attributes and items, with type and source."""
    p = Proxy()
    got, listener = collector()
    p.addEventListener("progress", listener)
    p.fireEvent("progress", {"taskIdentifier": "t-1", "bytesWritten": 3})
    [e] = got
    assert isinstance(e, Event)
    assert e.taskIdentifier == e["taskIdentifier"] == "t-1"
    assert e.bytesWritten == e["bytesWritten"] == 3
    assert e.type == e["type"] == "progress"
    assert e.source is p and e["source"] is p
    assert e.bubbles is True and e["bubbles"] is True
    assert e.cancelBubble is False


def test_event_is_a_read_only_looking_mapping() -> None:
    """An Event is a Mapping: get, in, keys include type/source/bubbles/cancelBubble."""
    p = Proxy()
    got, listener = collector()
    p.addEventListener("x", listener)
    p.fireEvent("x", {"a": 1})
    [e] = got
    assert e.get("a") == 1 and e.get("missing") is None
    assert "a" in e and "type" in e and "missing" not in e
    assert set(e) == {"a", "type", "source", "bubbles", "cancelBubble"}
    assert len(e) == 5
    assert dict(e)["type"] == "x"
    with pytest.raises(AttributeError, match="missing"):
        _ = e.missing
    with pytest.raises(KeyError):
        _ = e["missing"]


def test_event_without_fields() -> None:
    """fireEvent without a dict delivers an Event carrying only type, source and bubbles."""
    p = Proxy()
    got, listener = collector()
    p.addEventListener("ping", listener)
    p.fireEvent("ping")
    [e] = got
    assert (e.type, e.source, e.bubbles, e.cancelBubble) == ("ping", p, True, False)


def test_event_can_be_copied() -> None:
    """copy.copy of an Event works (a listener may keep one) and dunder probes raise cleanly."""
    e = Event("x", None, {"a": 1})
    c = copy.copy(e)
    assert (c.type, c.a, c.cancelBubble) == ("x", 1, False)
    assert not hasattr(e, "__setstate_probe__")
    assert not hasattr(e, "_private")


def test_same_callback_twice_is_registered_once() -> None:
    """Adding the same callback twice for one name registers it once."""
    p = Proxy()
    got, listener = collector()
    p.addEventListener("x", listener)
    p.addEventListener("x", listener)
    p.fireEvent("x")
    assert len(got) == 1


def test_same_callback_for_two_names() -> None:
    """One callback on two names hears both."""
    p = Proxy()
    got, listener = collector()
    p.addEventListener("a", listener)
    p.addEventListener("b", listener)
    p.fireEvent("a")
    p.fireEvent("b")
    assert [e.type for e in got] == ["a", "b"]


def test_listeners_run_in_registration_order() -> None:
    """Listeners for one name run in the order they were added."""
    p = Proxy()
    order: list[int] = []
    for i in range(5):
        p.addEventListener("x", lambda _e, i=i: order.append(i))
    p.fireEvent("x")
    assert order == [0, 1, 2, 3, 4]


def test_remove_listener() -> None:
    """A removed listener hears nothing more; others still do."""
    p = Proxy()
    got_a, a = collector()
    got_b, b = collector()
    p.addEventListener("x", a)
    p.addEventListener("x", b)
    p.removeEventListener("x", a)
    p.fireEvent("x")
    assert (len(got_a), len(got_b)) == (0, 1)
    assert p.hasListeners("x")
    p.removeEventListener("x", b)
    assert not p.hasListeners("x")


def test_remove_unknown_is_a_no_op() -> None:
    """Removing an unknown name or an unregistered callback does nothing and does not raise."""
    p = Proxy()
    got, listener = collector()
    p.removeEventListener("never-added", listener)
    p.addEventListener("x", listener)
    p.removeEventListener("x", print)
    p.removeEventListener("x", listener)
    p.removeEventListener("x", listener)  # twice
    p.fireEvent("x")
    assert got == []


@pytest.mark.parametrize("name", [None, "", 3])
def test_add_listener_refuses_bad_name(name: Any) -> None:
    """addEventListener needs a non-empty str name, naming the argument."""
    with pytest.raises(InvalidArgumentTypeError) as info:
        Proxy().addEventListener(name, print)
    assert info.value.argument == "name"


def test_add_listener_refuses_non_callable() -> None:
    """addEventListener needs a callable, naming the argument."""
    with pytest.raises(InvalidArgumentTypeError) as info:
        Proxy().addEventListener("x", "not callable")  # type: ignore[arg-type]
    assert info.value.argument == "callback"
    assert isinstance(info.value, TypeError)


def test_fire_event_refuses_bad_arguments() -> None:
    """fireEvent needs a non-empty str name and a dict (or nothing)."""
    p = Proxy()
    with pytest.raises(InvalidArgumentTypeError) as info:
        p.fireEvent("")
    assert info.value.argument == "name"
    with pytest.raises(InvalidArgumentTypeError) as info:
        p.fireEvent("x", [1, 2])  # type: ignore[arg-type]
    assert info.value.argument == "event"


def test_fire_error_without_listener_does_not_raise() -> None:
    """fireEvent('error') with nobody listening is silent (unlike a bare pyee emit)."""
    p = Proxy()
    p.fireEvent("error", {"message": "boom"})
    got, listener = collector()
    p.addEventListener("error", listener)
    p.fireEvent("error", {"message": "boom"})
    assert [e.message for e in got] == ["boom"]


def test_listener_named_new_listener_is_not_called_on_add() -> None:
    """A listener for an event called 'new_listener' hears only fired events, not pyee's adds."""
    p = Proxy()
    got, listener = collector()
    p.addEventListener("new_listener", listener)
    p.addEventListener("other", print)
    assert got == []
    p.fireEvent("new_listener", {"a": 1})
    assert [e.a for e in got] == [1]


def test_fire_event_with_no_listeners_anywhere() -> None:
    """fireEvent with no listeners on the proxy or its parents is a no-op."""
    parent = Proxy()
    Proxy(parent=parent).fireEvent("nothing", {"a": 1})
    assert not parent.hasListeners("nothing")


# -- failing listeners ------------------------------------------------------------------------


def test_raising_listener_is_logged_and_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    """A listener that raises is logged with its traceback; later listeners and parents run."""
    parent = Proxy()
    child = Proxy(parent=parent)
    got, listener = collector()
    got_parent, parent_listener = collector()

    def bad(_e: Event) -> None:
        raise RuntimeError("listener bug")

    child.addEventListener("x", bad)
    child.addEventListener("x", listener)
    parent.addEventListener("x", parent_listener)
    with caplog.at_level(logging.ERROR, logger="urlsession_module"):
        child.fireEvent("x", {"n": 1})
    assert len(got) == 1 and len(got_parent) == 1
    [record] = [r for r in caplog.records if r.name.startswith("urlsession_module")]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert "listener bug" in caplog.text and "Traceback" in caplog.text
    assert "'x'" in record.getMessage()


def test_raising_listener_does_not_stop_next_fire(caplog: pytest.LogCaptureFixture) -> None:
    """A listener that raised stays registered and the proxy keeps delivering."""
    p = Proxy()
    calls: list[int] = []

    def flaky(e: Event) -> None:
        calls.append(e.n)
        raise ValueError("every time")

    p.addEventListener("x", flaky)
    with caplog.at_level(logging.ERROR, logger="urlsession_module"):
        p.fireEvent("x", {"n": 1})
        p.fireEvent("x", {"n": 2})
    assert calls == [1, 2]
    assert len([r for r in caplog.records if r.exc_info]) == 2


def _run_script(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter: no pytest logging handlers, as a plain script."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )


_RAISING = """
import urlsession_module as URLSession
from urlsession_module._proxy import Proxy
{setup}
p = Proxy()
def on_progress(e):
    return e.totalByteWritten  # the typo: an AttributeError
p.addEventListener('downloadprogress', on_progress)
p.addEventListener('downloadprogress', lambda e: print('second listener ran'))
p.fireEvent('downloadprogress', {{'totalBytesWritten': 1}})
"""


def test_raising_listener_is_reported_on_stderr_by_default() -> None:
    """With no logging set up, a failing listener's traceback goes to stderr (threading's way)."""
    r = _run_script(_RAISING.format(setup=""))
    assert "second listener ran" in r.stdout
    assert "Exception in listener on_progress for event 'downloadprogress':" in r.stderr, r
    assert "Traceback" in r.stderr and "totalByteWritten" in r.stderr, r


def test_raising_listener_goes_to_the_hosts_logging_or_nowhere() -> None:
    """A host's handler gets the report instead of stderr; a level above ERROR silences it."""
    routed = _RAISING.format(
        setup="import logging, sys\n"
        "logging.basicConfig(stream=sys.stdout, format='LOG %(name)s %(message)s')"
    )
    r = _run_script(routed)
    assert "LOG urlsession_module.listeners listener on_progress for event" in r.stdout, r
    assert "Traceback" in r.stdout and r.stderr == "", r
    silenced = _RAISING.format(
        setup="import logging\n"
        "logging.getLogger('urlsession_module.listeners').setLevel(logging.CRITICAL)"
    )
    r = _run_script(silenced)
    assert r.stderr == "" and "second listener ran" in r.stdout, r


def test_failing_delivery_callback_is_reported_on_stderr_by_default() -> None:
    """A callback a queue runs (a flush callback, say) that raises is reported on stderr too."""
    r = _run_script(
        "import urlsession_module as URLSession\n"
        "q = URLSession.EventQueue()\n"
        "q.submit(lambda: 1 / 0)\n"
        "q.submit(lambda: print('next ran'))\n"
        "q.drain()\n"
    )
    assert "next ran" in r.stdout
    assert (
        "Exception in an event delivery callback:" in r.stderr and "ZeroDivisionError" in r.stderr
    )


# -- event names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("downloadprogres", "downloadprogress"),
        ("downlaodprogress", "downloadprogress"),
        ("uploadprogresss", "uploadprogress"),
        ("sessionCompleted", "sessioncompleted"),
        ("sesioncompleted", "sessioncompleted"),
    ],
)
def test_a_name_one_typo_from_a_built_in_event_warns(name: str, meant: str) -> None:
    """addEventListener warns (UserWarning, at the caller's line) for a near-miss of a built-in."""
    p = Proxy()
    with pytest.warns(UserWarning, match=f"did you mean '{meant}'") as record:
        p.addEventListener(name, lambda e: None)
    assert record[0].filename == __file__
    assert p.hasListeners(name)  # still registered: custom names are Titanium's right
    with pytest.warns(UserWarning, match=meant) as record:
        URLSession.addEventListener(name, lambda e: None)
    assert record[0].filename == __file__


@pytest.mark.parametrize("name", ["downloadprogress", "sessioneventscompleted", "mycustom", "x"])
def test_built_in_and_custom_names_do_not_warn(name: str) -> None:
    """Built-in names and custom names that are not near-misses register without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Proxy().addEventListener(name, lambda e: None)


# -- bubbling ---------------------------------------------------------------------------------


def test_bubbles_task_to_session_to_module_keeping_source() -> None:
    """An event bubbles child → parent → grandparent, each seeing the same source."""
    module = Proxy()
    session = Proxy(parent=module)
    task = Proxy(parent=session)
    seen: list[tuple[str, Proxy]] = []
    for label, proxy in (("task", task), ("session", session), ("module", module)):
        proxy.addEventListener("x", lambda e, label=label: seen.append((label, e.source)))
    task.fireEvent("x", {"taskIdentifier": "t"})
    assert seen == [("task", task), ("session", task), ("module", task)]


def test_bubbling_delivers_one_event_object() -> None:
    """The same Event object travels the chain, so fields set below are seen above."""
    parent = Proxy()
    child = Proxy(parent=parent)
    events: list[Event] = []

    def mark(e: Event) -> None:
        e["seenBy"] = "child"
        events.append(e)

    child.addEventListener("x", mark)
    parent.addEventListener("x", events.append)
    child.fireEvent("x")
    assert events[0] is events[1]
    assert events[1].seenBy == "child"


def test_fire_on_parent_does_not_reach_child() -> None:
    """Events go up the chain, never down."""
    parent = Proxy()
    child = Proxy(parent=parent)
    got, listener = collector()
    child.addEventListener("x", listener)
    parent.fireEvent("x")
    assert got == []


def test_real_session_bubbles_to_the_module(make_session: Callable[..., Any]) -> None:
    """A real Session's parent is the module: its events reach module listeners."""
    session = make_session()
    got, listener = collector()
    URLSession.addEventListener("custom", listener)
    session.fireEvent("custom", {"answer": 42})
    [e] = got
    assert e.answer == 42
    assert e.source is session
    assert e.type == "custom"


def test_cancel_bubble_stops_at_the_current_proxy() -> None:
    """cancelBubble set by a listener: later listeners on that proxy still hear, parents don't."""
    grand = Proxy()
    parent = Proxy(parent=grand)
    child = Proxy(parent=parent)
    heard: list[str] = []

    def stop(e: Event) -> None:
        heard.append("parent-1")
        e.cancelBubble = True

    child.addEventListener("x", lambda e: heard.append("child"))
    parent.addEventListener("x", stop)
    parent.addEventListener("x", lambda e: heard.append("parent-2"))
    grand.addEventListener("x", lambda e: heard.append("grand"))
    child.fireEvent("x")
    assert heard == ["child", "parent-1", "parent-2"]


def test_cancel_bubble_by_item_assignment() -> None:
    """e['cancelBubble'] = True works like the attribute."""
    parent = Proxy()
    child = Proxy(parent=parent)
    got, listener = collector()

    def stop(e: Event) -> None:
        e["cancelBubble"] = True

    child.addEventListener("x", stop)
    parent.addEventListener("x", listener)
    child.fireEvent("x")
    assert got == []


def test_bubble_parent_false_stops_at_this_proxy() -> None:
    """bubbleParent=False keeps events fired on (or bubbling through) a proxy from its parent."""
    grand = Proxy()
    parent = Proxy(parent=grand)
    child = Proxy(parent=parent)
    heard: list[str] = []
    for label, proxy in (("child", child), ("parent", parent), ("grand", grand)):
        proxy.addEventListener("x", lambda e, label=label: heard.append(label))
    assert parent.bubbleParent is True
    parent.bubbleParent = False
    child.fireEvent("x")
    assert heard == ["child", "parent"]
    heard.clear()
    child.bubbleParent = False
    child.fireEvent("x")
    assert heard == ["child"]
    heard.clear()
    parent.bubbleParent = True
    parent.fireEvent("x")
    assert heard == ["parent", "grand"]


def test_module_bubble_parent_false(make_session: Callable[..., Any]) -> None:
    """A session with bubbleParent=False keeps its events from the module."""
    session = make_session()
    got, listener = collector()
    URLSession.addEventListener("custom", listener)
    session.bubbleParent = False
    session.fireEvent("custom")
    assert got == []


def test_bubble_chain_with_a_cycle_terminates() -> None:
    """A parent cycle delivers to each proxy once instead of looping."""
    a = Proxy()
    b = Proxy(parent=a)
    object.__setattr__(a, "_bubble_target", b)
    count = [0]

    def hit(_e: Event) -> None:
        count[0] += 1

    a.addEventListener("x", hit)
    b.addEventListener("x", hit)
    b.fireEvent("x")
    assert count[0] == 2


# -- changing listeners while delivering ------------------------------------------------------


def test_add_and_remove_from_inside_a_listener() -> None:
    """A listener may add and remove listeners during delivery; the next fire sees the change."""
    p = Proxy()
    heard: list[str] = []

    def b(_e: Event) -> None:
        heard.append("b")

    def c(_e: Event) -> None:
        heard.append("c")

    def a(_e: Event) -> None:
        heard.append("a")
        p.removeEventListener("x", b)
        p.addEventListener("x", c)

    p.addEventListener("x", a)
    p.addEventListener("x", b)
    p.fireEvent("x")
    assert heard[0] == "a" and "c" not in heard  # c was added after delivery began
    heard.clear()
    p.fireEvent("x")
    assert heard == ["a", "c"]


def test_listener_removing_itself_runs_once() -> None:
    """A listener that removes itself (a 'once' listener) is called exactly once."""
    p = Proxy()
    calls: list[Event] = []

    def once(e: Event) -> None:
        calls.append(e)
        p.removeEventListener("x", once)

    p.addEventListener("x", once)
    for _ in range(3):
        p.fireEvent("x")
    assert len(calls) == 1
    assert not p.hasListeners("x")


def test_concurrent_add_remove_while_firing(caplog: pytest.LogCaptureFixture) -> None:
    """8 threads adding/removing listeners while others fire: no error, expected final set."""
    p = Proxy(parent=Proxy())
    threads_n, ops = 8, 2000
    errors: list[BaseException] = []
    heard = [0]
    lock = threading.Lock()

    def count(_e: Event) -> None:
        with lock:
            heard[0] += 1

    keepers = [lambda _e: None for _ in range(threads_n)]
    start = threading.Barrier(threads_n + 1)

    def churn(i: int) -> None:
        rng = random.Random(i)
        mine = [lambda _e: None for _ in range(4)]
        try:
            start.wait(5)
            for n in range(ops):
                f = rng.choice(mine)
                action = n % 3
                if action == 0:
                    p.addEventListener("x", f)
                elif action == 1:
                    p.removeEventListener("x", rng.choice(mine))
                else:
                    p.fireEvent("x", {"n": n})
            for f in mine:
                p.removeEventListener("x", f)
            p.addEventListener("x", keepers[i])
        except BaseException as exc:
            errors.append(exc)

    p.addEventListener("x", count)
    workers = [threading.Thread(target=churn, args=(i,)) for i in range(threads_n)]
    with caplog.at_level(logging.ERROR, logger="urlsession_module"):
        for w in workers:
            w.start()
        start.wait(5)
        for _ in range(ops):
            p.fireEvent("x")
        for w in workers:
            w.join(30)
    assert not any(w.is_alive() for w in workers)
    assert errors == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    final = p._emitter.listeners("x")
    assert final[0] is count  # never removed, so still first
    assert len(final) == threads_n + 1 and set(final) == {count, *keepers}
    expected_fires = ops + threads_n * len(range(2, ops, 3))
    assert heard[0] == expected_fires


# -- properties -------------------------------------------------------------------------------


def test_apply_properties_sets_attributes() -> None:
    """applyProperties sets each key, readable as attribute and item."""
    w = Widget()
    w.applyProperties({"color": "red", "size": 3})
    assert (w.color, w["size"]) == ("red", 3)  # type: ignore[attr-defined]
    w["color"] = "blue"
    assert w.color == "blue"  # type: ignore[attr-defined]


def test_apply_properties_creation_only_sets_nothing() -> None:
    """A creation-only key raises CreationOnlyError and no other key of the dict is set."""
    w = Widget()
    with pytest.raises(CreationOnlyError, match="kind"):
        w.applyProperties({"color": "red", "kind": "x"})
    assert not hasattr(w, "color")
    assert isinstance(CreationOnlyError("x"), AttributeError)


def test_creation_only_refuses_assignment_and_item() -> None:
    """Assigning a creation-only key directly or as an item raises CreationOnlyError."""
    w = Widget()
    with pytest.raises(CreationOnlyError):
        w.kind = "x"  # type: ignore[attr-defined]
    with pytest.raises(CreationOnlyError):
        w["kind"] = "x"
    assert not hasattr(w, "kind")


def test_apply_properties_refuses_private_and_non_dict() -> None:
    """applyProperties refuses a non-dict and private names, setting nothing."""
    w = Widget()
    with pytest.raises(InvalidArgumentTypeError) as info:
        w.applyProperties([("a", 1)])  # type: ignore[arg-type]
    assert info.value.argument == "props"
    with pytest.raises(InvalidArgumentValueError):
        w.applyProperties({"a": 1, "_emitter": None})
    assert not hasattr(w, "a")
    with pytest.raises(KeyError):
        w["_emitter"] = None
    with pytest.raises(KeyError):
        _ = w["_emitter"]
    with pytest.raises(KeyError):
        _ = w["nope"]


def test_bubble_parent_via_apply_properties() -> None:
    """bubbleParent can be set through applyProperties and read as an item."""
    parent = Proxy()
    child = Proxy(parent=parent)
    got, listener = collector()
    parent.addEventListener("x", listener)
    child.applyProperties({"bubbleParent": False})
    assert child["bubbleParent"] is False
    child.fireEvent("x")
    assert got == []


def test_api_name_is_read_only() -> None:
    """apiName reads the proxy's Titanium name and cannot be assigned."""
    w = Widget()
    assert w.apiName == w["apiName"] == "Test.Widget"
    assert Proxy().apiName == "Titanium.Proxy"
    with pytest.raises(AttributeError):
        w.apiName = "Other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        w.applyProperties({"apiName": "Other"})
    assert w.apiName == "Test.Widget"


def test_module_api_name_is_read_only() -> None:
    """The module's apiName is 'Modules.URLSession' and cannot be assigned."""
    assert URLSession.apiName == "Modules.URLSession"
    with pytest.raises(AttributeError):
        URLSession.apiName = "x"  # type: ignore[misc]
    assert URLSession.apiName == "Modules.URLSession"
