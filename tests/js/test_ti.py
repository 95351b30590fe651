"""The headless Titanium globals: Properties, Filesystem, Ti.App.iOS, Ti.UI, clicks."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from urlsession_module.testing import LocalServer

from .conftest import RunJS


def test_properties_persist_per_app_id_in_a_private_file(run_js: RunJS, state_home: Path) -> None:
    """Each type round-trips; a second run of the same app sees them; another app does not."""
    first = run_js(
        """
        const P = Ti.App.Properties;
        P.setString('s', 'text'); P.setInt('i', 42); P.setDouble('d', 2.5);
        P.setBool('b', true); P.setObject('o', { a: [1, { b: null }] }); P.setList('l', [1, 2]);
        P.setString('gone', 'x'); P.removeProperty('gone');
        Ti.API.info(P.getString('s'), P.getInt('i'), P.getDouble('d'), P.getBool('b'));
        Ti.API.info(JSON.stringify(P.getObject('o')), JSON.stringify(P.getList('l')));
        Ti.API.info(P.hasProperty('gone'), P.getString('gone', 'fallback'), P.getObject('none'));
        """,
        app_id="com.example.one",
    )
    assert first.result.status == 0, first.output
    assert first.info == [
        "text 42 2.5 true",
        '{"a":[1,{"b":null}]} [1,2]',
        "false fallback null",
    ]
    path = state_home / "js" / "com.example.one" / "properties.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = run_js(
        "Ti.API.info(JSON.stringify(Ti.App.Properties.listProperties()));",
        app_id="com.example.one",
    )
    assert again.info == ['["b","d","i","l","o","s"]']
    other = run_js(
        "Ti.API.info(Ti.App.Properties.listProperties().length);", app_id="com.example.two"
    )
    assert other.info == ["0"]


def test_filesystem_writes_reads_lists_and_deletes(run_js: RunJS, state_home: Path) -> None:
    """Files in applicationDataDirectory stay; the temporary directory is gone after the run."""
    ran = run_js(
        """
        const FS = Ti.Filesystem;
        const dir = FS.getFile(FS.applicationDataDirectory, 'notes');
        Ti.API.info(dir.exists(), dir.createDirectory(), dir.isDirectory());
        const note = FS.getFile(FS.applicationDataDirectory + '/notes/' + 'a.txt');
        note.write('hello');
        note.write(' world', true);
        Ti.API.info(note.read().text, note.size, note.name, FS.separator);
        const copy = FS.getFile(dir.nativePath, 'b.txt');
        copy.write(note.read());
        Ti.API.info(JSON.stringify(dir.getDirectoryListing()));
        Ti.API.info(copy.deleteFile(), copy.exists(), copy.deleteFile());
        const tmp = FS.getFile(FS.tempDirectory, 'scratch');
        tmp.write('x');
        Ti.API.info(tmp.exists(), FS.getFile(FS.applicationDataDirectory, 'none').read());
        """,
        app_id="files",
    )
    assert ran.result.status == 0, ran.output
    assert ran.info[:5] == [
        "false true true",
        "hello world 11 a.txt /",
        '["a.txt","b.txt"]',
        "true false false",
        "true null",
    ]
    data = state_home / "js" / "files" / "data"
    assert (data / "notes" / "a.txt").read_text() == "hello world"
    assert not [p for p in Path("/tmp").glob("urlsession-js-*") if (p / "scratch").exists()]


def test_ui_is_inert_but_keeps_properties_fires_open_and_clicks(run_js: RunJS) -> None:
    """Views keep what they are given; open fires 'open'; --click clicks a button by title."""
    ran = run_js(
        """
        const win = Ti.UI.createWindow({ title: 'Main', backgroundColor: 'white' });
        const nav = Ti.UI.iOS.createNavigationWindow({ window: win });
        const button = Titanium.UI.createButton({ title: 'Go' });
        const list = Ti.UI.createListView({ style: Ti.UI.iOS.ListViewStyle.GROUPED });
        const section = Ti.UI.createListSection({ headerTitle: 'H' });
        section.setItems([{ properties: { title: 'row',
            selectionStyle: Ti.UI.iOS.ListViewCellSelectionStyle.NONE } }]);
        list.setSections([section]);
        win.setRightNavButton(button);
        win.add(list);
        win.addEventListener('open', () => Ti.API.info('open', win.getTitle()));
        button.addEventListener('click', (e) => Ti.API.info('clicked', e.source.title));
        nav.open();
        Ti.API.info(list.sections.length, list.style, win.rightNavButton === button);
        """,
        clicks=["Go"],
    )
    assert ran.result.status == 0, ran.output
    assert ran.info == ["1 1 true", "open Main", "clicked Go"]


def test_clicking_a_missing_button_names_the_ones_there(run_js: RunJS) -> None:
    """Status 1, and the message lists the titles that could be clicked."""
    ran = run_js("Ti.UI.createButton({ title: 'Start' });", clicks=["Stop"])
    assert ran.result.status == 1
    assert ran.result.errors == ["--click: no button titled 'Stop' (buttons: 'Start')"]


def test_background_fetch_fires_with_a_handler_id_and_app_ios_is_headless(
    run_js: RunJS,
) -> None:
    """backgroundfetch reaches Ti.App.iOS with a handlerId; endBackgroundHandler takes it."""
    ran = run_js(
        """
        Ti.App.iOS.setMinimumBackgroundFetchInterval(Ti.App.iOS.BACKGROUNDFETCHINTERVAL_MIN);
        Ti.App.iOS.addEventListener('backgroundfetch', (e) => {
            Ti.API.info('fetch', e.type, typeof e.handlerId);
            Ti.App.iOS.endBackgroundHandler(e.handlerId);
            Ti.App.iOS.scheduleLocalNotification({ alertBody: 'fetched' });
        });
        try { Ti.App.iOS.endBackgroundHandler(''); } catch (e) { Ti.API.info(e.message); }
        """,
        background_fetch=True,
    )
    assert ran.result.status == 0, ran.output
    assert ran.info == [
        "'handlerId' must be a non-empty str (got '')",
        "fetch backgroundfetch string",
        '[local notification] {"alertBody":"fetched"}',
    ]


def test_a_download_file_nobody_kept_is_removed_after_its_listeners(
    run_js: RunJS, server: LocalServer, state_home: Path
) -> None:
    """As on iOS, the file is the event's: a copy written out stays, the original goes."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        const session = URLSession.createSession({
            configuration: URLSession.createSessionConfiguration({}),
        });
        session.addEventListener('downloadcompleted', (e) => {
            Ti.Filesystem.getFile(Ti.Filesystem.applicationDataDirectory, 'kept.bin').write(e.data);
            Ti.API.info(e.data.nativePath);
        });
        session.downloadTask({ url: 'https://host.test/bytes/5000' });
        """,
        url_map={"https://host.test/": server.url("/")},
        app_id="keeper",
    )
    assert ran.result.status == 0, ran.output
    [original] = ran.info
    assert not os.path.exists(original)
    assert (state_home / "js" / "keeper" / "data" / "kept.bin").stat().st_size == 5000


def test_a_failed_run_leaves_only_the_apps_properties_and_files(
    run_js: RunJS, server: LocalServer, state_home: Path
) -> None:
    """A download in flight, a temporary file, then an error and the timeout: what is left
    is the app's Properties and data directory, no part file, no temporary directory."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        const session = URLSession.createSession({
            configuration: URLSession.createSessionConfiguration({}),
        });
        session.downloadTask({ url: 'https://host.test/bytes/50000000?rate=200000' });
        Ti.App.Properties.setString('k', 'v');
        const scratch = Ti.Filesystem.getFile(Ti.Filesystem.tempDirectory, 'scratch.txt');
        scratch.write('x');
        Ti.API.info(scratch.nativePath);
        setTimeout(() => { throw new Error('late failure'); }, 100);
        """,
        url_map={"https://host.test/": server.url("/")},
        app_id="failing",
        timeout=1.0,
    )
    assert ran.result.status == 1 and ran.result.timed_out
    assert len(ran.result.errors) == 1 and "late failure" in ran.result.errors[0]
    [scratch] = ran.info
    assert not Path(scratch).parent.exists()
    left = sorted(str(p.relative_to(state_home)) for p in state_home.rglob("*") if p.is_file())
    assert left == ["js/failing/properties.json"]


def test_a_session_per_event_with_one_background_identifier_is_one_session(
    run_js: RunJS, server: LocalServer, no_transfer_left: Path
) -> None:
    """Titanium apps (its own example app among them) make a background session with the same
    identifier in each click and launch handler, as iOS allows: every createSession gives the one
    session, both downloads complete, and the app hears one sessioneventscompleted."""
    ran = run_js(
        """
        const URLSession = require('com.appcelerator.urlSession');
        const made = [];
        function start(path) {
            const session = URLSession.createSession({
                configuration: URLSession.createSessionConfiguration({ identifier: 'com.test.one' }),
            });
            made.push(session);
            session.downloadTask({ url: 'https://photos.test/' + path });
        }
        Ti.App.iOS.addEventListener('backgroundfetch', () => start('bytes/3000'));
        Ti.App.iOS.addEventListener('sessioncompleted', (e) => {
            Ti.API.info('done', e.taskIdentifier, e.success, made.length, made[0] === made[1]);
        });
        Ti.App.iOS.addEventListener('sessioneventscompleted', (e) => {
            Ti.API.info('all events', e.sessionIdentifier);
        });
        const button = Ti.UI.createButton({ title: 'Start' });
        button.addEventListener('click', () => start('bytes/4000'));
        """,
        url_map={"https://photos.test/": server.url("/")},
        clicks=["Start"],
        background_fetch=True,
    )
    assert ran.result.status == 0, ran.output
    done = sorted(line for line in ran.info if line.startswith("done "))
    assert done == ["done bg1 true 2 true", "done bg2 true 2 true"], ran.output
    assert [line for line in ran.info if line.startswith("all events")] == [
        "all events com.test.one"
    ], ran.output
    assert "returning it" in ran.output
