// The staff pages (SPEC 3): only for ADMIN_USERS through EZproxy (the identity plugin enforces `access: 'admin'`).
// Reading is free; the one action, "retry posting", is a CSRF-protected POST that requeues the payment in the
// ledger (with the staff member's name in the audit trail) and hands it to the posting worker.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Checkout, CheckoutState } from '../../ledger/types.ts'
import { CHECKOUT_STATES } from '../../ledger/types.ts'
import { messagePage } from '../views/fines.ts'
import { type ListQuery, canRetry, paymentPage, paymentsCsv, paymentsListPage, unmatchedPostbacksPage } from '../views/admin.ts'

const PAGE_SIZE = 50
const CSV_BATCH = 500
/** A CSV is for a day's or a month's work; beyond this the filter is too wide to be useful. */
const CSV_MAX_ROWS = 100_000
const UNMATCHED_SHOWN = 200
const MAX_SEARCH = 200

function asList (value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string')
  return typeof value === 'string' ? [value] : []
}

/** The list's filters from the query string; anything unknown is ignored rather than refused. */
export function readListQuery (raw: unknown): ListQuery {
  const query = (raw ?? {}) as Record<string, unknown>
  const states = new Set(asList(query.state).flatMap(s => s.split(',')).map(s => s.trim().toUpperCase()))
  const search = (asList(query.q)[0] ?? '').trim().slice(0, MAX_SEARCH)
  const page = Number.parseInt(asList(query.page)[0] ?? '1', 10)
  return {
    states: CHECKOUT_STATES.filter(s => states.has(s)),
    search,
    page: Number.isSafeInteger(page) && page >= 1 ? page : 1
  }
}

