// A jasmine spec for com.appcelerator.urlSession in the style of the module's own unit specs,
// run by `urlsession run --jasmine` with jasmine-core from npm booted in the engine.
// HOST is mapped to the local test server by the test that runs this file.
const URLSession = require('com.appcelerator.urlSession');
const HOST = 'https://spec.test/';

describe('com.appcelerator.urlSession', () => {
    it('can be required', () => {
        expect(URLSession).toBeDefined();
        expect(URLSession.moduleId).toBe('com.appcelerator.urlSession');
        expect(URLSession.apiName).toBe('Modules.URLSession');
    });

    describe('deprecated entry points', () => {
        for (const name of ['finishTasksAndInvalidate', 'invalidateAndCancel',
            'backgroundDownloadTaskWithURL', 'createURLSession',
            'createURLSessionBackgroundConfiguration']) {
            it(`#${name}() is a function`, () => {
                expect(URLSession[name]).toEqual(jasmine.any(Function));
            });
        }
    });

    describe('#createSessionConfiguration()', () => {
        it('makes a default configuration from properties', () => {
            const cfg = URLSession.createSessionConfiguration({ timeoutIntervalForRequest: 7 });
            expect(cfg.timeoutIntervalForRequest).toBe(7);
            expect(cfg.identifier).toBeNull();
        });

        it('throws an Error naming a bad argument', () => {
            expect(() => URLSession.createSessionConfiguration({ timeoutIntervalForRequest: -1 }))
                .toThrowError(Error, /timeoutIntervalForRequest/);
        });
    });

    describe('Session', () => {
        let session;
        beforeEach(() => {
            session = URLSession.createSession({
                configuration: URLSession.createSessionConfiguration({ type: 'ephemeral' }),
            });
        });
        afterEach(() => session.invalidateAndCancel());

        it('refuses a URL that is not http(s)', () => {
            expect(() => session.dataTask({ url: 'ftp://example.com/' }))
                .toThrowError("'url' must be an http(s) URL (got 'ftp://example.com/')");
        });

        it('runs a data task and reports it on the session', (done) => {
            session.addEventListener('sessioncompleted', (e) => {
                expect(e.success).toBe(true);
                expect(e.statusCode).toBe(200);
                expect(JSON.parse(e.responseText).method).toBe('POST');
                expect(e.source.taskIdentifier).toBe(id);
                done();
            });
            const id = session.dataTask({ url: HOST + 'echo', method: 'POST', data: 'hi' });
            expect(typeof id).toBe('string');
        });

        it('hands a download over as a Blob', (done) => {
            session.addEventListener('downloadcompleted', (e) => {
                expect(e.data.length).toBe(2048);
                expect(typeof e.data.nativePath).toBe('string');
                done();
            });
            session.downloadTask({ url: HOST + 'bytes/2048' });
        });
    });
});
