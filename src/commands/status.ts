import { notYetImplemented } from './not-yet.js'

export async function run(): Promise<number> {
  notYetImplemented('status')
}
