import { RULE_KEY } from './grammar.js';
import { configJsonSchema } from './schema.js';

/*
 * The README's table of config keys and their bounds, generated from the schema's JSON Schema so
 * the bounds are written once. `scripts/gen-config-docs.ts` writes it between the markers below;
 * a unit test fails when README.md and this output differ.
 */

export const DOCS_BEGIN = '<!-- config-bounds:begin (generated from src/config/schema.ts by scripts/gen-config-docs.ts; do not edit) -->';
export const DOCS_END = '<!-- config-bounds:end -->';

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  pattern?: string;
  [RULE_KEY]?: string;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');
const code = (v: unknown): string => `\`${typeof v === 'string' ? JSON.stringify(v) : String(v)}\``;

function typeOf(s: JsonSchema): string {
  if (s.anyOf) return [...new Set(s.anyOf.map(typeOf))].join(' or ');
  if (s.const !== undefined) return typeof s.const === 'number' ? 'integer' : typeof s.const;
  if (s.type === 'array') return s.items?.type === 'object' ? 'tables' : `array of ${s.items ? typeOf(s.items) : '?'}`;
  return s.type ?? '?';
}

function boundsOf(s: JsonSchema): string[] {
  const out: string[] = [];
  const choices = s.enum ?? (s.anyOf?.every((a) => a.const !== undefined) ? s.anyOf.map((a) => a.const) : undefined);
  if (choices) out.push(`one of ${choices.map(code).join(', ')}`);
  if (s.const !== undefined) out.push(`only ${code(s.const)}`);
  // A bare integer's maximum is the safe-integer one zod adds: not a bound worth a line.
  const maximum = s.maximum === Number.MAX_SAFE_INTEGER ? undefined : s.maximum;
  if (s.minimum !== undefined || maximum !== undefined) out.push(maximum === undefined ? `≥ ${s.minimum}` : s.minimum === undefined ? `≤ ${maximum}` : `${s.minimum}–${maximum}`);
  if (s[RULE_KEY]) out.push(s[RULE_KEY]);
  else {
    if (s.minLength !== undefined && s.minLength === s.maxLength) out.push(`exactly ${s.minLength} character${s.minLength === 1 ? '' : 's'}`);
    else if (s.minLength !== undefined || s.maxLength !== undefined) out.push(s.maxLength === undefined ? `at least ${s.minLength} character${s.minLength === 1 ? '' : 's'}` : `${s.minLength ?? 0}–${s.maxLength} characters`);
    if (s.pattern) out.push(`matches \`${s.pattern}\``);
  }
  if (s.type === 'array') {
    if (s.minItems) out.push(`at least ${s.minItems}`);
    if (s.items && s.items.type !== 'object') out.push(...boundsOf(s.items).map((b) => `each: ${b}`));
  }
  return out;
}

function rows(s: JsonSchema, path: string, out: string[]): void {
  for (const [key, child] of Object.entries(s.properties ?? {})) {
    const p = path ? `${path}.${key}` : key;
    const isTable = child.type === 'object' || (child.type === 'array' && child.items?.type === 'object');
    if (path || !isTable) {
      const dflt = child.default === undefined || (typeof child.default === 'object' && child.default !== null) ? '' : code(child.default);
      if (!isTable) out.push(`| \`${p}\` | ${typeOf(child)} | ${cell(dflt)} | ${cell(boundsOf(child).join('; '))} |`);
    }
    if (child.type === 'object') rows(child, p, out);
    if (child.type === 'array' && child.items?.type === 'object') rows(child.items, `${p}[]`, out);
  }
}

/** The Markdown table of every config key: type, default and bounds. */
export function configDocsMarkdown(): string {
  const out = ['| key | type | default | bounds |', '| --- | --- | --- | --- |'];
  rows(configJsonSchema() as JsonSchema, '', out);
  return `${out.join('\n')}\n`;
}

/** README text with the generated table put between the markers (which must be there). */
export function spliceConfigDocs(readme: string, table: string): string {
  const begin = readme.indexOf(DOCS_BEGIN);
  const end = readme.indexOf(DOCS_END);
  if (begin < 0 || end < begin) throw new Error(`README.md lacks the markers ${DOCS_BEGIN} … ${DOCS_END}`);
  return `${readme.slice(0, begin + DOCS_BEGIN.length)}\n${table}${readme.slice(end)}`;
}
