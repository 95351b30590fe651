// A Titanium app for com.appcelerator.urlSession, run headless by `urlsession run`.
//
// A "Download photo" button starts a background download; progress, the finished file and the
// outcome arrive on Ti.App.iOS as on a device. The file is saved in applicationDataDirectory,
// the pending task ids are kept in Ti.App.Properties, and a data task reads a JSON answer.
// Its URLs point at the internet; run it against the package's local server with --url-map
// (see README.md here).
const URLSession = require('com.appcelerator.urlSession');

const PHOTO_URL = 'https://photos.example.com/sunrise.png';
const API_URL = 'https://api.example.com/echo';
const PENDING = 'photo.pending';

const win = Ti.UI.createWindow({ title: 'Photos', backgroundColor: 'white' });
const nav = Ti.UI.iOS.createNavigationWindow({ window: win });
const button = Ti.UI.createButton({ title: 'Download photo' });
const list = Ti.UI.createListView({ style: Ti.UI.iOS.ListViewStyle.GROUPED });
let shown = false;

win.setRightNavButton(button);
win.add(list);
win.addEventListener('open', () => {
    shown = true;
    refresh();
});
nav.open();

let background = null; // the background session, made once

function backgroundSession() {
    if (background === null) {
        const configuration = URLSession.createSessionConfiguration({
            identifier: 'com.example.titanium.photos',
        });
        background = URLSession.createSession({ configuration });
    }
    return background;
}

function pending() {
    return Ti.App.Properties.getList(PENDING, []);
}

function refresh() {
    const saved = Ti.Filesystem.getFile(Ti.Filesystem.applicationDataDirectory)
        .getDirectoryListing()
        .filter((name) => /^photo-\d+\.png$/.test(name));
    const pendingSection = Ti.UI.createListSection({ headerTitle: 'Pending' });
    pendingSection.setItems(pending().map((id) => ({ properties: { title: `Task ${id}` } })));
    const savedSection = Ti.UI.createListSection({ headerTitle: 'Saved' });
    savedSection.setItems(saved.map((name) => ({ properties: { title: name } })));
    list.setSections([pendingSection, savedSection]);
    Ti.API.info(`list: ${pending().length} pending, ${saved.length} saved`);
}

button.addEventListener('click', () => {
    const id = backgroundSession().downloadTask({ url: PHOTO_URL });
    Ti.App.Properties.setList(PENDING, pending().concat([id]));
    Ti.API.info(`download ${id} started`);
    if (shown) {
        refresh();
    }
});

// The module's events arrive on Ti.App.iOS, as they do on a device.
const reported = {}; // task id -> the last percentage logged
Ti.App.iOS.addEventListener('downloadprogress', (e) => {
    const percent = Math.floor((100 * e.totalBytesWritten) / e.totalBytesExpectedToWrite);
    if (percent >= (reported[e.taskIdentifier] ?? -25) + 25) {
        reported[e.taskIdentifier] = percent;
        Ti.API.info(`download ${e.taskIdentifier}: ${percent}%`);
    }
});

Ti.App.iOS.addEventListener('downloadcompleted', (e) => {
    const name = `photo-${Date.now()}.png`;
    const file = Ti.Filesystem.getFile(Ti.Filesystem.applicationDataDirectory, name);
    file.write(e.data);
    Ti.API.info(`saved ${name} (${e.data.length} bytes, ${e.data.mimeType})`);
});

Ti.App.iOS.addEventListener('sessioncompleted', (e) => {
    Ti.App.Properties.setList(PENDING, pending().filter((id) => id !== e.taskIdentifier));
    Ti.API.info(`task ${e.taskIdentifier} completed, success: ${e.success}`);
    if (!e.success) {
        Ti.API.error(`failed: ${e.errorCode} ${e.message}`);
    }
    if (shown) {
        refresh();
    }
});

Ti.App.iOS.addEventListener('sessioneventscompleted', (e) => {
    Ti.App.iOS.scheduleLocalNotification({ alertBody: `${e.sessionIdentifier}: all done` });
});

Ti.App.iOS.setMinimumBackgroundFetchInterval(Ti.App.iOS.BACKGROUNDFETCHINTERVAL_MIN);
Ti.App.iOS.addEventListener('backgroundfetch', (e) => {
    Ti.API.info(`background fetch ${e.handlerId}`);
    const id = backgroundSession().downloadTask({ url: PHOTO_URL });
    Ti.App.Properties.setList(PENDING, pending().concat([id]));
    Ti.App.iOS.endBackgroundHandler(e.handlerId);
});

// A data task in a default session, its answer read in the session's own listener.
const api = URLSession.createSession({
    configuration: URLSession.createSessionConfiguration({ timeoutIntervalForRequest: 30 }),
});
api.addEventListener('sessioncompleted', function onAnswer(e) {
    e.cancelBubble = true; // this one is handled here, not on Ti.App.iOS
    const answer = JSON.parse(e.responseText);
    Ti.API.info(`api answered ${e.statusCode}: ${answer.method} ${answer.path}`);
    api.finishTasksAndInvalidate();
});
api.dataTask({ url: API_URL, method: 'POST', data: { hello: 'titanium' } });

setTimeout(() => Ti.API.info(`launched; ${Ti.App.Properties.listProperties().length} properties`), 0);
