// The daily fines file (fines-DATE.csv): written by export:fines, read back by export:holds --fines.

export const FINES_HEADER = ['CAMPUS_ID', 'ALMA_PRIMARY_ID', 'BALANCE', 'CURRENCY', 'AS_OF_DATE'] as const

export function finesFileName (date: string): string {
  return `fines-${date}.csv`
}
