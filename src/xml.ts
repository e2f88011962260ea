// Reading XML documents from the systems we call (Alma, EZproxy's UserObject service) with fast-xml-parser,
// configured once: well-formed, one root, no DOCTYPE, no entities beyond XML's five (and character
// references), no element deeper than 100, no name that reaches an object's prototype, values kept as text.
//
// The document becomes plain objects: an element with text only is its text ('' when empty), otherwise an
// object with '@name' attributes, child elements by local name (namespace prefixes and declarations dropped)
// and '#text'. Elements named in `lists` are always arrays below the root; other repeated elements become
// arrays where they repeat. Names that would shadow an object's methods (toString, hasOwnProperty, ...) get a
// '__' prefix; __proto__, constructor and prototype as element names refuse the document.

import { ENTITY_ACTION, EntityDecoder } from '@nodable/entities'
import { XMLParser, XMLValidator } from 'fast-xml-parser'

export class XmlRejected extends Error {
  readonly kind = 'XmlRejected'
}

export const MAX_DEPTH = 100

/** Reads one document; throws XmlRejected for anything that is not one well-formed document we accept. */
export type XmlReader = (text: string) => Record<string, any>

export function xmlReader (lists: ReadonlySet<string> = new Set()): XmlReader {
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    textNodeName: '#text',
    removeNSPrefix: true,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    ignoreDeclaration: true,
    ignorePiTags: true,
    // Entities: XML's own five and character references, decoded once; anything else (&nbsp;, &xxe;) stays
    // literal text. A DOCTYPE never gets this far (below); were one to, its entities would not be registered.
    processEntities: true,
    entityDecoder: new EntityDecoder({
      namedEntities: null,
      numericAllowed: true,
      onInputEntity: () => ENTITY_ACTION.BLOCK,
      onExternalEntity: () => ENTITY_ACTION.BLOCK
    }),
    // fast-xml-parser counts the open elements above the one being opened: 99 above is the 100th level.
    maxNestedTags: MAX_DEPTH - 1,
    strictReservedNames: true,
    // The callbacks get the parser's path matcher, not a path string built for every element and attribute
    // (building them was a sixth of the parse): a list is an element below the root.
    jPath: false,
    isArray: (name, path, _leaf, isAttribute) => isAttribute !== true && lists.has(name) && (path as unknown as { getDepth: () => number }).getDepth() > 1
  })

  return (text: string) => {
    if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw new XmlRejected('XML with a DOCTYPE or ENTITY declaration is not accepted')
    let document: Record<string, any>
    try {
      // Parsing first: it stops at the 101st level or at a refused name before the validator walks far.
      document = parser.parse(text)
      const valid = XMLValidator.validate(text)
      if (valid !== true) throw new Error(`${valid.err.msg} (line ${valid.err.line})`)
    } catch (error) {
      throw new XmlRejected(`not well-formed XML: ${(error as Error).message.split('\n')[0].slice(0, 200)}`)
    }
    const roots = Object.keys(document)
    if (roots.length === 0) throw new XmlRejected('not an XML document')
    if (roots.length > 1 || Array.isArray(document[roots[0]])) throw new XmlRejected('more than one root element')
    if (!endsWithMarkup(text)) throw new XmlRejected('text after the root element')
    // CDATA sections are text, but fast-xml-parser keeps their spaces: trim them as any other text.
    return text.includes('<![CDATA[') ? trimTexts(document) as Record<string, any> : document
  }
}

/** After the root element only comments, processing instructions and white space may follow (read from the end). */
function endsWithMarkup (text: string): boolean {
  let end = text.length
  for (;;) {
    while (end > 0 && /\s/.test(text[end - 1])) end--
    const opening = text.endsWith('-->', end) ? '<!--' : text.endsWith('?>', end) ? '<?' : ''
    if (opening === '') return text[end - 1] === '>'
    end = text.lastIndexOf(opening, end - opening.length)
    if (end < 0) return false
  }
}

function trimTexts (node: unknown): unknown {
  if (typeof node === 'string') return node.trim()
  if (Array.isArray(node)) return node.map(trimTexts)
  if (node !== null && typeof node === 'object') {
    const record = node as Record<string, unknown>
    for (const key of Object.keys(record)) record[key] = trimTexts(record[key])
  }
  return node
}

/** The text of an element that may be absent, empty (''), a string, or an object with attributes. */
export function text (node: unknown): string {
  if (node === undefined || node === null) return ''
  if (typeof node === 'string') return node
  if (typeof node === 'number' || typeof node === 'boolean') return String(node)
  if (Array.isArray(node)) return text(node[0])
  if (typeof node === 'object') return text((node as Record<string, unknown>)['#text'])
  return ''
}

export function attr (node: unknown, name: string): string {
  if (node !== null && typeof node === 'object' && !Array.isArray(node)) {
    const value = (node as Record<string, unknown>)['@' + name]
    return value === undefined ? '' : String(value)
  }
  return ''
}
