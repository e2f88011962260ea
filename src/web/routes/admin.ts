// The staff pages (SPEC 3): only for ADMIN_USERS through EZproxy (the identity plugin enforces `access: 'admin'`).
// Reading is free; the actions (retry posting, post what CashNet confirmed, record a refund, mark as settled) are
// CSRF-protected POSTs, each asked of the payment rule (src/payments/staff-actions.ts) again on the server: a
// refused one answers 409 with the rule's reason and changes nothing. The staff member's name goes in the audit.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { PageCursor } from '../../ledger/ledger.ts'
import type { MoneyRecord } from '../../ledger/types.ts'
import { PROVIDER_LABEL } from '../../providers/provider.ts'
import { InvalidAmount, parseCents } from '../../money.ts'
import { providerOf, type StaffAction, refundAlreadyRecorded, refundEffect, staffView, verdict, whyNot, whyRefundRefused } from '../../payments/staff-actions.ts'
import { differencesOf, receivedOf } from '../../payments/receipts.ts'
import { LIST_QUERY_SCHEMA, type RawListQuery, readListQuery } from '../admin-list-query.ts'
import { badInputPage } from '../plugins/app/error-handler.ts'
import { messagePage } from '../views/message.ts'
import { type CsvPage, paymentPage, paymentsCsv, paymentsListPage, unmatchedPostbacksPage } from '../views/admin.ts'

const PAGE_SIZE = 50
const CSV_PAGE = 500
/** A CSV is for a day's or a month's work; beyond this the filter is too wide to be useful. */
const CSV_MAX_ROWS = 100_000
const UNMATCHED_SHOWN = 200
/** Where a staff action's pages link back to the service root from. */
const ACTION_ROOT = '../../../'

const PAYMENT_PARAMS = { type: 'object', properties: { id: { type: 'string', minLength: 1 } }, required: ['id'] } as const

const text = { type: 'string' } as const
/** Each staff action's form; what the fields must say is checked after the payment rule (a refused action is 409 whatever the form says). */
const ACTION_FORM = { type: 'object', properties: { _csrf: text } } as const
const REFUND_FORM = { type: 'object', properties: { _csrf: text, tx: text, amount: text, reference: text, note: text } } as const
const RESOLVE_FORM = { type: 'object', properties: { _csrf: text, resolution: text } } as const

/** What the refund and settle forms must say, in the words of the campus's provider (CashNet, PayPal). */
function badInputPages (provider: string): { refund: { heading: string, message: string }, resolve: { heading: string, message: string } } {
  return {
    refund: {
      heading: 'Say what was refunded',
      message: `Give the ${provider} tx, the amount refunded (like 12.50), ${provider}’s refund reference (at most 100 characters) and a note (at most 500 characters).`
    },
    resolve: {
      heading: 'Say what was done',
      message: `Write a short note of what was done with the money (for example “refunded 20.00 in ${provider} on 27 Nov, ref 1234”), at most 500 characters, then mark it settled.`
    }
  }
}

interface PaymentRoute<Body = unknown> { Params: { id: string }, Body: Body }

