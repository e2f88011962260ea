// Children the tests start with `node --import tsx` (the service, a job, the Alma sandbox) record no coverage of
// their own. tap follows children and records theirs too, but tsx's source maps are not its loader's (3 generated
// lines for src/app.ts where tap's give 135), and c8, merging the coverage files in a random order, collapsed a
// file to a statement or two whenever a tsx child's came first: the summary moved between 303 and 16,634
// statements from one run of the same code to the next.

/** Add to the environment of a child started with `node --import tsx`. */
export const TSX_CHILD_ENV = { _TAPJS_PROCESSINFO_COVERAGE_: '0' } as const
