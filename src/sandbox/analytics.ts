// The Alma Analytics reports API in the Alma sandbox: GET /almaws/v1/analytics/reports with a path on the first
// page and a ResumptionToken after it, IsFinished on the last page, column headings (col_names) only on the
// first page as Alma does, and a fault to order: an Alma error answer on a chosen page.

import type { FastifyReply } from 'fastify'
import { type Cents, formatDecimal } from '../money.ts'
import { type AlmaSandbox, errorXml } from './alma.ts'
import { xmlEscape } from './xml-escape.ts'

export interface AnalyticsReport {
  /** headings of Column1..N (Column0 is Alma's meaningless constant) */
  columns: string[]
  rows: string[][]
}

export interface AnalyticsFault {
  /** 1-based page that fails */
  page: number
  status: number
  code: string
  message: string
}

/** A report computed when its first page is asked for (Analytics' own snapshot of the day), e.g. finesReport. */
export type LiveReport = () => AnalyticsReport

export interface AnalyticsSandbox {
  reports: Map<string, AnalyticsReport | LiveReport>
  /** rows per page regardless of `limit` (Alma pages in blocks of 25; tests want smaller reports) */
  rowsPerPage?: number
  fault?: AnalyticsFault
}

function schema (columns: string[]): string {
  const element = (name: string, heading: string): string =>
    `<xsd:element minOccurs="0" maxOccurs="1" name="${name}" type="xsd:string" saw-sql:type="varchar" saw-sql:columnHeading="${xmlEscape(heading)}"/>`
  return '<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:saw-sql="urn:saw-sql" targetNamespace="urn:schemas-microsoft-com:xml-analysis:rowset">' +
    '<xsd:complexType name="Row"><xsd:sequence>' + element('Column0', '0') + columns.map((c, i) => element(`Column${i + 1}`, c)).join('') +
    '</xsd:sequence></xsd:complexType></xsd:schema>'
}

function rowXml (row: string[]): string {
  return '<Row><Column0>0</Column0>' + row.map((v, i) => v === '' ? '' : `<Column${i + 1}>${xmlEscape(v)}</Column${i + 1}>`).join('') + '</Row>'
}

/** Adds the Analytics route to the Alma sandbox's app; call before alma.start(). Returns the live state. */
export function addAnalytics (alma: AlmaSandbox, reports: Record<string, AnalyticsReport | LiveReport> = {}): AnalyticsSandbox {
  const state: AnalyticsSandbox = { reports: new Map(Object.entries(reports)) }
  const cursors = new Map<string, { report: AnalyticsReport, offset: number, page: number }>()
  let tokens = 0
  const fail = (reply: FastifyReply, status: number, code: string, message: string): FastifyReply =>
    reply.code(status).type('application/xml;charset=UTF-8').send(errorXml(code, message))

  alma.app.get('/almaws/v1/analytics/reports', async (request, reply) => {
    const query = request.query as Record<string, string | undefined>
    const limit = Number(query.limit ?? 25)
    if (!Number.isInteger(limit) || limit < 25 || limit > 1000) return fail(reply, 400, '402212', `Parameter limit is not valid: ${query.limit ?? ''} (25 to 1000)`)
    let cursor
    if (query.token !== undefined) {
      cursor = cursors.get(query.token)
      if (cursor === undefined) return fail(reply, 400, '420033', 'Resumption token is not valid or expired.')
      if (query.path !== undefined) return fail(reply, 400, '402212', 'Send either path or token, not both.')
    } else {
      const path = query.path ?? ''
      const found = state.reports.get(path)
      if (found === undefined) return fail(reply, 400, 'INTERNAL_SERVER_ERROR', `Path not found (${path})`)
      // a live report is computed once, on its first page: the later pages page through the same rows
      cursor = { report: typeof found === 'function' ? found() : found, offset: 0, page: 0 }
    }
    const report = cursor.report
    const page = cursor.page + 1
    if (state.fault !== undefined && state.fault.page === page) return fail(reply, state.fault.status, state.fault.code, state.fault.message)
    const size = state.rowsPerPage ?? limit
    const rows = report.rows.slice(cursor.offset, cursor.offset + size)
    const finished = cursor.offset + size >= report.rows.length
    let token = ''
    if (page === 1) {
      token = `SANDBOX${String(++tokens).padStart(6, '0')}`
      cursors.set(token, cursor)
    }
    cursor.offset += size
    cursor.page = page
    return reply.type('application/xml;charset=UTF-8').send('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><report><QueryResult>' +
      (token !== '' ? `<ResumptionToken>${token}</ResumptionToken>` : '') + `<IsFinished>${String(finished)}</IsFinished><ResultXml>` +
      '<rowset:rowset xmlns:rowset="urn:schemas-microsoft-com:xml-analysis:rowset" xmlns="urn:schemas-microsoft-com:xml-analysis:rowset">' +
      (page === 1 ? schema(report.columns) : '') + rows.map(rowXml).join('') + '</rowset:rowset></ResultXml></QueryResult></report>')
  })
  return state
}

/**
 * The fines report of this Alma sandbox as it stands: one row per fee with a balance (Alma Analytics' "Fines and
 * Fees" subject area), headed as a library's "Fines for PeopleSoft" report usually is: the patron's UNIV_ID,
 * primary identifier, remaining amount and currency. Closed and paid-off fees are not in it.
 */
export function finesReport (alma: AlmaSandbox): LiveReport {
  return () => {
    const rows: string[][] = []
    for (const user of alma.users.values()) {
      const univ = user.identifiers.find(i => i.type === 'UNIV_ID')?.value ?? ''
      for (const fee of user.fees) {
        if (fee.status !== 'ACTIVE' || fee.balanceCents === 0) continue
        rows.push([univ, user.primaryId, formatDecimal(fee.balanceCents as Cents), fee.currency ?? 'USD'])
      }
    }
    return { columns: ['Identifier Value', 'Primary Identifier', 'Remaining Amount', 'Currency'], rows }
  }
}
