/**
 * Something written in the transaction of every group commit (sidecars, the ledger, clock
 * epochs); returns what to do once it is durable. Its own file, so the parts that provide hooks
 * and the commit queue that runs them import a type, not each other.
 */
export interface CommitHook {
  inCommit(): (() => void) | null;
}
