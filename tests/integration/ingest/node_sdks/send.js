// Sends a track, an identify and a page with a real Node.js server SDK, changing only its host.
// Run: node send.js segment|rudderstack NODE_MODULES_DIR WRITE_KEY INGEST_URL RUN_ID
// (NODE_MODULES_DIR is where deploy/local/node-sdks.sh installed package-lock.json.)
// Prints "ok <messageId> <type>" or "failed <messageId> <type> <error>" for each message,
// once its SDK reported its delivery; exits 1 when one failed.
'use strict';
const path = require('node:path');
const zlib = require('node:zlib');
const { createRequire } = require('node:module');

const [sdk, modules, writeKey, ingest, run] = process.argv.slice(2);
const load = createRequire(path.join(path.resolve(modules), 'node_modules', 'package.json'));

const user = `node-${sdk}-${run}`;
// Three minutes before now: ingest must keep that age (clock skew corrected by sentAt).
const tracked = new Date(Date.now() - 3 * 60 * 1000);
const calls = [
  ['track', { userId: user, event: 'Order Completed', timestamp: tracked,
              properties: { run, plan: 'pro', revenue: 42 } }],
  ['identify', { userId: user, traits: { run, email: 'lan@example.com' } }],
  ['page', { anonymousId: `anon-${user}`, category: 'Docs', name: 'Pricing',
             properties: { run, path: '/pricing' } }],
];

function report(type, messageId, error) {
  if (error) {
    console.log(`failed ${messageId} ${type} ${error && (error.message || error)}`);
    process.exitCode = 1;
  } else {
    console.log(`ok ${messageId} ${type}`);
  }
}

async function segment() {
  const { Analytics } = load('@segment/analytics-node');
  const analytics = new Analytics({ writeKey, host: ingest });
  const delivered = calls.map(([type, params]) => new Promise((resolve) => {
    analytics[type](params, (error, ctx) => {
      report(type, ctx && ctx.event.messageId, error);
      resolve();
    });
  }));
  await analytics.closeAndFlush();
  await Promise.all(delivered);
}

async function rudderstack() {
  const Analytics = load('@rudderstack/rudder-sdk-node');
  const client = new Analytics(writeKey, { dataPlaneUrl: ingest });
  // Each call's callback gets the batch it went in (gzipped, as sent): its messageId is there.
  const delivered = calls.map(([type, params]) => new Promise((resolve) => {
    client[type](params, (error, batch) => {
      const sent = Buffer.isBuffer(batch) ? JSON.parse(zlib.gunzipSync(batch)) : batch;
      const message = sent && sent.batch.find((m) => m.type === type);
      report(type, message ? message.messageId : '-', error || (!message && 'not in its batch'));
      resolve();
    });
  }));
  await new Promise((resolve) => client.flush(resolve));
  await Promise.all(delivered);
}

// RudderStack's SDK also rethrows a failed delivery from a flush nobody awaits (the first
// call's): say so in one line, and let the calls' callbacks report their failures.
process.on('unhandledRejection', (error) => {
  console.log(`failed - - ${error && (error.message || error)}`);
  process.exitCode = 1;
});

const senders = { segment, rudderstack };
if (!senders[sdk]) {
  console.log(`failed - - unknown SDK ${sdk}`);
  process.exit(2);
}
senders[sdk]().catch((error) => {
  console.log(`failed - - ${error && (error.stack || error)}`);
  process.exitCode = 1;
});
