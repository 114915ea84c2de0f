// Package quota owns the quota side of a resize: Nova's resize quota deltas
// and a ledger of limits, usage and reservations that cannot leak.
//
// # Arithmetic
//
// ResizeQuotaDelta is Nova's resize_quota_delta(new, old, sense, compare):
// for cores (flavor vcpus), ram (memory_mb) and, on request, disk_gb
// (root_gb + ephemeral_gb), d = sense × (new − old), kept only when
// compare × d > 0. Its three uses:
//
//   - UpsizeDelta (+1, +1): what grows, reserved at resize and committed when
//     the destination finishes (finish_resize);
//   - DownsizeDelta (+1, −1): what shrinks, reserved at confirm and committed
//     when the source is cleaned up;
//   - ReverseUpsizeDelta (−1, −1): what grew, given back at revert and
//     committed when the revert finishes.
//
// A cold migration keeps the flavor and reserves nothing. While a resize
// waits in VERIFY_RESIZE the instance is charged max(old, new) per resource;
// a confirm leaves it charged new, a revert old, and reverting a downsize
// needs no delta because the larger old size was never released. With
// 2 vCPU/4096 MB → 4 vCPU/2048 MB the resize reserves cores +2, the confirm
// gives back ram −2048 and a revert would give back cores −2.
//
// # Ledger
//
// A Ledger keeps, per project and per user within a project, a limit
// (Unlimited = −1), in_use and reserved for each Resource. Reserve checks
// in_use + reserved + delta ≤ limit for every positive delta in both scopes,
// all resources at once: either the whole request is reserved or nothing is
// and the error is an *OverQuotaError with each resource over, its limit,
// usage, reservation and headroom. Negative deltas follow Nova's database
// semantics: never refused, no change to reserved, applied to in_use at
// commit, never below zero (the clamped amount is kept in Counters.Unders
// and logged).
//
// A reservation id is "<unique part>/<project>": a string a flow stores with
// its migration, so that a process that resumes the flow after a crash can
// commit or roll back what an earlier process reserved. The unique part
// comes from an IDSource (by default random UUIDs from ChaCha8 generators
// seeded from crypto/rand; RandomIDs reads any io.Reader, SequentialIDs
// counts, for tests); time comes from an injected clock.
//
// # Why it cannot leak
//
// Nova's reservations leaked whenever a failure skipped both commit and
// rollback, and usage drifted until an operator ran quota_usage_refresh.
// Here every reservation is in exactly one state, and the only ways out of
// pending are Commit, Rollback and expiry, each of which releases the
// reservation's share of reserved exactly once, inside the same store
// transaction that changes its state:
//
//   - a step that succeeds commits; a step that fails rolls back;
//   - a retried Commit or Rollback finds the reservation settled the same
//     way, succeeds and changes nothing, so a step retried after a crash
//     never counts twice; the opposite step gets ErrAlreadyCommitted or
//     ErrAlreadyRolledBack, and either gets ErrReservationExpired when
//     expiry settled it first (a rollback may treat that as its own);
//   - a reservation nobody settles is rolled back by Expire, or by the
//     Commit or Rollback that finds it older than the maximum age (Nova's
//     reservation_expire, 24 hours by default);
//   - Reconcile recounts in_use from the instances the caller passes and
//     reserved from the pending reservations, reports every drift and
//     corrects it: the safety net for usage changed outside the ledger.
//
// So reserved always equals the sum of the positive deltas of the pending
// reservations, and in_use the sum of the committed deltas (less anything a
// negative delta would have taken below zero, which Counters.Unders keeps).
//
// # Store
//
// The ledger keeps its records behind Store, a three-method interface whose
// Update is one transaction on one project. MemStore, the default, keeps
// them in memory with one lock per project, so goroutines working on
// different projects do not wait for each other. A durable store only has
// to load a ProjectQuota, call the function and save it on success.
//
// The package does no I/O of its own and depends on no other xenflow package;
// callers convert their flavors to Flavor.
package quota
