"""The network thread's poller: the sockets libcurl asks it to watch, on epoll or selectors."""

from __future__ import annotations

import os
import select

import pytest

pycurl = pytest.importorskip("pycurl")

from urlsession_module._transport._curl._multi import _Epoll, _Selector  # noqa: E402

POLLERS = [_Selector, *([_Epoll] if hasattr(select, "epoll") else [])]


@pytest.mark.parametrize("make", POLLERS)
def test_watched_directions_are_reported_in_libcurls_terms(make: type) -> None:
    """A pipe's read end is ready to read once written, its write end ready to write; a
    direction not asked for is never reported, and a forgotten descriptor never again."""
    poller = make()
    r, w = os.pipe()
    try:
        poller.watch(r, pycurl.POLL_IN)
        poller.watch(w, pycurl.POLL_IN)  # a pipe's write end never reads: nothing to report
        assert poller.wait(0) == []
        poller.watch(w, pycurl.POLL_INOUT)
        poller.watch(w, pycurl.POLL_INOUT)  # the same again: no change
        assert poller.wait(0) == [(w, pycurl.CSELECT_OUT)]
        os.write(w, b"x")
        assert sorted(poller.wait(0)) == sorted([(r, pycurl.CSELECT_IN), (w, pycurl.CSELECT_OUT)])
        poller.watch(w, pycurl.POLL_IN)
        assert poller.wait(0) == [(r, pycurl.CSELECT_IN)]
        poller.forget(r)
        poller.forget(r)  # (twice: no error)
        assert poller.wait(0) == []
    finally:
        poller.close()
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("make", POLLERS)
def test_a_closed_descriptor_number_can_be_watched_again(make: type) -> None:
    """A socket libcurl closed and whose number came back for a new one is watched afresh."""
    poller = make()
    r, w = os.pipe()
    try:
        poller.watch(r, pycurl.POLL_IN)
        poller.forget(r)
        os.close(r)
        os.close(w)
        r, w = os.pipe()
        poller.watch(r, pycurl.POLL_IN)
        os.write(w, b"x")
        assert poller.wait(0) == [(r, pycurl.CSELECT_IN)]
    finally:
        poller.close()
        os.close(r)
        os.close(w)
