import type { Logger } from 'pino';
import type { Database } from './database.js';
import { migrate, type Migration } from './migrations.js';
import { openPg } from './pg-driver.js';
import { openSqlite } from './sqlite-driver.js';
import { AccountRepository } from './repositories/accounts.js';
import { PresenceRuleRepository } from './repositories/presence-rules.js';
import { ListSubscriptionRepository, ResourceListRepository } from './repositories/resource-lists.js';
import { PublicationRepository } from './repositories/publications.js';
import { RegistrationRepository } from './repositories/registrations.js';
import { RoomRepository } from './repositories/rooms.js';
import { StoredMessageRepository } from './repositories/stored-messages.js';
import { SubscriptionRepository } from './repositories/subscriptions.js';
import { createSoftStateWriter, type SoftStateKinds } from './soft-state.js';
import type { ScheduleFn, WriteBehind } from './write-behind.js';

export interface OpenDatabaseOptions {
  /** PostgreSQL URL (DATABASE_URL, store.url): when given, the pg driver is used. */
  readonly url?: string;
  /** SQLite data directory (store.dataDir); in memory when neither is given. */
  readonly dataDir?: string;
  /** PostgreSQL schema to work in (tests); ignored by SQLite. */
  readonly schema?: string;
  readonly logger: Logger;
}

/** PostgreSQL when a URL is given, else embedded SQLite in `dataDir` (DESIGN: `npm start` needs no database server). */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (options.url) {
    return openPg({ url: options.url, logger: options.logger, ...(options.schema !== undefined ? { schema: options.schema } : {}) });
  }
  return openSqlite({ logger: options.logger, ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}) });
}

export interface OpenStoreOptions extends OpenDatabaseOptions {
  /** Write-behind window (store.flushWindowMs, default 1000). */
  readonly flushWindowMs?: number;
  /** Soft-state keys waiting at most (default 100,000). */
  readonly maxPending?: number;
  /** Timer source for the write-behind (default setTimeout). */
  readonly schedule?: ScheduleFn;
  /** Apply pending migrations on open (default true). */
  readonly migrate?: boolean;
}

/** The store as the composition root wires it: database, migrations, repositories, write-behind. */
export interface Store {
  readonly db: Database;
  /** Migrations applied by this open. */
  readonly migrated: readonly Migration[];
  readonly accounts: AccountRepository;
  readonly presenceRules: PresenceRuleRepository;
  /** Users' resource lists (RFC 4826), served by the RLS. */
  readonly resourceLists: ResourceListRepository;
  /** The lists of live list subscriptions made with a list in the SUBSCRIBE (RFC 5367). */
  readonly listSubscriptions: ListSubscriptionRepository;
  readonly storedMessages: StoredMessageRepository;
  readonly publications: PublicationRepository;
  readonly subscriptions: SubscriptionRepository;
  readonly registrations: RegistrationRepository;
  /** Chat rooms (issue 22). */
  readonly rooms: RoomRepository;
  readonly softState: WriteBehind<SoftStateKinds>;
  /** Flushes the soft state, then closes the database. */
  close(): Promise<void>;
}

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const db = await openDatabase(options);
  let migrated: Migration[] = [];
  try {
    if (options.migrate !== false) migrated = await migrate(db, { logger: options.logger });
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  const softState = createSoftStateWriter(db, {
    logger: options.logger,
    ...(options.flushWindowMs !== undefined ? { windowMs: options.flushWindowMs } : {}),
    ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
    ...(options.schedule !== undefined ? { schedule: options.schedule } : {}),
  });
  return {
    db,
    migrated,
    accounts: new AccountRepository(db),
    presenceRules: new PresenceRuleRepository(db),
    resourceLists: new ResourceListRepository(db),
    listSubscriptions: new ListSubscriptionRepository(db),
    storedMessages: new StoredMessageRepository(db),
    publications: new PublicationRepository(db, softState.queue('publication')),
    subscriptions: new SubscriptionRepository(db, softState.queue('subscription')),
    registrations: new RegistrationRepository(db, softState.queue('registration')),
    rooms: new RoomRepository(db),
    softState,
    close: async () => {
      try {
        await softState.stop();
      } catch (err) {
        // The database is gone: what was queued is lost; clients repair it on their next refresh.
        options.logger.error({ err, pending: softState.stats().pending }, 'store: final soft-state flush failed');
      } finally {
        await db.close();
      }
    },
  };
}
