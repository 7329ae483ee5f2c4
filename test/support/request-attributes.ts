/**
 * The attribute names a DynamoDB request names, as IAM's dynamodb:Attributes sees them (AWS's fine-grained access
 * control: those read, written, or evaluated in a condition, the key's included): its key or item, and the top-level
 * attribute of every path its expressions name (`a.b[0]` is `a`), through ExpressionAttributeNames.
 */

const FUNCTIONS = new Set([
  'attribute_exists',
  'attribute_not_exists',
  'attribute_type',
  'begins_with',
  'contains',
  'size',
  'if_not_exists',
  'list_append',
]);
const KEYWORDS = new Set(['and', 'or', 'not', 'between', 'in', 'set', 'remove', 'add', 'delete']);
const EXPRESSIONS = [
  'UpdateExpression',
  'ConditionExpression',
  'KeyConditionExpression',
  'FilterExpression',
  'ProjectionExpression',
] as const;

/** The top-level attribute names `expression` refers to (`names`: its ExpressionAttributeNames). */
function expressionAttributes(expression: string, names: Readonly<Record<string, string>> = {}): string[] {
  const found: string[] = [];
  // A name, not a value (:v), not a nested segment (after '.'), not a function (before '(').
  for (const m of expression.matchAll(/(^|[^.:#\w])(#?[A-Za-z_][\w]*)(?=\s*(\()?)/g)) {
    const token = m[2]!;
    if (m[3] !== undefined && FUNCTIONS.has(token)) continue;
    if (!token.startsWith('#') && KEYWORDS.has(token.toLowerCase())) continue;
    if (token.startsWith('#')) {
      const name = names[token];
      if (name === undefined) throw new Error(`expression ${expression} names ${token}, not in its names`);
      found.push(name);
    } else found.push(token);
  }
  return found;
}

/** Every attribute a PutItem, UpdateItem, GetItem, DeleteItem or ConditionCheck input names, sorted, once each. */
export function requestAttributes(input: Readonly<Record<string, unknown>>): string[] {
  const names = (input.ExpressionAttributeNames as Record<string, string> | undefined) ?? {};
  const found = new Set<string>([
    ...Object.keys((input.Key as object | undefined) ?? {}),
    ...Object.keys((input.Item as object | undefined) ?? {}),
    // The legacy parameters name attributes as keys.
    ...Object.keys((input.AttributeUpdates as object | undefined) ?? {}),
    ...Object.keys((input.Expected as object | undefined) ?? {}),
    ...((input.AttributesToGet as string[] | undefined) ?? []),
  ]);
  for (const field of EXPRESSIONS) {
    const expression = input[field];
    if (typeof expression === 'string')
      for (const name of expressionAttributes(expression, names)) found.add(name);
  }
  // A name given is a name used (DynamoDB refuses an unused one), so none is missed by the parse.
  for (const name of Object.values(names)) found.add(name);
  return [...found].sort();
}
