/**
 * Which users of our domain exist (RFC 3261 §10.3 step 5 and §21.4.5: 404 for a user who
 * does not). The hook the accounts/auth issue fills in.
 */
export interface UserDirectory {
  exists(aor: string): boolean | Promise<boolean>;
}

/** While authentication is off, every user of our domain counts as existing. */
export const OPEN_USER_DIRECTORY: UserDirectory = {
  exists: () => true,
};
