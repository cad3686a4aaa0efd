// The store layer's public API (DESIGN: SQL over PostgreSQL or embedded SQLite).
export { StoreOpenError, dialectOf, isDataError, isUniqueViolation, sqlState } from './database.js';
export type { Database, Dialect, DriverName, Queryable, QueryResult } from './database.js';
export { openPg, type PgOptions } from './pg-driver.js';
export { openPglite, wrapPglite, type PgliteOptions } from './pglite-driver.js';
export { SQLITE_FILE, SqliteDatabase, isPgliteDataDir, openSqlite, type SqliteOptions } from './sqlite-driver.js';
export { DataDirLock, dataDirHolder, LOCK_FILE } from './data-dir-lock.js';
export { CLEAN_STOP_FILE, markCleanStop, takeCleanStop } from './clean-stop.js';
export { openDatabase, openStore, type OpenDatabaseOptions, type OpenStoreOptions, type Store } from './open-store.js';
export {
  MigrationError,
  defaultMigrationsDir,
  loadMigrations,
  migrate,
  migrationStatus,
  type AppliedMigration,
  type MigrateOptions,
  type Migration,
  type MigrationStatus,
} from './migrations.js';
export {
  WriteBehind,
  scheduleOn,
  type ColumnSpec,
  type KindQueue,
  type KindTypes,
  type ScheduleFn,
  type TableShape,
  type TableSpec,
  type TableSpecs,
  type WriteBehindOptions,
  type WriteBehindStats,
} from './write-behind.js';
export type { ColumnType } from './sql-text.js';
export { SOFT_STATE_TABLES, createSoftStateWriter, type SoftStateKinds } from './soft-state.js';
export * from './records.js';
export {
  AccountExistsError,
  AccountRepository,
  type AccountListOptions,
  type NewAccount,
  type PasswordHashes,
} from './repositories/accounts.js';
export { PresenceRuleRepository } from './repositories/presence-rules.js';
export { ListSubscriptionRepository, ResourceListRepository, type ListSubscriptionRecord, type ResourceListRecord } from './repositories/resource-lists.js';
export { PUBLICATIONS_TABLE, PublicationRepository } from './repositories/publications.js';
export { SUBSCRIPTIONS_TABLE, SubscriptionRepository } from './repositories/subscriptions.js';
export { REGISTRATIONS_TABLE, RegistrationRepository } from './repositories/registrations.js';
export { StoredMessageExistsError, StoredMessageRepository } from './repositories/stored-messages.js';
export { RoomRepository, type LoadedRoom, type RoomBanRecord, type RoomHistoryRecord, type RoomMemberRecord, type RoomRecord } from './repositories/rooms.js';
