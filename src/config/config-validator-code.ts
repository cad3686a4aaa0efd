import { Ajv } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';
import { schemaHash } from './config.js';

// CommonJS whose module.exports is the function itself (its types say `default`).
const standaloneCode = standalone as unknown as typeof standalone.default;

/**
 * The configuration schema's validator as a CommonJS module (Ajv's standalone code) that
 * also exports the schema's hash: config.ts loads it while the hash matches the schema file.
 */
export function configValidatorCode(schemaText: string): string {
  const ajv = new Ajv({ allErrors: true, strict: true, code: { source: true } });
  const code = standaloneCode(ajv, ajv.compile(JSON.parse(schemaText) as Record<string, unknown>));
  return `${code}\nmodule.exports.schemaHash = ${JSON.stringify(schemaHash(schemaText))};\n`;
}
