// scripts/lib/atomic.ts: the files of a run must survive a crash or power cut just after the run said it
// succeeded. A test cannot cut the power, so it watches the order of the calls that make that so, through the
// file-system operations the writer is given: every temporary written and fsynced before its rename, and each
// target directory fsynced after the renames (a rename is only durable once its directory is).

import { readFileSync } from 'node:fs'
import * as fsp from 'node:fs/promises'
import { basename, join } from 'node:path'
import t from 'tap'
import { type AtomicFs, NODE_FS, writeFilesAtomically } from '../../scripts/lib/atomic.ts'
import { tempDir } from './cli.ts'

function recording (log: string[], root: string): AtomicFs {
  const rel = (p: string): string => p === root ? '.' : p.startsWith(root + '/') ? p.slice(root.length + 1).replace(/\.\d+\.tmp$/, '.tmp') : p
  return {
    ...NODE_FS,
    writeFile: async (path, file) => { await NODE_FS.writeFile(path, file); log.push(`write ${rel(path)}`) },
    fsync: async path => { await NODE_FS.fsync(path); log.push(`fsync ${rel(path)}`) },
    rename: async (from, to) => { await NODE_FS.rename(from, to); log.push(`rename ${rel(from)} -> ${rel(to)}`) }
  }
}

t.test('each temporary is written and fsynced before its rename; the directories are fsynced after the renames', async t => {
  const dir = tempDir(t)
  const log: string[] = []
  await writeFilesAtomically([
    { path: join(dir, 'a.csv'), csv: [['H'], ['1']] },
    { path: join(dir, 'sub', 'b.txt'), text: ['x\n'] }
  ], recording(log, dir))
  t.same(log, [
    'write .a.csv.tmp', 'fsync .a.csv.tmp',
    'write sub/.b.txt.tmp', 'fsync sub/.b.txt.tmp',
    'rename .a.csv.tmp -> a.csv', 'rename sub/.b.txt.tmp -> sub/b.txt',
    'fsync .', 'fsync sub'
  ])
  t.equal(readFileSync(join(dir, 'a.csv'), 'utf8'), 'H\r\n1\r\n')
  t.equal(readFileSync(join(dir, 'sub', 'b.txt'), 'utf8'), 'x\n')
})

t.test('a failed fsync renames nothing and leaves no temporary', async t => {
  const dir = tempDir(t)
  const fs: AtomicFs = { ...NODE_FS, fsync: async path => { if (basename(path).startsWith('.b.csv')) throw new Error('EIO'); await NODE_FS.fsync(path) } }
  await t.rejects(writeFilesAtomically([{ path: join(dir, 'a.csv'), csv: [['H']] }, { path: join(dir, 'b.csv'), csv: [['H']] }], fs), /EIO/)
  t.same(await fsp.readdir(dir), [], 'neither file, no temporaries')
})

t.test('the real fsync opens and syncs the file and the directory (readable after)', async t => {
  const dir = tempDir(t)
  await NODE_FS.writeFile(join(dir, 'f'), { path: join(dir, 'f'), text: ['y'] })
  await NODE_FS.fsync(join(dir, 'f'))
  await NODE_FS.fsync(dir)
  t.equal(readFileSync(join(dir, 'f'), 'utf8'), 'y')
})
