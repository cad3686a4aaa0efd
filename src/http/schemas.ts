import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ajv, ValidateFunction } from 'ajv';
import { loadAjv, packageRoot } from '../config/config.js';

/** The folder of the request body schemas. */
export function httpSchemasDir(): string {
  return join(packageRoot(), 'schemas', 'http');
}

/**
 * JSON schemas of the HTTP request bodies (schemas/http/<name>.schema.json), compiled on
 * first use. `check` returns what is wrong, in words a client can act on, or undefined.
 */
export class SchemaValidators {
  /** Made at the first body checked: a start-up does not load Ajv. */
  private ajv: Ajv | undefined;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(private readonly dir: string = httpSchemasDir()) {}

  check(name: string, value: unknown): string | undefined {
    const validate = this.validator(name);
    if (validate(value)) return undefined;
    const msgs = (validate.errors ?? []).map((e) => {
      const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
      if (e.keyword === 'additionalProperties') {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        return `unknown field "${path ? path + '.' : ''}${extra}"`;
      }
      if (e.keyword === 'required') return `missing field "${path ? path + '.' : ''}${(e.params as { missingProperty: string }).missingProperty}"`;
      return `"${path || '(body)'}" ${e.message ?? 'is invalid'}`;
    });
    return `invalid request body: ${msgs.join('; ')}`;
  }

  private validator(name: string): ValidateFunction {
    let v = this.compiled.get(name);
    if (!v) {
      if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`bad schema name ${name}`);
      const schema = JSON.parse(readFileSync(join(this.dir, `${name}.schema.json`), 'utf8')) as Record<string, unknown>;
      this.ajv ??= new (loadAjv())({ allErrors: true, strict: true });
      v = this.ajv.compile(schema);
      this.compiled.set(name, v);
    }
    return v;
  }
}
