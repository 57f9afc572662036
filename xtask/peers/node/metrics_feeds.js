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

// Feeds that died after they opened: refused (a status frame of 400 or more), failed or
// closed before the `done` line. They are counted as errors there and not as held feeds, so
// memory per feed is never divided over dead ones (as `zd-bench metrics` does).
const dead = { count: 0, firstError: null };

function openFeed(token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
    let opened = false;
    let isDead = false;
    // Before `open` the promise rejects (counted as a failed open); after, the feed is dead.
    const fail = (why) => {
      if (!opened) {
        reject(why);
        return;
      }
      if (isDead) return;
      isDead = true;
      dead.count += 1;
      if (!dead.firstError) dead.firstError = String(why);
    };
    let updates = 0;
    ws.on('open', () => {
      opened = true;
      TOPICS.forEach((topic) => {
        ws.send(JSON.stringify({ topic, action: 'subscribe' }));
      });
      resolve(ws);
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(data);
      if (frame.status_code && frame.status_code >= 400) {
        fail(new Error(`refused: ${JSON.stringify(frame)}`));
        return;
      }
      updates += 1;
    });
    ws.on('error', (e) => fail(e));
    ws.on('close', (code, reason) => fail(new Error(`closed (${code} ${String(reason)})`)));
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
  // Feeds refused or ended by now are errors, not held feeds.
  const alive = held.length - dead.count;
  done([phase('feeds', alive, errors + dead.count, elapsed, samples, firstError ?? dead.firstError)], {
    feeds: alive,
    rss_before_kib: rssBefore,
    rss_after_kib: rssAfter,
  });
  process.exit(0);
}

main().catch((e) => {
  console.error('metrics_feeds:', e);
  process.exit(1);
});
