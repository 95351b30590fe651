// One spec that passes and one that fails: the run's exit status must say so.
const URLSession = require('com.appcelerator.urlSession');

describe('a failing suite', () => {
    it('passes', () => expect(URLSession.moduleId).toBe('com.appcelerator.urlSession'));
    it('fails', () => expect(URLSession.moduleId).toBe('ti.urlsession'));
});
