// Calendar days for the jobs: a YYYY-MM-DD day in a named time zone as an instant range, and the date formats
// PeopleSoft files use. Built on Intl so that no time-zone library is needed and DST days come out right.

/** Minutes east of UTC that `zone` is at `instant`. */
function offsetMinutes (zone: string, instant: number): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit'
  }).formatToParts(new Date(instant))
  const get = (type: string): number => Number(parts.find(p => p.type === type)?.value)
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'))
  return Math.round((asUtc - Math.floor(instant / 1000) * 1000) / 60000)
}

/** The instant at which the local day `date` (YYYY-MM-DD) begins in `zone`. */
export function startOfDay (date: string, zone: string): Date {
  const [y, m, d] = date.split('-').map(Number)
  const wall = Date.UTC(y, m - 1, d)
  // Two passes: the offset at the guess may differ from the offset at the answer around a DST change.
  let instant = wall - offsetMinutes(zone, wall) * 60000
  instant = wall - offsetMinutes(zone, instant) * 60000
  return new Date(instant)
}

export function nextDay (date: string): string {
  const d = new Date(`${date}T00:00:00Z`)
  d.setUTCDate(d.getUTCDate() + 1)
  return d.toISOString().slice(0, 10)
}

/** [start of `date`, start of the next day) in `zone`. */
export function dayRange (date: string, zone: string): { from: Date, to: Date } {
  return { from: startOfDay(date, zone), to: startOfDay(nextDay(date), zone) }
}

/** Today's date (YYYY-MM-DD) in `zone`. */
export function today (zone: string, now = new Date()): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now)
}

export function yesterday (zone: string, now = new Date()): string {
  const d = new Date(`${today(zone, now)}T00:00:00Z`)
  d.setUTCDate(d.getUTCDate() - 1)
  return d.toISOString().slice(0, 10)
}

export function isTimeZone (zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone }).format(0)
    return true
  } catch {
    return false
  }
}

export function processTimeZone (): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone
}

export type DateFormat = 'YYYY-MM-DD' | 'MMDDYYYY' | 'MM/DD/YYYY' | 'YYYYMMDD'
export const DATE_FORMATS: DateFormat[] = ['YYYY-MM-DD', 'MMDDYYYY', 'MM/DD/YYYY', 'YYYYMMDD']

/** Formats an ISO date (YYYY-MM-DD) as PeopleSoft files want it. */
export function formatDate (iso: string, format: DateFormat): string {
  if (iso === '') return ''
  const [y, m, d] = iso.split('-')
  switch (format) {
    case 'MMDDYYYY': return `${m}${d}${y}`
    case 'MM/DD/YYYY': return `${m}/${d}/${y}`
    case 'YYYYMMDD': return `${y}${m}${d}`
    default: return iso
  }
}
