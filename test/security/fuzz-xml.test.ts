// Property tests of the Alma XML mapping: on generated documents in Alma's vocabulary, and on arbitrary
// strings, parsing and mapping either succeed with well-typed values or fail with XmlRejected; parseErrorBody
// answers an error or null. Never a TypeError, never a RangeError.

import fc from 'fast-check'
import t from 'tap'
import { mapFeeList, mapSingleFee, mapUser, parseErrorBody, parseXml, XmlRejected } from '../../src/alma/xml.ts'

const TAGS = ['user', 'primary_id', 'first_name', 'last_name', 'full_name', 'contact_info', 'emails', 'email', 'email_address', 'user_identifiers',
  'user_identifier', 'id_type', 'value', 'status', 'user_blocks', 'user_block', 'block_type', 'block_description', 'block_status', 'block_note', 'fees',
  'fee', 'id', 'type', 'balance', 'original_amount', 'owner', 'title', 'barcode', 'comment', 'creation_time', 'transactions', 'transaction', 'amount',
  'external_transaction_id', 'web_service_result', 'errorList', 'error', 'errorCode', 'errorMessage', 'trackingId', 'ns2:error', 'ns2:web_service_result',
  '__proto__', 'constructor', 'toString', '#text']
const ATTRIBUTES = ['desc', 'currency', 'total_sum', 'preferred', 'link', 'xmlns', 'xmlns:ns2', '__proto__', 'constructor']
const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const leafText = fc.oneof(
  fc.constantFrom('', '5.00', '-4.00', '1.005', '12', 'ten', '99999999999999999', 'true', 'USD', '&amp;', '&#65;', '&xxe;', '&lt;script&gt;', ' '),
  fc.string({ maxLength: 12 }).map(escape),
  fc.string({ maxLength: 12 })
)
const tag = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...TAGS.filter(n => n !== '#text')) }, { weight: 1, arbitrary: fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_.:-]{0,8}$/) })
const attributes = fc.array(fc.tuple(fc.constantFrom(...ATTRIBUTES), leafText), { maxLength: 2 })
  .map(list => [...new Map(list)].map(([k, v]) => ` ${k}="${escape(v)}"`).join(''))
const element: fc.Memo<string> = fc.memo((depth: number): fc.Arbitrary<string> => {
  const leaf = fc.tuple(tag, attributes, leafText).map(([n, a, v]) => v === '' ? `<${n}${a}/>` : `<${n}${a}>${v}</${n}>`)
  if (depth <= 1) return leaf
  return fc.oneof(
    { weight: 1, arbitrary: leaf },
    { weight: 2, arbitrary: fc.tuple(tag, attributes, fc.array(element(depth - 1), { maxLength: 4 })).map(([n, a, children]) => `<${n}${a}>${children.join('')}</${n}>`) }
  )
})
const document = fc.tuple(fc.constantFrom('', '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>', '\n  '), element(4)).map(([head, body]) => head + body)
const anyText = fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 60 }),
  fc.array(fc.constantFrom('<', '>', '/', 'user', 'fee', 'fees', '&', '&amp;', ';', '"', '=', ' ', 'desc', '<!--', '-->', '<![CDATA[', ']]>', '<?', '?>', '<!DOCTYPE', '<!ENTITY', '{', '}', 'errorList', 'error'), { maxLength: 40 }).map(parts => parts.join('')))

let wellFormed = 0

/** Runs every mapping on one input; returns false only on a wrong type, throws only what is not XmlRejected. */
function mapEverything (xml: string): boolean {
  const error = parseErrorBody(xml)
  if (error !== null && (typeof error.errorCode !== 'string' || typeof error.errorMessage !== 'string' || typeof error.trackingId !== 'string')) return false
  let doc: Record<string, any>
  try {
    doc = parseXml(xml)
  } catch (e) {
    if (e instanceof XmlRejected) return true
    throw e
  }
  wellFormed++
  for (const map of [mapUser, mapFeeList, mapSingleFee] as Array<(d: Record<string, any>) => unknown>) {
    try {
      const mapped = map(doc) as Record<string, unknown>
      for (const [key, value] of Object.entries(mapped)) {
        if (['balance', 'originalAmount', 'totalSum', 'feeBalance'].includes(key) && !Number.isSafeInteger(value)) return false
        if (['primaryId', 'firstName', 'lastName', 'id', 'title', 'comment', 'currency'].includes(key) && typeof value !== 'string') return false
      }
      for (const fee of (mapped.fees as Array<Record<string, unknown>> | undefined) ?? []) {
        if (!Number.isSafeInteger(fee.balance) || typeof fee.id !== 'string' || fee.id === '' || typeof fee.title !== 'string') return false
        if (typeof (fee.type as { code: unknown }).code !== 'string' || typeof (fee.type as { desc: unknown }).desc !== 'string') return false
      }
      for (const block of (mapped.blocks as Array<Record<string, unknown>> | undefined) ?? []) {
        if (typeof block.note !== 'string') return false
      }
    } catch (e) {
      if (!(e instanceof XmlRejected)) throw e
    }
  }
  return true
}

t.test('10,000 generated documents in Alma\'s vocabulary: typed values or XmlRejected', async t => {
  wellFormed = 0
  fc.assert(fc.property(document, mapEverything), { numRuns: 10_000, seed: 20261126 })
  t.ok(wellFormed > 5000, `${wellFormed} of them were well-formed and reached the mapping`)
})

t.test('10,000 arbitrary strings: typed values or XmlRejected; parseErrorBody never throws', async t => {
  fc.assert(fc.property(anyText, mapEverything), { numRuns: 10_000, seed: 11 })
  fc.assert(fc.property(fc.oneof(anyText, fc.json()), (body) => {
    const error = parseErrorBody(body)
    return error === null || typeof error.errorCode === 'string'
  }), { numRuns: 10_000, seed: 12 })
  t.pass('no crash')
})
