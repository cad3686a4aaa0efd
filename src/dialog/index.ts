export * from './dialog.js';
export * from './dialog-destination.js';
export * from './in-dialog-request.js';
