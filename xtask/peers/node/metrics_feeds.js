// Peer metrics feeds: one Node process holding many `ws` connections to the Real Time Chat
// stream, each subscribed to the same three account-wide metrics as `zd-bench metrics`, the
// way the Real Time Chat API documentation shows it (Bearer token on the upgrade, one
// `subscribe` frame per topic).
'use strict';

const WebSocket = require('ws');
const { ready, phase, done, args } = require('./common');

const opts = args();
const tokens = opts.tokens.split(',');
const feeds = Number(opts.feeds);
const holdS = Number(opts['hold-s'] ?? 3);
const url = opts.base.replace(/^http/, 'ws') + '/stream';
const TOPICS = ['chats.incoming_chats', 'chats.assigned_chats', 'chats.active_chats'];

function rssKib() {
  return Math.round(process.memoryUsage().rss / 1024);
}

function openFeed(token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
    let updates = 0;
    ws.on('open', () => {
      TOPICS.forEach((topic) => {
        ws.send(JSON.stringify({ topic, action: 'subscribe' }));
      });
      resolve(ws);
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(data);
      if (frame.status_code && frame.status_code >= 400) reject(new Error(JSON.stringify(frame)));
      updates += 1;
    });
    ws.on('error', reject);
  });
}

async function main() {
  ready();
  const rssBefore = rssKib();
  const start = process.hrtime.bigint();
  const samples = [];
  const held = [];
  let errors = 0;
  let firstError = null;
  for (let i = 0; i < feeds; i++) {
    const opened = process.hrtime.bigint();
    try {
      held.push(await openFeed(tokens[Math.floor(i / 10) % tokens.length]));
      samples.push(Number(process.hrtime.bigint() - opened) / 1000);
    } catch (e) {
      errors += 1;
      if (!firstError) firstError = String(e);
    }
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const rssAfter = rssKib();
  await new Promise((r) => setTimeout(r, holdS * 1000));
  done([phase('feeds', held.length, errors, elapsed, samples, firstError)], {
    feeds: held.length,
    rss_before_kib: rssBefore,
    rss_after_kib: rssAfter,
  });
  process.exit(0);
}

main().catch((e) => {
  console.error('metrics_feeds:', e);
  process.exit(1);
});