const admin: FastifyPluginAsync = async (fastify) => {
  const { config, ledger, worker } = fastify
  const staff = (username: string | undefined): string => username ?? '?'
  const html = (reply: FastifyReply): FastifyReply => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')

  fastify.get('/admin', { config: { access: 'admin', root: './' } }, async (request, reply) => {
    const query = readListQuery(request.query)
    const filter = { states: query.states, search: query.search }
    let { checkouts, total } = ledger.listCheckouts({ ...filter, limit: PAGE_SIZE, offset: (query.page - 1) * PAGE_SIZE })
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE))
    if (query.page > pages) {
      query.page = pages
      ;({ checkouts, total } = ledger.listCheckouts({ ...filter, limit: PAGE_SIZE, offset: (pages - 1) * PAGE_SIZE }))
    }
    const counts = Object.fromEntries(CHECKOUT_STATES.map(state => [state, ledger.listCheckouts({ states: [state], search: query.search, limit: 0 }).total])) as Record<CheckoutState, number>
    return html(reply).send(paymentsListPage({
      branding: config,
      query,
      checkouts,
      total,
      pageSize: PAGE_SIZE,
      counts,
      openAttention: ledger.listCheckouts({ states: ['NEEDS_ATTENTION'], unresolved: true, search: query.search, limit: 0 }).total,
      unmatchedPostbacks: ledger.unmatchedPostbacks().length
    }))
  })

  fastify.get('/admin/payments.csv', { config: { access: 'admin', root: '../' } }, async (request, reply) => {
    const query = readListQuery(request.query)
    const rows: Checkout[] = []
    for (let offset = 0; offset < CSV_MAX_ROWS; offset += CSV_BATCH) {
      const batch = ledger.listCheckouts({ states: query.states, search: query.search, limit: CSV_BATCH, offset }).checkouts
      rows.push(...batch)
      if (batch.length < CSV_BATCH) break
    }
    request.log.info({ event: 'admin.export', states: query.states, search: query.search, rows: rows.length }, `${staff(request.patron?.username)} downloaded ${rows.length} payment(s) as CSV`)
    const day = new Date().toISOString().slice(0, 10)
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="payments-${day}.csv"`)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .send(paymentsCsv(rows))
  })

  fastify.get('/admin/postbacks', { config: { access: 'admin', root: '../' } }, async (_request, reply) => {
    return html(reply).send(unmatchedPostbacksPage(config, ledger.unmatchedPostbacks(), UNMATCHED_SHOWN))
  })

  const notFound = (reply: FastifyReply, root: string): FastifyReply =>
    html(reply).code(404).send(messagePage(config, { title: 'No such payment', heading: 'No such payment', message: 'There is no checkout with that id. Search the payments list by tx, username or checkout id.', root }))

  fastify.get<{ Params: { id: string } }>('/admin/payments/:id', { config: { access: 'admin', root: '../../' } }, async (request, reply) => {
    const history = ledger.history(request.params.id)
    if (history === undefined) return notFound(reply, '../../')
    const retried = (request.query as Record<string, unknown>).retried === '1'
    return html(reply).send(paymentPage({
      branding: config,
      history,
      csrfToken: reply.generateCsrf(),
      notice: retried ? `Retry requested; the posting worker has been asked to post this payment now. State: ${history.checkout.state}.` : undefined
    }))
  })

  /** The payment a staff action (POST /admin/payments/:id/...) is about, and who acts; a 404 page if none. */
  const actionTarget = (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): { id: string, by: string, checkout: Checkout } | FastifyReply => {
    const id = request.params.id
    const checkout = ledger.getCheckout(id)
    if (checkout === undefined) return notFound(reply, '../../../')
    return { id, by: staff(request.patron?.username), checkout }
  }

  fastify.post<{ Params: { id: string } }>('/admin/payments/:id/retry', {
    config: { access: 'admin', root: '../../../' },
    // preHandler, not onRequest: the token is in the form body, which is parsed after onRequest
    preHandler: fastify.csrfProtection
  }, async (request, reply) => {
    const target = actionTarget(request, reply)
    if (!('checkout' in target)) return target
    const { id, by, checkout } = target
    if (!canRetry(checkout) || !ledger.requeue(id, by)) {
      request.log.info({ event: 'admin.retry_refused', checkout: id, state: checkout.state }, `${by} asked to retry ${id}, which is ${checkout.state}: nothing to retry`)
      return html(reply).code(409).send(messagePage(config, {
        title: 'Nothing to retry',
        heading: 'Nothing to retry',
        message: `This payment is ${checkout.state}; only payments that need attention or are paid but not yet posted (with a CashNet tx) can be retried.`,
        root: '../../../'
      }))
    }
    request.log.info({ event: 'admin.retry', checkout: id, tx: checkout.tx, from: checkout.state, by }, `${by} asked to retry posting ${id} (was ${checkout.state})`)
    worker.schedule(id)
    return reply.redirect(`../${encodeURIComponent(id)}?retried=1`, 303)
  })

  fastify.post<{ Params: { id: string }, Body: { resolution?: unknown } }>('/admin/payments/:id/resolve', {
    config: { access: 'admin', root: '../../../' },
    preHandler: fastify.csrfProtection
  }, async (request, reply) => {
    const target = actionTarget(request, reply)
    if (!('checkout' in target)) return target
    const { id, by, checkout } = target
    const resolution = typeof request.body?.resolution === 'string' ? request.body.resolution.trim().replace(/\s+/g, ' ') : ''
    if (resolution === '' || resolution.length > 500) {
      return html(reply).code(400).send(messagePage(config, {
        title: 'Say what was done', heading: 'Say what was done', root: '../../../', linkHome: false,
        message: 'Write a short note of what was done with the money (for example “refunded 20.00 in CashNet on 27 Nov, ref 1234”), at most 500 characters, then mark it settled.'
      }))
    }
    if (!ledger.resolveAttention(id, by, resolution)) {
      return html(reply).code(409).send(messagePage(config, {
        title: 'Nothing to settle', heading: 'Nothing to settle', root: '../../../',
        message: `This payment is ${checkout.state}${checkout.resolvedAt !== null ? ', already settled' : ''}; only payments that need attention can be marked settled.`
      }))
    }
    request.log.info({ event: 'admin.resolved', checkout: id, tx: checkout.tx, by, resolution }, `${by} marked ${id} settled: ${resolution}`)
    return reply.redirect(`../${encodeURIComponent(id)}`, 303)
  })
}

export default admin
