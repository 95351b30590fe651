"""The bridge: require, JS objects as arguments, Python errors as JS Errors, listeners."""

from __future__ import annotations

import threading

import pytest

import urlsession_module as URLSession
from urlsession_module.js import JSHost, JSSyntaxError
from urlsession_module.testing import LocalServer

from .conftest import RunJS


def host(server: LocalServer) -> dict[str, str]:
    """The scripts' URLs are https://host.test/...: mapped to the local server."""
    return {"https://host.test/": server.url("/")}


def test_require_returns_the_module_and_names_what_is_available(run_js: RunJS) -> None:
    """require('com.appcelerator.urlSession') is the module; any other id throws, catchably."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        Ti.API.info(URLSession.moduleId, URLSession === require('com.appcelerator.urlSession'));
        Ti.API.info(typeof URLSession.createSession, typeof URLSession.finishTasksAndInvalidate);
        try { require('ti.map'); } catch (e) { Ti.API.info(e instanceof Error, e.message); }
        """
    )
    assert ran.result.status == 0, ran.output
    assert ran.info == [
        "com.appcelerator.urlSession true",
        "function function",
        "true require('ti.map'): no such module here; available: 'com.appcelerator.urlSession'",
    ]


def test_python_errors_become_catchable_js_errors_with_the_same_message(run_js: RunJS) -> None:
    """The message is Python's, word for word; the name is the exception's class."""
    with pytest.raises(URLSession.InvalidArgumentValueError) as python:
        URLSession.createSession({"configuration": None, "bogus": 1})
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        try {
            URLSession.createSession({ configuration: null, bogus: 1 });
        } catch (e) {
            Ti.API.info(e instanceof Error, e.name);
            Ti.API.info(e.message);
        }
        """
    )
    assert ran.result.status == 0, ran.output
    assert ran.info == ["true InvalidArgumentValueError", str(python.value)]


def test_js_numbers_and_objects_arrive_as_python_values(run_js: RunJS, server: LocalServer) -> None:
    """Integral numbers are ints (the validators would refuse 4.0), objects are dicts."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        const cfg = URLSession.createSessionConfiguration({
            httpMaximumConnectionsPerHost: 4,
            timeoutIntervalForRequest: 2.5,
            HTTPHeaderFields: { 'X-From': 'js' },
        });
        Ti.API.info(cfg.httpMaximumConnectionsPerHost, cfg.timeoutIntervalForRequest);
        Ti.API.info(JSON.stringify(cfg.HTTPHeaderFields));
        const session = URLSession.createSession({ configuration: cfg });
        Ti.API.info(session.configuration.httpMaximumConnectionsPerHost === 4);
        session.addEventListener('sessioncompleted', (e) => {
            const echo = JSON.parse(e.responseText);
            Ti.API.info(echo.headers['x-from'], echo.body_text);
        });
        session.dataTask({
            url: 'https://host.test/echo', method: 'PUT', data: { n: 1, list: [1, 2.5] },
        });
        """,
        url_map=host(server),
    )
    assert ran.result.status == 0, ran.output
    assert ran.info == [
        "4 2.5",
        '{"X-From":"js"}',
        "true",
        'js {"n": 1, "list": [1, 2.5]}',
    ]


def test_listeners_keep_js_function_identity(run_js: RunJS, server: LocalServer) -> None:
    """The same function twice is one listener; removeEventListener with it removes it."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        const session = URLSession.createSession({
            configuration: URLSession.createSessionConfiguration({}),
        });
        let once = 0, removed = 0, other = 0;
        function count() { once += 1; }
        function gone() { removed += 1; }
        session.addEventListener('sessioncompleted', count);
        session.addEventListener('sessioncompleted', count);
        session.addEventListener('sessioncompleted', gone);
        session.addEventListener('sessioncompleted', (e) => { other += 1; });
        session.removeEventListener('sessioncompleted', gone);
        session.removeEventListener('sessioncompleted', () => {}); // unknown: a no-op
        session.dataTask({ url: 'https://host.test/echo' });
        setTimeout(function check() {
            if (other === 0) { setTimeout(check, 10); return; }
            Ti.API.info(once, removed, other);
        }, 10);
        """,
        url_map=host(server),
    )
    assert ran.result.status == 0, ran.output
    assert ran.info == ["1 0 1"]


def test_events_are_plain_objects_with_source_and_a_blob(
    run_js: RunJS, server: LocalServer
) -> None:
    """JSON.stringify gives the payload fields; e.source is the task; e.data is a Blob."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        const session = URLSession.createSession({
            configuration: URLSession.createSessionConfiguration({}),
        });
        session.addEventListener('downloadcompleted', (e) => {
            Ti.API.info(JSON.stringify(Object.keys(e)), e.type);
            Ti.API.info(e.source === session.getTask(e.taskIdentifier), e.source.apiName);
            Ti.API.info(e.data.length, e.data.mimeType, typeof e.data.text);
            Ti.API.info(Ti.Filesystem.getFile(e.data.nativePath).exists());
        });
        session.addEventListener('sessioncompleted', (e) => {
            const fields = JSON.parse(JSON.stringify(e));
            Ti.API.info(Object.keys(fields).sort().join(','));
        });
        session.downloadTask({ url: 'https://host.test/bytes/1000' });
        """,
        url_map=host(server),
    )
    assert ran.result.status == 0, ran.output
    assert ran.info[:4] == [
        '["taskIdentifier","data"] downloadcompleted',
        "true Modules.URLSession.Task",
        "1000 application/octet-stream string",
        "true",
    ]
    assert ran.info[4].startswith("errorCode,message,")
    assert set(ran.info[4].split(",")) >= {"taskIdentifier", "success", "statusCode"}
    assert "type" not in ran.info[4].split(",") and "source" not in ran.info[4].split(",")


def test_cancel_bubble_stops_the_event_before_the_module(
    run_js: RunJS, server: LocalServer
) -> None:
    """e.cancelBubble = true on the session: Ti.App.iOS (the module) never hears it."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        const session = URLSession.createSession({
            configuration: URLSession.createSessionConfiguration({}),
        });
        let stopped = true;
        Ti.App.iOS.addEventListener('sessioncompleted', (e) => {
            Ti.API.info('module heard', e.source.apiName);
        });
        session.addEventListener('sessioncompleted', (e) => {
            e.cancelBubble = stopped;
            Ti.API.info('session heard');
            stopped = false;
        });
        session.dataTask({ url: 'https://host.test/echo' });
        setTimeout(() => session.dataTask({ url: 'https://host.test/echo' }), 300);
        """,
        url_map=host(server),
    )
    assert ran.result.status == 0, ran.output
    assert ran.info == [
        "session heard",
        "session heard",
        "module heard Modules.URLSession.Task",
    ]


def test_a_throwing_listener_is_reported_and_the_others_run(
    run_js: RunJS, server: LocalServer
) -> None:
    """Logged with its JS stack, the next listener still runs, the run's status is 1."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        const session = URLSession.createSession({
            configuration: URLSession.createSessionConfiguration({}),
        });
        function explode(e) {
            throw new TypeError('no such thing: ' + e.taskIdentifier.length);
        }
        session.addEventListener('sessioncompleted', explode);
        session.addEventListener('sessioncompleted', () => Ti.API.info('still delivered'));
        session.dataTask({ url: 'https://host.test/echo' });
        """,
        url_map=host(server),
    )
    assert ran.result.status == 1
    assert ran.info == ["still delivered"]
    [error] = ran.result.errors
    assert "uncaught exception in a listener for 'sessioncompleted'" in error
    assert "TypeError: no such thing: " in error
    assert "at explode@" in error and "app.js:7:" in error  # the JS stack, file:line


def test_all_javascript_runs_on_the_hosts_thread(run_js: RunJS, server: LocalServer) -> None:
    """Listeners, timers and callbacks run here, never on a delivery thread."""
    seen: list[str] = []
    original = JSHost._deliver

    def spy(self: JSHost, fn: object, event: URLSession.Event) -> None:
        seen.append(threading.current_thread().name)
        original(self, fn, event)

    JSHost._deliver = spy  # type: ignore[method-assign]
    try:
        ran = run_js(
            """
            const URLSession = require('com.appcelerator.urlSession');
            const session = URLSession.createSession({
                configuration: URLSession.createSessionConfiguration({}),
            });
            session.addEventListener('sessioncompleted', () => Ti.API.info('done'));
            session.flush(() => Ti.API.info('flushed'));
            session.dataTask({ url: 'https://host.test/echo' });
            """,
            url_map=host(server),
        )
    finally:
        JSHost._deliver = original  # type: ignore[method-assign]
    assert ran.result.status == 0, ran.output
    assert sorted(ran.info) == ["done", "flushed"]
    assert seen == [threading.current_thread().name]


def test_a_script_that_does_not_parse_names_line_and_column(run_js: RunJS) -> None:
    """Nothing runs; the message is file:line:column and the engine's words."""
    with pytest.raises(JSSyntaxError) as caught:
        run_js("Ti.API.info('first');\nconst x = ;\n")
    assert "app.js:2:11: SyntaxError: expected expression, got ';'" in str(caught.value)


