// Child processes of the bench: the Alma sandbox (IPC-driven), the bare Fastify route, and the service
// (src/server.ts, or bench/lib/service.ts when the Alma budget is lifted). Ports are picked here; readiness
// is /healthz answering; CPU and memory are read from /proc so nothing inside the service is instrumented.

import { type ChildProcess, fork, spawn } from 'node:child_process'
import { openSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => { resolve(port) })
    })
  })
}

export interface ProcStats {
  /** CPU time used so far, user + system, in ms */
  cpuMs: number
  rssMb: number
  peakRssMb: number
  /** resident anonymous memory (heaps, malloc) and file-backed (the node binary, shared libraries) */
  anonMb: number
  fileMb: number
}

const TICK_MS = 1000 / 100 // USER_HZ is 100 on Linux

export function procStats (pid: number): ProcStats {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpuMs = (Number(fields[11]) + Number(fields[12])) * TICK_MS
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
  return { cpuMs, rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024, anonMb: kb('RssAnon') / 1024, fileMb: kb('RssFile') / 1024 }
}

/** The children of a process (a WEB_CONCURRENCY primary's workers), from /proc. */
export function childPids (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(word => word !== '').map(Number)
  } catch {
    return []
  }
}

/** CPU time used so far by a process and its children, in ms (a child that has gone counts nothing). */
export function treeCpuMs (pid: number): number {
  let sum = 0
  for (const each of [pid, ...childPids(pid)]) {
    try { sum += procStats(each).cpuMs } catch {}
  }
  return sum
}

/** A TypeScript child with an IPC channel that says { ready: url } once listening. */
export async function forkReady (file: string, env: Record<string, string>): Promise<{ child: ChildProcess, url: string, call: (command: string, args?: unknown) => Promise<any> }> {
  const child = fork(file, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let nextId = 1
  const waiting = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${file} did not start in 30 s`)) }, 30_000)
    child.on('message', (message: any) => {
      if (message.ready !== undefined) { clearTimeout(timer); resolve(message.ready); return }
      const pending = waiting.get(message.id)
      if (pending === undefined) return
      waiting.delete(message.id)
      if (message.error !== undefined) pending.reject(new Error(message.error))
      else pending.resolve(message.result)
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${file} exited with ${code}`)) })
  })
  const call = async (command: string, args?: unknown): Promise<any> => await new Promise((resolve, reject) => {
    const id = nextId++
    waiting.set(id, { resolve, reject })
    child.send({ id, command, args })
  })
  return { child, url, call }
}

export interface ServiceProcess {
  child: ChildProcess
  url: string
  stop: () => Promise<void>
}

/** Starts the service from an entry file with this environment; logs (JSON lines) go to logFile. */
export async function startService (entry: string, env: Record<string, string>, logFile: string, nodeArgs: string[] = []): Promise<ServiceProcess> {
  const out = openSync(logFile, 'a')
  // The production service runs compiled (npm run build), as npm start runs it; TypeScript entries need tsx.
  const loader = entry.endsWith('.ts') ? ['--import', 'tsx'] : []
  const child = spawn(process.execPath, [...nodeArgs, ...loader, entry], { env: { ...process.env, ...env }, stdio: ['ignore', out, out] })
  const url = `http://127.0.0.1:${env.PORT}`
  const deadline = Date.now() + 30_000
  let exited: number | null = null
  child.once('exit', (code) => { exited = code ?? -1 })
  for (;;) {
    if (exited !== null) throw new Error(`${entry} exited with ${exited}; see ${logFile}`)
    if (Date.now() > deadline) throw new Error(`${entry} did not answer /healthz in 30 s; see ${logFile}`)
    try {
      const answer = await fetch(`${url}/healthz`)
      if (answer.ok) break
    } catch {}
    await sleep(100)
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null) return
    const done = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGTERM')
    const forced = setTimeout(() => { child.kill('SIGKILL') }, 25_000)
    await done
    clearTimeout(forced)
  }
  return { child, url, stop }
}
