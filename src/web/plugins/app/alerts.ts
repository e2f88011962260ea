// Alerts to staff (ALERT_EMAIL_TO through SMTP_URL, and always a log line) when a payment needs a person.

import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { type Alerts, createAlerts } from '../../../payments/alerts.ts'

declare module 'fastify' {
  interface FastifyInstance {
    alerts: Alerts
  }
}

export default fp(async function alerts (fastify) {
  const { config } = fastify
  fastify.decorate('alerts', createAlerts(fastify.log as unknown as Logger, { smtpUrl: config.smtpUrl, to: config.alertEmailTo, from: config.alertEmailFrom, publicUrl: config.publicUrl }))
}, { name: 'alerts', dependencies: ['config'] })
