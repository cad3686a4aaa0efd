#!/usr/bin/env node
// The command line's entry point: it checks the runtime before anything else is loaded, since
// an older Node.js would fail on a missing built-in module (node:sqlite, for one) with an error
// that names nothing a user can act on. Then the command line itself (main.ts) runs.
const MIN_MAJOR = 24;
const major = Number(process.versions.node.split('.')[0]);
if (major < MIN_MAJOR) {
  console.error(
    `simple-presence needs Node.js ${MIN_MAJOR} or newer, and this is ${process.version}. ` +
      'npm install brings Node.js 24 with the package (node_modules/.bin/node, used by npm start and the simple-presence command); ' +
      'elsewhere install Node.js 24 LTS (https://nodejs.org, or your system\'s packages).',
  );
  process.exit(2);
}
await import('./main.js');
