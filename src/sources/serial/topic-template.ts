/**
 * A compiled topic template: "{name}" is the port name, any other "{field}" a top-level field of
 * the decoded object ("unknown" when absent or not a scalar). Substituted values cannot add topic
 * levels or wildcards: "/", "+" and "#" in them become "_".
 */
export function compileTopicTemplate(template: string, portName: string): (fields: Record<string, unknown> | null) => string {
  const withName = template.replaceAll('{name}', portName);
  if (!/\{[^}]+\}/.test(withName)) return () => withName;
  return (fields) =>
    withName.replace(/\{([^}]+)\}/g, (_, field: string) => {
      const v = fields?.[field];
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v).replace(/[/+#]/g, '_') || 'unknown';
      return 'unknown';
    });
}

/** The key from a decoded field: strings as they are, numbers and booleans as text; otherwise null. */
export function keyFromField(fields: Record<string, unknown> | null, field: string): string | null {
  const v = fields?.[field];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}