def test_an_uncaught_top_level_error_ends_the_run_with_its_stack(run_js: RunJS) -> None:
    """Status 1, the error and where it was thrown; later timers never run."""
    ran = run_js(
        "setTimeout(() => Ti.API.info('never'), 0);\nfunction boot() { null.x; }\nboot();\n"
    )
    assert ran.result.status == 1
    assert ran.info == []
    [error] = ran.result.errors
    assert (
        """uncaught exception in the script: TypeError: can't access property "x" of null"""
        in error
    )
    assert "at boot@" in error and "app.js:2:" in error


def test_js_that_never_ends_stops_at_the_timeout(run_js: RunJS, server: LocalServer) -> None:
    """An interval that is never cleared: status 1 at the timeout, its sessions cancelled."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        const session = URLSession.createSession({
            configuration: URLSession.createSessionConfiguration({}),
        });
        session.dataTask({ url: 'https://host.test/stall' });
        setInterval(() => {}, 20);
        """,
        url_map=host(server),
        timeout=1.0,
    )
    assert ran.result.status == 1 and ran.result.timed_out
    assert "[ERROR] timed out after 1 s: 1 timer(s), 1 task(s) still pending" in ran.lines


def test_timers_run_in_order_and_clear(run_js: RunJS) -> None:
    """setTimeout by due time (extra arguments passed), setInterval until cleared."""
    ran = run_js(
        """
        setTimeout((a, b) => Ti.API.info('late', a, b), 60, 'x', 2);
        const gone = setTimeout(() => Ti.API.info('cleared'), 10);
        clearTimeout(gone);
        setTimeout(() => Ti.API.info('early'), 5);
        let n = 0;
        const tick = setInterval(() => {
            n += 1;
            if (n === 3) { clearInterval(tick); Ti.API.info('ticked', n); }
        }, 5);
        """
    )
    assert ran.result.status == 0, ran.output
    assert ran.info.index("early") < ran.info.index("late x 2")
    assert "ticked 3" in ran.info and "cleared" not in ran.info


