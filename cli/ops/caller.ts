import { createHash, createHmac } from 'node:crypto';
import type { AwsClients } from '../../shared/adapters/aws/index.ts';

/**
 * Who the CLI's credentials are: STS GetCallerIdentity's ARN, journaled with the fund movements the operator makes
 * (`fund deposit|withdraw`), which write the ledger directly under those credentials. @aws-sdk/client-sts is not a
 * dependency (session 41 could not add one): the one call is a SigV4-signed Query request of its own, signed with
 * the credentials and region the CLI's DynamoDB client resolved, sent to the target's endpoint on an emulator.
 */
export async function callerArn(clients: AwsClients, timeoutMs = 10_000): Promise<string> {
  const region = await clients.dynamo.config.region();
  const credentials = await clients.dynamo.config.credentials();
  const url = new URL(clients.config.endpoint ?? `https://sts.${region}.amazonaws.com/`);
  const body = 'Action=GetCallerIdentity&Version=2011-06-15';
  const headers = signV4({
    method: 'POST',
    host: url.host,
    path: url.pathname || '/',
    query: '',
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body,
    region,
    service: 'sts',
    credentials,
    amzDate: amzDateOf(new Date()),
  });
  const response = await fetch(url, {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  if (!response.ok) {
    const code = /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1] ?? 'no error code';
    throw new Error(`sts/GetCallerIdentity: HTTP ${response.status} (${code})`);
  }
  const arn = /<Arn>([^<]{1,2048})<\/Arn>/.exec(text)?.[1];
  if (arn === undefined) throw new Error('sts/GetCallerIdentity: no Arn in the answer');
  return arn;
}

/** 20150830T123600Z */
export const amzDateOf = (at: Date): string =>
  at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');

const sha256 = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer =>
  createHmac('sha256', key).update(data, 'utf8').digest();

export interface SignV4Input {
  readonly method: string;
  readonly host: string;
  readonly path: string;
  /** The canonical query string (its parameters sorted and encoded already). */
  readonly query: string;
  /** Lower-case names; signed with host and x-amz-date (and x-amz-security-token, with a session token). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly region: string;
  readonly service: string;
  readonly credentials: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  readonly amzDate: string;
}

/** The request's headers with AWS Signature Version 4's (x-amz-date, the token if any, authorization). */
export function signV4(input: SignV4Input): Record<string, string> {
  const { credentials, amzDate } = input;
  const headers: Record<string, string> = {
    ...input.headers,
    host: input.host,
    'x-amz-date': amzDate,
    ...(credentials.sessionToken ? { 'x-amz-security-token': credentials.sessionToken } : {}),
  };
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonical = [
    input.method,
    input.path,
    input.query,
    ...names.map((name) => `${name}:${headers[name]!.trim()}`),
    '',
    signedHeaders,
    sha256(input.body),
  ].join('\n');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${input.region}/${input.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(
    hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), input.region), input.service),
    'aws4_request',
  );
  const signature = createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
  const { host: _host, ...sent } = headers;
  return {
    ...sent,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}
