// The JavaScript half of the host (urlsession_module/_js): wrappers over Python objects, the
// listener registry that keeps JS function identity, and the headless Titanium globals.
// Evaluated once per engine; called with `py`, a dict of Python callables (see _bridge.py), it
// returns the functions Python calls back. Every value that crosses goes as JSON text, with
// {"$h": id} for a Python object and {"$f": n} for a function, so no engine proxy leaks into app
// code: app code sees plain JS objects, arrays and numbers.
(function (py) {
    'use strict';

    const HANDLE = Symbol('urlsession.handle');
    const wrappers = new Map(); // handle id -> wrapper (so the same Python object is ===)
    const listening = new Map(); // handle id -> Map(name -> Map(function -> token))

    // -- values across the bridge ----------------------------------------------------------------

    function encode(value) {
        const fns = [];
        const text = JSON.stringify(value === undefined ? null : value, function (key, v) {
            const raw = this[key]; // before toJSON: a wrapper (or a Date) as given
            if (raw !== null && (typeof raw === 'object' || typeof raw === 'function')) {
                const h = raw[HANDLE];
                if (h !== undefined) {
                    return { $h: h };
                }
            }
            if (typeof raw === 'function') {
                fns.push(raw);
                return { $f: fns.length - 1 };
            }
            if (raw instanceof Date) {
                return raw.getTime() / 1000; // seconds since the epoch, as Python's dates take
            }
            return v === undefined ? null : v;
        });
        return [text, fns];
    }

    function decode(text) {
        return JSON.parse(text, function (key, v) {
            if (v !== null && typeof v === 'object' && typeof v.$h === 'number') {
                return wrap(v.$h, v.api);
            }
            return v;
        });
    }

    function answer(text) {
        // {"ok": value} or {"error": message, "name": class}: a Python exception becomes an Error
        // with the same message, catchable here like any other.
        const r = decode(text);
        if (r.error !== undefined) {
            const err = new Error(r.error);
            err.name = r.name;
            throw err;
        }
        return r.ok;
    }

    function callPy(h, method, args) {
        const [text, fns] = encode(args);
        return answer(py.call(h, method, text, fns));
    }

    // -- wrappers over Python objects --------------------------------------------------------------

    function wrap(h, api) {
        let w = wrappers.get(h);
        if (w !== undefined) {
            return w;
        }
        const own = {
            addEventListener: (name, fn) => addListener(h, name, fn),
            removeEventListener: (name, fn) => removeListener(h, name, fn),
        };
        const methods = new Map();
        w = new Proxy(own, {
            get(target, prop) {
                if (prop === HANDLE) {
                    return h;
                }
                if (typeof prop === 'symbol') {
                    return undefined;
                }
                if (Object.prototype.hasOwnProperty.call(own, prop)) {
                    return own[prop];
                }
                if (methods.has(prop)) {
                    return methods.get(prop);
                }
                const r = decode(py.get(h, prop));
                if (r.method) {
                    const f = function (...args) {
                        return callPy(h, prop, args);
                    };
                    methods.set(prop, f);
                    return f;
                }
                if (r.missing) {
                    return prop === 'toString' ? () => `[object ${api || 'Proxy'}]` : undefined;
                }
                return r.ok;
            },
            set(target, prop, value) {
                const [text] = encode(value);
                answer(py.set(h, String(prop), text));
                return true;
            },
            has(target, prop) {
                return typeof prop === 'string' && !decode(py.get(h, prop)).missing;
            },
        });
        wrappers.set(h, w);
        return w;
    }

    // -- listeners: one registration per (object, event, function), as Titanium does -----------

    function addListener(h, name, fn) {
        if (typeof fn !== 'function') {
            throw new Error(`'callback' must be a function (got ${typeof fn})`);
        }
        let byName = listening.get(h);
        if (byName === undefined) {
            byName = new Map();
            listening.set(h, byName);
        }
        let fns = byName.get(name);
        if (fns === undefined) {
            fns = new Map();
            byName.set(name, fns);
        }
        if (!fns.has(fn)) {
            fns.set(fn, answer(py.listen(h, String(name), fn)));
        }
    }

    function removeListener(h, name, fn) {
        const fns = (listening.get(h) || new Map()).get(name);
        if (fns !== undefined && fns.has(fn)) {
            answer(py.unlisten(fns.get(fn)));
            fns.delete(fn);
        }
    }

    function report(label, err) {
        const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        const stack = err && err.stack ? String(err.stack) : '';
        py.uncaught(label, text, stack);
    }

    function makeEvent(name, fieldsText, sourceHandle) {
        const e = decode(fieldsText);
        // Titanium's payload fields are the enumerable ones (JSON.stringify shows just them).
        Object.defineProperty(e, 'type', { value: name, writable: true });
        Object.defineProperty(e, 'bubbles', { value: true, writable: true });
        Object.defineProperty(e, 'cancelBubble', { value: false, writable: true });
        if (sourceHandle != null) {
            Object.defineProperty(e, 'source', { value: wrap(sourceHandle), writable: true });
        }
        return e;
    }

    // Python calls these: a listener gets its event; whatever it throws is reported, not raised.
    function deliver(fn, name, fieldsText, sourceHandle) {
        const e = makeEvent(name, fieldsText, sourceHandle);
        try {
            fn.call(e.source, e);
        } catch (err) {
            report(`a listener for '${name}'`, err);
        }
        return e.cancelBubble === true;
    }

    function invoke(fn, argsText, label) {
        try {
            fn(...decode(argsText));
        } catch (err) {
            report(label, err);
        }
    }

    // -- headless Titanium ------------------------------------------------------------------------

    // A JS-only event target for Ti.UI views and Ti.App.iOS's own events.
    class Emitter {
        constructor() {
            Object.defineProperty(this, '_listeners', { value: new Map() });
        }
        addEventListener(name, fn) {
            if (typeof fn !== 'function') {
                throw new Error(`'callback' must be a function (got ${typeof fn})`);
            }
            if (!this._listeners.has(name)) {
                this._listeners.set(name, new Set());
            }
            this._listeners.get(name).add(fn);
        }
        removeEventListener(name, fn) {
            const set = this._listeners.get(name);
            if (set !== undefined) {
                set.delete(fn);
            }
        }
        fireEvent(name, props) {
            const set = this._listeners.get(name);
            if (set === undefined) {
                return;
            }
            const e = Object.assign({}, props || {});
            Object.defineProperty(e, 'type', { value: name, writable: true });
            Object.defineProperty(e, 'source', { value: this, writable: true });
            for (const fn of Array.from(set)) {
                try {
                    fn.call(this, e);
                } catch (err) {
                    report(`a listener for '${name}'`, err);
                }
            }
        }
    }

    const views = []; // every view made, so a host can click a button by its title

    // An inert view: keeps its properties, takes any setX(v)/getX() and the view methods.
    function createView(kind, props) {
        const view = new Emitter();
        Object.defineProperty(view, 'apiName', { value: `Ti.UI.${kind}` });
        Object.defineProperty(view, 'children', { value: [], writable: true });
        Object.assign(view, props || {});
        views.push(view);
        return new Proxy(view, {
            get(target, prop, receiver) {
                if (prop in target || typeof prop === 'symbol') {
                    const v = target[prop];
                    return typeof v === 'function' ? v.bind(receiver) : v;
                }
                const accessor = /^(set|get)([A-Z].*)$/.exec(prop);
                if (accessor !== null) {
                    const key = accessor[2][0].toLowerCase() + accessor[2].slice(1);
                    return accessor[1] === 'set'
                        ? (value) => {
                              target[key] = value;
                          }
                        : () => target[key];
                }
                return VIEW_METHODS.has(prop) ? () => undefined : undefined;
            },
        });
    }

    const VIEW_METHODS = new Set([
        'animate', 'blur', 'focus', 'hide', 'show', 'removeAllChildren', 'appendSection',
        'deleteSectionAt', 'insertSectionAt', 'replaceSectionAt', 'scrollToItem', 'appendItems',
        'deleteItemsAt', 'insertItemsAt', 'replaceItemsAt', 'updateItemAt', 'setTitleControl',
    ]);

    Emitter.prototype.add = function (child) {
        this.children.push(child);
    };
    Emitter.prototype.remove = function (child) {
        this.children = this.children.filter((c) => c !== child);
    };
    Emitter.prototype.open = function () {
        // Titanium fires 'open' once the window is on screen, after the current code has run.
        const win = this;
        setTimeout(() => {
            win.fireEvent('open', {});
            if (win.window && typeof win.window.fireEvent === 'function') {
                win.window.fireEvent('open', {});
            }
        }, 0);
    };
    Emitter.prototype.close = function () {
        const win = this;
        setTimeout(() => win.fireEvent('close', {}), 0);
    };

    function click(title) {
        const buttons = views.filter((v) => v.apiName === 'Ti.UI.Button' && v.title === title);
        buttons.forEach((b) => b.fireEvent('click', { x: 0, y: 0 }));
        return [buttons.length, views.filter((v) => v.apiName === 'Ti.UI.Button').map((v) => v.title)];
    }

    const factories = {};
    for (const kind of [
        'Window', 'Button', 'ListView', 'ListSection', 'View', 'Label', 'TableView',
        'TableViewRow', 'TableViewSection', 'ScrollView', 'ImageView', 'TextField', 'TextArea',
        'Switch', 'Slider', 'ProgressBar', 'ActivityIndicator', 'AlertDialog', 'OptionDialog',
        'TabGroup', 'Tab',
    ]) {
        factories[`create${kind}`] = (props) => createView(kind, props);
    }

    // -- timers on the host's loop -------------------------------------------------------------

    function setTimeout(fn, delay, ...args) {
        return answer(py.timer(fn, Number(delay) || 0, false, encode(args)[0]));
    }
    function setInterval(fn, delay, ...args) {
        return answer(py.timer(fn, Number(delay) || 0, true, encode(args)[0]));
    }
    function clearTimer(id) {
        if (typeof id === 'number') {
            py.clearTimer(id);
        }
    }

    function log(level) {
        return (...parts) =>
            py.log(
                level,
                parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ')
            );
    }

    function setup(moduleHandle, propertiesHandle, filesystemHandle, appId) {
        const URLSession = wrap(moduleHandle, 'Modules.URLSession');
        const moduleEvents = new Set(answer(py.moduleEvents()));
        const appEvents = new Emitter();

        const API = {
            info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug'),
            trace: log('trace'), timestamp: log('info'),
            log: (level, ...parts) =>
                parts.length ? log(String(level))(...parts) : log('info')(level),
        };

        const iOS = {
            BACKGROUNDFETCHINTERVAL_MIN: 0,
            BACKGROUNDFETCHINTERVAL_NEVER: -1,
            USER_NOTIFICATION_TYPE_ALERT: 1,
            USER_NOTIFICATION_TYPE_BADGE: 2,
            USER_NOTIFICATION_TYPE_SOUND: 4,
            addEventListener(name, fn) {
                // The module's events reach Ti.App.iOS, as in Titanium; the launch events
                // (backgroundfetch, ...) are the host's own.
                if (moduleEvents.has(name)) {
                    addListener(moduleHandle, name, fn);
                } else {
                    appEvents.addEventListener(name, fn);
                }
            },
            removeEventListener(name, fn) {
                if (moduleEvents.has(name)) {
                    removeListener(moduleHandle, name, fn);
                } else {
                    appEvents.removeEventListener(name, fn);
                }
            },
            fireEvent(name, props) {
                if (moduleEvents.has(name)) {
                    URLSession.fireEvent(name, props || {});
                } else {
                    appEvents.fireEvent(name, props);
                }
            },
            endBackgroundHandler(handlerId) {
                URLSession.endBackgroundHandler(String(handlerId));
                API.debug(`background handler ${handlerId} ended`);
            },
            setMinimumBackgroundFetchInterval(seconds) {
                API.debug(`minimum background fetch interval: ${seconds}`);
            },
            registerUserNotificationSettings(settings) {
                API.debug(`user notification settings: ${JSON.stringify(settings)}`);
            },
            scheduleLocalNotification(props) {
                API.info(`[local notification] ${JSON.stringify(props || {})}`);
                return { cancel() {} };
            },
            cancelAllLocalNotifications() {},
            createUserNotificationCategory: (props) => Object.assign({}, props || {}),
        };

        const UI = Object.assign({}, factories, {
            FILL: 'fill', SIZE: 'auto', UNIT_DIP: 'dip',
            TEXT_ALIGNMENT_LEFT: 0, TEXT_ALIGNMENT_CENTER: 1, TEXT_ALIGNMENT_RIGHT: 2,
            PORTRAIT: 1, UPSIDE_PORTRAIT: 2, LANDSCAPE_LEFT: 3, LANDSCAPE_RIGHT: 4,
            LIST_ACCESSORY_TYPE_NONE: 0, LIST_ACCESSORY_TYPE_CHECKMARK: 1,
            LIST_ACCESSORY_TYPE_DETAIL: 2, LIST_ACCESSORY_TYPE_DISCLOSURE: 3,
            backgroundColor: 'white',
            iOS: Object.assign(
                {
                    ListViewStyle: { PLAIN: 0, GROUPED: 1, INSET_GROUPED: 2 },
                    ListViewCellSelectionStyle: { NONE: 0, BLUE: 1, GRAY: 2, DEFAULT: 3 },
                    ListViewScrollPosition: { NONE: 0, TOP: 1, MIDDLE: 2, BOTTOM: 3 },
                    TableViewStyle: { PLAIN: 0, GROUPED: 1 },
                    SystemButton: { DONE: 0, CANCEL: 1, REFRESH: 13, ADD: 4 },
                    SystemButtonStyle: { PLAIN: 0, BORDERED: 1, DONE: 2 },
                    StatusBar: { DEFAULT: 0, LIGHT_CONTENT: 1 },
                },
                {
                    createNavigationWindow: (props) => createView('iOS.NavigationWindow', props),
                }
            ),
        });

        const Ti = {
            API,
            UI,
            App: {
                id: appId,
                name: appId,
                Properties: wrap(propertiesHandle, 'Ti.App.Properties'),
                iOS,
                addEventListener: (name, fn) => appEvents.addEventListener(name, fn),
                removeEventListener: (name, fn) => appEvents.removeEventListener(name, fn),
                fireEvent: (name, props) => appEvents.fireEvent(name, props),
            },
            Filesystem: wrap(filesystemHandle, 'Ti.Filesystem'),
            Platform: { osname: 'headless', name: 'headless', locale: 'en' },
        };

        function require(id) {
            if (id === 'com.appcelerator.urlSession') {
                return URLSession;
            }
            throw new Error(
                `require('${id}'): no such module here; available: 'com.appcelerator.urlSession'`
            );
        }

        const console = { log: API.info, info: API.info, warn: API.warn, error: API.error,
            debug: API.debug };
        return {
            require, Ti, setTimeout, setInterval, console,
            clearTimeout: clearTimer, clearInterval: clearTimer,
            fireApp: (name, propsText) => appEvents.fireEvent(name, decode(propsText)),
        };
    }

    // The script's own top level: errors come back as text and stack, for the host to print.
    function runMain(fn, globals) {
        try {
            fn(globals.require, globals.Ti, globals.Ti, globals.setTimeout, globals.setInterval,
                globals.clearTimeout, globals.clearInterval, globals.console);
            return undefined;
        } catch (err) {
            const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
            return [text, err && err.stack ? String(err.stack) : ''];
        }
    }

    // jasmine-core (already evaluated: globalThis.jasmineRequire) booted on the host's timers,
    // its describe/it/expect made globals, a reporter that prints each spec and tells `done`.
    function bootJasmine(globals, done) {
        const G = globalThis;
        for (const name of ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval']) {
            G[name] = globals[name];
        }
        // jasmine's browser adapter listens on the global for errors: there are none to hear.
        G.addEventListener = G.addEventListener || function () {};
        G.removeEventListener = G.removeEventListener || function () {};
        G.queueMicrotask = G.queueMicrotask || ((fn) => Promise.resolve().then(fn));
        const jr = G.jasmineRequire;
        const jasmine = jr.core(jr);
        const env = jasmine.getEnv();
        Object.assign(G, jr.interface(jasmine, env));
        const failures = [];
        let passed = 0;
        env.addReporter({
            specDone(r) {
                if (r.status === 'failed') {
                    const why = r.failedExpectations.map((f) => `    ${f.message}\n${f.stack || ''}`);
                    failures.push(`${r.fullName}\n${why.join('\n')}`);
                    py.log('error', `FAILED ${r.fullName}`);
                } else {
                    passed += r.status === 'passed' ? 1 : 0;
                    py.log('info', `${r.status} ${r.fullName}`);
                }
            },
            jasmineDone(r) {
                done(String(r.overallStatus), passed, failures);
            },
        });
        return () => {
            env.execute();
        };
    }

    // A promise job that threw (or a rejection nobody handled), as the host's loop saw it.
    function rejected(err) {
        report('a promise job', err);
    }

    return { setup, deliver, invoke, click, runMain, makeEvent, bootJasmine, rejected };
})