def test_the_default_queue_and_module_listeners_are_put_back(
    run_js: RunJS, server: LocalServer
) -> None:
    """After a run: no JS listener on the module, the default delegateQueue restored."""
    ran = run_js(
        """
        Ti.App.iOS.addEventListener('sessioncompleted', () => Ti.API.info('heard'));
        const URLSession = require('com.appcelerator.urlSession');
        URLSession.createSession({ configuration: URLSession.createSessionConfiguration({}) })
            .dataTask({ url: 'https://host.test/echo' });
        """,
        url_map=host(server),
    )
    assert ran.info == ["heard"]
    assert URLSession.getDefaultDelegateQueue() is None
    assert not URLSession.hasListeners("sessioncompleted")  # type: ignore[attr-defined]


def test_bad_host_options_are_refused_naming_them() -> None:
    """An empty url_map prefix, a zero timeout: InvalidArgumentValueError, nothing runs."""
    with pytest.raises(URLSession.InvalidArgumentValueError, match="url_map"):
        JSHost(url_map={"": "http://127.0.0.1/"})
    with pytest.raises(URLSession.InvalidArgumentValueError, match="'timeout' must be > 0"):
        JSHost(timeout=0)


def test_dates_and_task_methods_work_from_js(run_js: RunJS, server: LocalServer) -> None:
    """A Date as earliestBeginDate delays the task; task.cancel() from JS reports -999."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        const session = URLSession.createSession({
            configuration: URLSession.createSessionConfiguration({}),
        });
        const t0 = Date.now();
        const late = session.dataTask({
            url: 'https://host.test/echo', earliestBeginDate: new Date(t0 + 300), priority: 1,
        });
        const slow = session.dataTask({ url: 'https://host.test/slow?delay=5' });
        session.addEventListener('sessioncompleted', (e) => {
            if (e.taskIdentifier === late) {
                Ti.API.info('late', e.success, Date.now() - t0 >= 250);
            } else {
                Ti.API.info('cancelled', e.errorCode, e.success);
            }
        });
        const task = session.getTask(slow);
        Ti.API.info(task.taskIdentifier === slow, typeof task.state);
        task.cancel();
        """,
        url_map=host(server),
    )
    assert ran.result.status == 0, ran.output
    assert ran.info == ["true string", "cancelled -999 false", "late true true"]


def test_deprecated_entry_points_work_and_warn_on_the_console(
    run_js: RunJS, server: LocalServer
) -> None:
    """Titanium's old calls take JS wrappers as arguments; their warning is a [WARN] line."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        const session = URLSession.createURLSession(URLSession.createSessionConfiguration({}));
        session.addEventListener('sessioncompleted', (e) => Ti.API.info('done', e.statusCode));
        URLSession.backgroundDownloadTaskWithURL(session, 'https://host.test/bytes/10');
        """,
        url_map=host(server),
    )
    assert ran.result.status == 0, ran.output
    assert ran.info == ["done 200"]
    warned = [line for line in ran.lines if line.startswith("[WARN] ")]
    assert warned == [
        "[WARN] DeprecationWarning: createURLSession(configuration) is deprecated; use "
        "createSession({'configuration': cfg})",
        "[WARN] DeprecationWarning: backgroundDownloadTaskWithURL(session, url) is deprecated; "
        "use session.downloadTask({'url': url})",
    ]


def test_promises_run_and_an_error_in_a_promise_job_is_reported(run_js: RunJS) -> None:
    """async functions and then() run on the host's loop; a throw there is reported, status 1."""
    ran = run_js(
        """
        (async () => {
            await new Promise((resolve) => setTimeout(resolve, 10));
            Ti.API.info('awaited');
        })();
        Promise.resolve().then(() => { throw new RangeError('in a job'); });
        """
    )
    assert ran.result.status == 1
    assert ran.info == ["awaited"]
    [error] = ran.result.errors
    assert "uncaught exception in a promise job" in error
    assert "RangeError: in a job" in error and "app.js:6:" in error
