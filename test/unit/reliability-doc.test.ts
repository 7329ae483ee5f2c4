import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** The ids of docs/RELIABILITY.md's table of what happened (`| id | where | what happened | status |`), in order. */
function findingIds(): string[] {
  const lines = readFileSync(new URL('../../docs/RELIABILITY.md', import.meta.url), 'utf8').split('\n');
  const header = lines.findIndex((l) => l.startsWith('| id | where | what happened | status |'));
  expect(header).toBeGreaterThanOrEqual(0);
  const ids: string[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    ids.push(line.split('|')[1]!.trim());
  }
  return ids;
}

describe("docs/RELIABILITY.md's findings (review41-duplicate-rows)", () => {
  // Session 41's merges left an earlier text of two rows beside the later one, contradicting it.
  it('names each finding once', () => {
    const ids = findingIds();
    expect(ids.length).toBeGreaterThan(100);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  });

  // Session 51's first rows were appended after the paragraph that closes the last table, where they render as text
  // (tidy51-rows-outside-table).
  it('keeps every finding in a table: a row follows a row, its header or its separator', () => {
    const lines = readFileSync(new URL('../../docs/RELIABILITY.md', import.meta.url), 'utf8').split('\n');
    const loose = lines.flatMap((line, i) =>
      /^\| [a-z0-9-]+ \|/.test(line) && !lines[i - 1]?.startsWith('|') && !/^\|\s*-/.test(lines[i + 1] ?? '')
        ? [`line ${i + 1}: ${line.slice(0, 60)}`]
        : [],
    );
    expect(loose).toEqual([]);
  });

  // Sessions 50 to 52 put 138 findings at the end of the file, in the security table (`| requirement | test | what it
  // checks |`), where they read as requirements and the duplicate check above did not see them (tidy52-rows-in-findings).
  it('keeps every finding in the table of findings, none in another table', () => {
    const lines = readFileSync(new URL('../../docs/RELIABILITY.md', import.meta.url), 'utf8').split('\n');
    const findings = new Set(findingIds());
    const elsewhere = lines.filter(
      (line) => /^\| [a-z0-9]+(-[a-z0-9]+)+ \|/.test(line) && !findings.has(line.split('|')[1]!.trim()),
    );
    expect(elsewhere.map((line) => line.slice(0, 60))).toEqual([]);
  });
});