const admin: FastifyPluginAsync = async (fastify) => {
  const { config, ledger, worker } = fastify
  const { refund: REFUND_BAD_INPUT, resolve: RESOLVE_BAD_INPUT } = badInputPages(PROVIDER_LABEL[config.paymentProvider])
  const staff = (username: string | undefined): string => username ?? '?'
  const html = (reply: FastifyReply): FastifyReply => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')

  fastify.get<{ Querystring: RawListQuery }>('/admin', { config: { access: 'admin', root: './' }, schema: { querystring: LIST_QUERY_SCHEMA } }, async (request, reply) => {
    const query = readListQuery(request.query)
    const filter = { states: query.states, search: query.search }
    let { checkouts, total } = await ledger.listCheckouts({ ...filter, limit: PAGE_SIZE, offset: (query.page - 1) * PAGE_SIZE })
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE))
    if (query.page > pages) {
      query.page = pages
      ;({ checkouts, total } = await ledger.listCheckouts({ ...filter, limit: PAGE_SIZE, offset: (pages - 1) * PAGE_SIZE }))
    }
    const counts = await ledger.countCheckouts(query.search)
    return html(reply).send(paymentsListPage({
      branding: config,
      query,
      checkouts,
      total,
      pageSize: PAGE_SIZE,
      counts: counts.byState,
      openAttention: counts.openAttention,
      unmatchedPostbacks: await ledger.countUnmatchedPostbacks(),
      timeZone: config.timeZone,
      differences: await differencesOf(ledger, checkouts)
    }))
  })

  fastify.get<{ Querystring: RawListQuery }>('/admin/payments.csv', { config: { access: 'admin', root: '../' }, schema: { querystring: LIST_QUERY_SCHEMA } }, async (request, reply) => {
    const query = readListQuery(request.query)
    const by = staff(request.patron?.username)
    const log = request.log
    // Page by page (keyset, no lines, one query a page), yielding to the event loop between pages.
    async function * pages (): AsyncGenerator<CsvPage> {
      let after: PageCursor | null = null
      let rows = 0
      while (rows < CSV_MAX_ROWS) {
        const page = await ledger.checkoutPage({ states: query.states, search: query.search }, after, Math.min(CSV_PAGE, CSV_MAX_ROWS - rows))
        if (page.length === 0) break
        rows += page.length
        yield { checkouts: page, received: await receivedOf(ledger, page) }
        after = page[page.length - 1].cursor
        await new Promise(resolve => setImmediate(resolve))
      }
      log.info({ event: 'admin.export', states: query.states, search: query.search, rows }, `${by} downloaded ${rows} payment(s) as CSV`)
    }
    const day = new Date().toISOString().slice(0, 10)
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="payments-${day}.csv"`)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .send(paymentsCsv(pages()))
  })

  fastify.get('/admin/postbacks', { config: { access: 'admin', root: '../' } }, async (_request, reply) => {
    return html(reply).send(unmatchedPostbacksPage(config, await ledger.unmatchedPostbacks(undefined, UNMATCHED_SHOWN), await ledger.countUnmatchedPostbacks()))
  })

  const notFound = (reply: FastifyReply, root: string): FastifyReply =>
    html(reply).code(404).send(messagePage(config, { title: 'No such payment', heading: 'No such payment', message: 'There is no checkout with that id. Search the payments list by tx, username or checkout id.', root }))

  fastify.get<{ Params: { id: string }, Querystring: { retried?: string } }>('/admin/payments/:id', {
    config: { access: 'admin', root: '../../' },
    schema: { params: PAYMENT_PARAMS, querystring: { type: 'object', properties: { retried: text } } }
  }, async (request, reply) => {
    const history = await ledger.history(request.params.id)
    if (history === undefined) return notFound(reply, '../../')
    const retried = request.query.retried === '1'
    return html(reply).send(paymentPage({
      branding: config,
      history,
      staff: staffView(history),
      csrfToken: reply.generateCsrf(),
      timeZone: config.timeZone,
      almaUiUrl: config.almaUiUrl,
      notice: retried ? `Retry requested; the posting worker has been asked to post this payment now. State: ${history.checkout.state}.` : undefined
    }))
  })

  /** The payment a staff action (POST /admin/payments/:id/...) is about, and who acts; a 404 page if none. */
  const actionTarget = async (request: FastifyRequest<PaymentRoute>, reply: FastifyReply): Promise<{ id: string, by: string, record: MoneyRecord } | FastifyReply> => {
    const id = request.params.id
    const record = await ledger.moneyRecord(id)
    if (record === undefined) return notFound(reply, ACTION_ROOT)
    return { id, by: staff(request.patron?.username), record }
  }

  const TITLES: Record<StaffAction, string> = {
    retry: 'Nothing to retry',
    'post-confirmed': 'Nothing to post',
    refund: 'That refund cannot be recorded',
    settle: 'Nothing to settle'
  }

  /** A refused staff action: 409 with the rule's reason, one log line, nothing changed. */
  const refuse = (request: FastifyRequest, reply: FastifyReply, action: StaffAction, target: { id: string, by: string, record: MoneyRecord }, reason: string, title = TITLES[action]): FastifyReply => {
    const { checkout } = target.record
    request.log.info({ event: 'admin.action_refused', action, checkout: target.id, state: checkout.state, kind: checkout.attentionKind, by: target.by, reason },
      `${target.by} asked to ${action} ${target.id} (${checkout.state}${checkout.attentionKind !== null && checkout.state === 'NEEDS_ATTENTION' ? ` ${checkout.attentionKind}` : ''}), refused: ${reason}`)
    return html(reply).code(409).send(messagePage(config, { title, heading: title, message: reason, root: ACTION_ROOT }))
  }

  // Retry posting, or post only what CashNet confirmed: the rule decides which (if either); both requeue the
  // payment for the worker, whose poster never sends more than CashNet reported, line by line.
  for (const action of ['retry', 'post-confirmed'] as const) {
    fastify.post<PaymentRoute<{ _csrf?: string }>>(`/admin/payments/:id/${action}`, {
      config: { access: 'admin', root: ACTION_ROOT },
      schema: { params: PAYMENT_PARAMS, body: ACTION_FORM },
      // preValidation, not onRequest: the token is in the form body, which is parsed after onRequest; and
      // before the schema, so a forged form is refused as such (403) whatever shape its fields have
      preValidation: fastify.csrfProtection
    }, async (request, reply) => {
      const target = await actionTarget(request, reply)
      if (!('record' in target)) return target
      const { id, by, record } = target
      const allowed = verdict(record, action)
      if (!allowed.allowed) return refuse(request, reply, action, target, allowed.reason)
      // The rule is asked again inside the ledger's transaction, on the payment as it is then: a postback that
      // changed it since the page was read (a double charge, say) is not overridden.
      const requeued = await ledger.requeue(id, by, action, current => whyNot(verdict(current, action)))
      if (!requeued.done) return refuse(request, reply, action, target, requeued.reason)
      request.log.info({ event: 'admin.retry', action, checkout: id, tx: record.checkout.tx, from: record.checkout.state, by }, `${by} asked to ${action === 'retry' ? 'retry posting' : `post what ${providerOf(record.checkout)} confirmed for`} ${id} (was ${record.checkout.state})`)
      worker.schedule(id)
      return reply.redirect(`../${encodeURIComponent(id)}?retried=1`, 303)
    })
  }

  fastify.post<PaymentRoute<{ tx?: string, amount?: string, reference?: string, note?: string }>>('/admin/payments/:id/refund', {
    config: { access: 'admin', root: ACTION_ROOT, badInput: REFUND_BAD_INPUT },
    schema: { params: PAYMENT_PARAMS, body: REFUND_FORM },
    preValidation: fastify.csrfProtection
  }, async (request, reply) => {
    const target = await actionTarget(request, reply)
    if (!('record' in target)) return target
    const { id, by, record } = target
    // one line each, spaces collapsed; one character over the limit is kept so that the check below sees it
    const line = (value: string | undefined, max: number): string => (value ?? '').trim().replace(/\s+/g, ' ').slice(0, max + 1)
    const tx = line(request.body.tx, 64)
    const reference = line(request.body.reference, 100)
    const note = line(request.body.note, 500)
    let amount
    try {
      amount = parseCents(line(request.body.amount, 20))
    } catch (error) {
      if (!(error instanceof InvalidAmount)) throw error
      amount = null
    }
    // First, whether this refund is already recorded (the same form sent twice, a refund PayPal reported): the
    // first one may have closed the case, and the answer is then "already recorded", not "nothing to refund".
    const recorded = reference === '' ? null : refundAlreadyRecorded(record, tx, reference, amount)
    if (recorded !== null) return refuse(request, reply, 'refund', target, recorded.reason, recorded.repeat ? 'This refund is already recorded' : undefined)
    const general = verdict(record, 'refund')
    if (!general.allowed) return refuse(request, reply, 'refund', target, general.reason)
    if (amount === null || tx === '' || reference === '' || reference.length > 100 || note === '' || note.length > 500) {
      return badInputPage(config, reply, REFUND_BAD_INPUT)
    }
    const refused = whyRefundRefused(record, tx, amount, reference)
    if (refused !== null) return refuse(request, reply, 'refund', target, refused)
    const result = await ledger.recordRefund({ checkoutId: id, tx, amount, reference, note, by }, {
      refuse: (current) => whyRefundRefused(current, tx, amount, reference),
      effect: refundEffect
    })
    if (!result.recorded) {
      // a submission that lost the race to the same refund (the other request recorded it meanwhile) is answered as the repeat it is
      const now = await ledger.moneyRecord(id)
      const lost = now === undefined ? null : refundAlreadyRecorded(now, tx, reference, amount)
      return refuse(request, reply, 'refund', target, lost?.reason ?? result.reason, lost?.repeat === true ? 'This refund is already recorded' : undefined)
    }
    request.log.info({ event: 'admin.refund_recorded', checkout: id, tx, amount, reference, by, effect: result.effect, state: result.checkout.state },
      `${by} recorded a refund of tx ${tx} for ${id}${result.effect === 'restore' ? `; the double charge is closed, back to ${result.checkout.state}` : result.effect === 'settle' ? '; the payment is settled' : ''}`)
    if (result.checkout.state === 'PAID') worker.schedule(id)
    return reply.redirect(`../${encodeURIComponent(id)}`, 303)
  })

  fastify.post<PaymentRoute<{ resolution?: string }>>('/admin/payments/:id/resolve', {
    config: { access: 'admin', root: ACTION_ROOT, badInput: RESOLVE_BAD_INPUT },
    schema: { params: PAYMENT_PARAMS, body: RESOLVE_FORM },
    preValidation: fastify.csrfProtection
  }, async (request, reply) => {
    const target = await actionTarget(request, reply)
    if (!('record' in target)) return target
    const { id, by, record } = target
    const allowed = verdict(record, 'settle')
    if (!allowed.allowed) return refuse(request, reply, 'settle', target, allowed.reason)
    const resolution = (request.body.resolution ?? '').trim().replace(/\s+/g, ' ')
    if (resolution === '' || resolution.length > 500) {
      return badInputPage(config, reply, RESOLVE_BAD_INPUT)
    }
    const settled = await ledger.resolveAttention(id, by, resolution, current => whyNot(verdict(current, 'settle')))
    if (!settled.done) return refuse(request, reply, 'settle', target, settled.reason)
    request.log.info({ event: 'admin.resolved', checkout: id, tx: record.checkout.tx, by, resolution }, `${by} marked ${id} settled: ${resolution}`)
    return reply.redirect(`../${encodeURIComponent(id)}`, 303)
  })
}

export default admin
