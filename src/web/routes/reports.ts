// GET /admin/reports (staff): the bursar's totals for a range of days in the library's time zone, as a page or,
// with format=csv, as a streamed CSV. The range check and the sums are src/jobs/reports.ts; this only answers.

import { stringify } from 'csv-stringify'
import type { FastifyPluginAsync } from 'fastify'
import { Readable } from 'node:stream'
import { today } from '../../jobs/dates.ts'
import { BadRange, buildReport, reportCsvRows, reportDays } from '../../jobs/reports.ts'
import { badInputPage } from '../plugins/app/error-handler.ts'
import { reportPage } from '../views/reports.ts'

const text = { type: 'string' } as const
const REPORT_QUERY = { type: 'object', properties: { from: text, to: text, format: { type: 'string', enum: ['html', 'csv'] } } } as const

const BAD_RANGE = {
  heading: 'Choose a range of days',
  message: 'Give two days like 2026-10-01 and 2026-10-31, the first not after the second, at most a year apart.'
}

interface ReportRoute { Querystring: { from?: string, to?: string, format?: 'html' | 'csv' } }

const reports: FastifyPluginAsync = async (fastify) => {
  const { config, ledger } = fastify

  fastify.get<ReportRoute>('/admin/reports', {
    config: { access: 'admin', root: '../', badInput: BAD_RANGE },
    schema: { querystring: REPORT_QUERY }
  }, async (request, reply) => {
    const zone = config.timeZone
    // By default the month so far, in the library's zone
    const now = today(zone)
    const from = request.query.from ?? `${now.slice(0, 8)}01`
    const to = request.query.to ?? now
    try {
      reportDays(from, to)
    } catch (error) {
      if (!(error instanceof BadRange)) throw error
      request.log.info({ event: 'admin.report_refused', from, to, reason: error.message }, `report refused: ${error.message}`)
      return badInputPage(config, reply, { heading: BAD_RANGE.heading, message: `${error.message}. ${BAD_RANGE.message}` })
    }
    if (request.query.format === 'csv') {
      const by = request.patron?.username ?? '?'
      request.log.info({ event: 'admin.report_export', from, to, by }, `${by} downloaded the report ${from}..${to} as CSV`)
      const rows = Readable.from(reportCsvRows(ledger, from, to, zone), { objectMode: true })
      const csv = stringify({ record_delimiter: 'windows' })
      rows.on('error', (error) => csv.destroy(error))
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="payments-report-${from}-to-${to}.csv"`)
        .header('cache-control', 'no-store')
        .header('x-content-type-options', 'nosniff')
        .send(rows.pipe(csv))
    }
    const report = await buildReport(ledger, from, to, zone)
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(reportPage(config, report))
  })
}

export default reports
