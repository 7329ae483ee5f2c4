import { existsSync, readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

/**
 * What the tests holding a page of docs/ to the code share (feed-doc, venue-doc): reading the repository's files,
 * the page's TypeScript snippets, and the checks that what the page points to exists.
 */

/** A file of the repository, by its path from the root. */
export const repoFile = (file: string): string =>
  readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

/** The page's ```ts blocks, each without its fences. */
export const tsSnippets = (page: string): string[] =>
  [...page.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

/** Lines without their indent, and no blank ones: a snippet copied into a function keeps its text. */
export const lines = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

/**
 * How many of each a page names at the least: each check fails below it, so a pattern that stops matching (a page
 * rewritten, a link's form changed) does not pass on nothing.
 */
export interface PageReferenceCounts {
  /** Sections of DEPLOY.md or README, cited as `DEPLOY.md, "Section"`. */
  readonly sectionsAbove: number;
  /** Repository files by path (shared/…, test/…, …). */
  readonly filesAbove: number;
  /** Distinct finding ids, each a row of docs/RELIABILITY.md. */
  readonly findingsAbove: number;
}

/** Registers the three tests that what `page` points to exists: sections, files and findings. */
export function pageReferenceTests(page: string, counts: PageReferenceCounts): void {
  it('points to sections of DEPLOY.md and README that exist', () => {
    const pages = { 'DEPLOY.md': repoFile('docs/DEPLOY.md'), README: repoFile('README.md') };
    const refs = [
      ...page.replace(/\s+/g, ' ').matchAll(/(DEPLOY\.md|README)(?:\.md)?(?:\]\([^)]*\))?, "([^"]+)"/g),
    ];
    expect(refs.length).toBeGreaterThan(counts.sectionsAbove);
    for (const [, name, section] of refs) {
      const text = pages[name as keyof typeof pages];
      expect(
        [`**${section}**`, `## ${section}\n`].some((s) => text.includes(s)),
        `${name}, "${section}"`,
      ).toBe(true);
    }
  });

  it('names only files that exist', () => {
    const files = [
      ...page.matchAll(/\b(?:shared|test|infra|functions|cli|scripts|examples)\/[\w./-]+\.(?:ts|json|sh)\b/g),
    ];
    expect(files.length).toBeGreaterThan(counts.filesAbove);
    for (const [file] of files)
      expect(existsSync(new URL(`../../${file}`, import.meta.url)), file).toBe(true);
  });

  it('cites only findings docs/RELIABILITY.md has', () => {
    const reliability = repoFile('docs/RELIABILITY.md');
    const cited = new Set([...page.matchAll(/\b([a-z]+\d+[a-z]?-[a-z0-9-]+[a-z0-9])\b/g)].map((m) => m[1]!));
    expect(cited.size).toBeGreaterThan(counts.findingsAbove);
    for (const id of cited) expect(reliability, id).toMatch(new RegExp(`^\\| ${id} \\|`, 'm'));
  });
}
