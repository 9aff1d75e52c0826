import { describe, expect, it } from 'vitest';
import { describeLocation, parseLocation } from '../../src/storage/url.js';

describe('parseLocation', () => {
  it('parses S3 locations with and without a scheme', () => {
    expect(parseLocation('s3:http://127.0.0.1:8080/bucket')).toEqual({
      kind: 's3',
      endpoint: 'http://127.0.0.1:8080',
      bucket: 'bucket',
      prefix: '',
    });
    expect(parseLocation('s3:https://s3.example.org/backups/hosts/web-1/')).toEqual({
      kind: 's3',
      endpoint: 'https://s3.example.org',
      bucket: 'backups',
      prefix: 'hosts/web-1',
    });
    expect(parseLocation('s3:object.cloud.example:8443/b-1/p')).toEqual({
      kind: 's3',
      endpoint: 'https://object.cloud.example:8443',
      bucket: 'b-1',
      prefix: 'p',
    });
    expect(parseLocation('S3:HTTP://[::1]:9000/bkt')).toMatchObject({ endpoint: 'http://[::1]:9000', bucket: 'bkt' });
    expect(parseLocation('s3:https://h/bkt//a///b')).toMatchObject({ prefix: 'a/b' });
  });

  it('parses local paths, relative ones made absolute', () => {
    expect(parseLocation('/srv/backup')).toEqual({ kind: 'local', path: '/srv/backup' });
    expect(parseLocation('local:/srv/backup/')).toEqual({ kind: 'local', path: '/srv/backup' });
    expect(parseLocation('repo', '/home/u')).toEqual({ kind: 'local', path: '/home/u/repo' });
    expect(parseLocation('./a/../b', '/x')).toEqual({ kind: 'local', path: '/x/b' });
    expect(parseLocation('local:rel', '/x')).toEqual({ kind: 'local', path: '/x/rel' });
  });

  it.each([
    ['ftp://x/y', /unsupported repository location/],
    ['s3:', /no bucket|expected/],
    ['s3:https://host', /no bucket/],
    ['s3:https://host/', /no bucket/],
    ['s3://bucket/prefix', /name the endpoint/],
    ['s3:ftp://host/bucket', /not http or https/],
    ['s3:https://key:secret@host/bucket', /credentials in the URL/],
    ['s3:https://host/bucket?x=1', /query/],
    ['s3:https://host/b', /not a valid bucket name/],
    ['s3:https://host/bad$name', /not a valid bucket name/],
    ['s3:https://host/bucket/../x', /"\.\."/],
    ['s3:host/bucket/a/./b', /"\.\."/],
    ['', /empty/],
    ['local:', /no path/],
  ])('rejects %s', (input, message) => {
    expect(() => parseLocation(input)).toThrow(message);
  });

  it('never echoes credentials in its errors', () => {
    expect(() => parseLocation('s3:https://AKIA:supersecret@host/bucket')).toThrow(/^(?!.*supersecret)/);
  });
});

describe('describeLocation', () => {
  it('renders locations for messages', () => {
    expect(describeLocation(parseLocation('s3:http://127.0.0.1:8080/b-1/p/q'))).toBe('s3:http://127.0.0.1:8080/b-1/p/q');
    expect(describeLocation(parseLocation('s3:h.example/bkt'))).toBe('s3:https://h.example/bkt');
    expect(describeLocation(parseLocation('/srv/r'))).toBe('/srv/r');
  });
});
