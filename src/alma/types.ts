// What the service uses of Alma's user and fee records, already mapped from XML: amounts in cents,
// coded fields split into code and description, lists always lists.

import type { Cents } from '../money.ts'

export interface Coded {
  code: string
  desc: string
}

export interface UserBlock {
  type: Coded
  description: Coded
  status: string
  note: string
  expiryDate: string
}

export interface AlmaUser {
  primaryId: string
  firstName: string
  lastName: string
  fullName: string
  preferredEmail: string
  status: string
  identifiers: Array<{ type: string, value: string, status: string }>
  blocks: UserBlock[]
  /** the fee balance, only when the user was read with expand=fees */
  feeBalance?: Cents
}

export interface FeeTransaction {
  type: string
  amount: Cents
  externalTransactionId: string
  time: string
  comment: string
}

export interface Fee {
  id: string
  type: Coded
  status: Coded
  userPrimaryId: string
  balance: Cents
  originalAmount: Cents
  currency: string
  creationTime: string
  comment: string
  owner: Coded
  title: string
  barcode: string
  transactions: FeeTransaction[]
}

export interface FeeList {
  fees: Fee[]
  totalSum: Cents
  currency: string
}
