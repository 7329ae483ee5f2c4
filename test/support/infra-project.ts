import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, type Environment } from 'aws-cdk-lib';
import { loadConfig } from '../../infra/config.ts';
import { stackName } from '../../infra/outputs.ts';
import { BackstopStack } from '../../infra/stack.ts';
import { KEYLESS_VENUES, VENUE } from '../../shared/adapters/venue/index.ts';

/**
 * What the infra tests build a stack from, as `cdk synth` does (infra/app.ts): cdk.json's context and the venue the
 * functions' code trades on. An integrator's VENUE reads a key and cdk.json names its secret (docs/VENUE.md, step 5):
 * the tests build that project's stack, and the venue's key paths run on both kinds of project whatever VENUE is.
 */

export const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

/** cdk.json's context: CDK's feature flags, and whatever `backstop:` keys the project keeps there. */
export const cdkJsonContext = JSON.parse(readFileSync(join(projectRoot, 'cdk.json'), 'utf8'))
  .context as Record<string, unknown>;

export interface Project {
  readonly name: string;
  /** The venue the functions' code trades on (BackstopStack's `venue`: VENUE in the app). */
  readonly venue: string;
  readonly context: Readonly<Record<string, unknown>>;
}

const VENUE_KEY_CONTEXT = ['backstop:venueSecret', 'backstop:venueSecretKmsKey'];
const withoutVenueKey = (context: Readonly<Record<string, unknown>>) =>
  Object.fromEntries(Object.entries(context).filter(([key]) => !VENUE_KEY_CONTEXT.includes(key)));

/** This project, as `cdk synth` builds it: cdk.json's context, VENUE. */
export const THIS_PROJECT: Project = {
  name: `this project (${VENUE})`,
  venue: VENUE,
  context: cdkJsonContext,
};

/** A project on the simulated venue, which reads no key, naming no secret (whatever cdk.json names). */
export const KEYLESS_PROJECT: Project = {
  name: `a venue that reads no key (${KEYLESS_VENUES[0]}), no secret named`,
  venue: KEYLESS_VENUES[0]!,
  context: withoutVenueKey(cdkJsonContext),
};

/** An integrator's project: a venue that reads a key (any but KEYLESS_VENUES), its secret named in cdk.json. */
export const KEYED_PROJECT: Project = {
  name: 'a venue that reads a key (my-exchange), its secret in cdk.json',
  venue: 'my-exchange',
  context: { ...withoutVenueKey(cdkJsonContext), 'backstop:venueSecret': 'backstop/my-exchange-key' },
};

/** Both kinds of project: the venue's key paths run on each. */
export const PROJECTS: readonly Project[] = [KEYLESS_PROJECT, KEYED_PROJECT];

/**
 * `project`'s stack, with `ours` over its context (a key given as undefined is left out: `'backstop:venueSecret':
 * undefined` names no secret), not bundled unless `ours` says so, synthesized into `outdir`.
 */
export function buildStack(
  project: Project,
  ours: Readonly<Record<string, unknown>>,
  options: { readonly outdir: string; readonly env?: Environment },
) {
  const context = Object.fromEntries(
    Object.entries({ ...project.context, 'aws:cdk:bundling-stacks': [], ...ours }).filter(
      ([, value]) => value !== undefined,
    ),
  );
  const app = new App({ context, outdir: options.outdir });
  const config = loadConfig(app.node.getAllContext());
  const stack = new BackstopStack(app, stackName(config.stage), {
    config,
    projectRoot,
    venue: project.venue,
    ...(options.env ? { env: options.env } : {}),
  });
  return { app, stack, config };
}

const synthDirs: string[] = [];

/** A new directory for a synth's output, removed by removeSynthDirs (the caller's afterAll). */
export function synthDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  synthDirs.push(dir);
  return dir;
}

export function removeSynthDirs(): void {
  for (const dir of synthDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
