import { describe, expect, it } from 'vitest';
import { amzDateOf, signV4 } from '../../cli/ops/caller.ts';

/** The CLI signs its one STS call itself (cli/ops/caller.ts): checked against AWS's published example. */
describe('signV4', () => {
  it("gives the signature of AWS's Signature Version 4 example (IAM ListUsers, 30 August 2015)", () => {
    const headers = signV4({
      method: 'GET',
      host: 'iam.amazonaws.com',
      path: '/',
      query: 'Action=ListUsers&Version=2010-05-08',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: '',
      region: 'us-east-1',
      service: 'iam',
      credentials: {
        accessKeyId: 'AKIDEXAMPLE',
        secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      },
      amzDate: amzDateOf(new Date('2015-08-30T12:36:00Z')),
    });
    expect(headers).toEqual({
      'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
      'x-amz-date': '20150830T123600Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, ' +
        'SignedHeaders=content-type;host;x-amz-date, ' +
        'Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    });
  });

  it('signs a session token with the rest', () => {
    const headers = signV4({
      method: 'POST',
      host: 'sts.eu-west-1.amazonaws.com',
      path: '/',
      query: '',
      headers: {},
      body: 'Action=GetCallerIdentity&Version=2011-06-15',
      region: 'eu-west-1',
      service: 'sts',
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' },
      amzDate: '20261206T085500Z',
    });
    expect(headers['x-amz-security-token']).toBe('token');
    expect(headers.authorization).toContain('SignedHeaders=host;x-amz-date;x-amz-security-token,');
  });
});
