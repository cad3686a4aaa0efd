// Build step (npm run build): the configuration schema's validator as code beside config.js,
// so a start-up loads it instead of compiling the schema (Ajv's compile was ~100 ms of every
// start). config.ts uses it only while its hash matches schemas/config.schema.json.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_VALIDATOR_FILE, configSchemaText } from './config.js';
import { configValidatorCode } from './config-validator-code.js';

writeFileSync(join(dirname(fileURLToPath(import.meta.url)), CONFIG_VALIDATOR_FILE), configValidatorCode(configSchemaText()));
