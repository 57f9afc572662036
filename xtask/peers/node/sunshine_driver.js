// Peer Sunshine REST driver: the official `sunshine-conversations-client` for Node.
//
// Same phases as `zd-bench sunshine` (crates/zd-bench/src/sunshine.rs): list every message of
// a seeded conversation page by page (newest first, then page[before]), create users and post
// messages with `concurrency` requests in flight (promises).
//
// The client keeps only the first key of a `page` object (`page[before]` here), so pages come
// at the service's default size; that is how this client pages, and what its users get.
'use strict';

const SunshineConversationsClient = require('sunshine-conversations-client');
const { ready, phase, done, args } = require('./common');

const opts = args();
const concurrency = Number(opts.concurrency ?? 8);

const defaultClient = SunshineConversationsClient.ApiClient.instance;
defaultClient.basePath = opts.base;
const basicAuth = defaultClient.authentications.basicAuth;
basicAuth.username = opts['key-id'];
basicAuth.password = opts['key-secret'];

const messagesApi = new SunshineConversationsClient.MessagesApi();
const usersApi = new SunshineConversationsClient.UsersApi();

function micros(start) {
  return Number(process.hrtime.bigint() - start) / 1000;
}

async function listAll() {
  const start = process.hrtime.bigint();
  const samples = [];
  let items = 0;
  let cursor = null;
  let error = null;
  for (;;) {
    const sent = process.hrtime.bigint();
    let page;
    try {
      page = await messagesApi.listMessages(opts['app-id'], opts['list-conversation'],
        cursor ? { page: { before: cursor } } : {});
    } catch (e) {
      error = e.body ? JSON.stringify(e.body) : String(e);
      break;
    }
    samples.push(micros(sent));
    items += (page.messages || []).length;
    if (page.meta && page.meta.hasMore && page.meta.beforeCursor) cursor = page.meta.beforeCursor;
    else break;
  }
  return phase('list', items, error ? 1 : 0, micros(start) / 1e6, samples, error);
}

async function concurrent(name, total, op) {
  const start = process.hrtime.bigint();
  const samples = [];
  let next = 0;
  let errors = 0;
  let firstError = null;
  async function worker() {
    while (next < total) {
      const i = next++;
      const sent = process.hrtime.bigint();
      try {
        await op(i);
        samples.push(micros(sent));
      } catch (e) {
        errors += 1;
        if (!firstError) firstError = e.body ? JSON.stringify(e.body) : String(e);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return phase(name, samples.length, errors, micros(start) / 1e6, samples, firstError);
}

async function main() {
  await messagesApi.listMessages(opts['app-id'], opts['list-conversation'], {});
  ready();
  const phases = [await listAll()];
  phases.push(await concurrent('create_users', Number(opts.users), (i) =>
    usersApi.createUser(opts['app-id'], {
      externalId: `${opts.tag}-${i}`,
      profile: { givenName: 'Bench' },
    })));
  phases.push(await concurrent('post_messages', Number(opts.posts), (i) =>
    messagesApi.postMessage(opts['app-id'], opts['post-conversation'], {
      author: { type: 'business' },
      content: { type: 'text', text: `bench ${i}` },
    })));
  done(phases);
}

main().catch((e) => {
  console.error('sunshine_driver:', e);
  process.exit(1);
});
