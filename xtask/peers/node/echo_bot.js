// Peer echo bot, written the way Zendesk's official Chat Conversations API sample is:
// startAgentSession over HTTP, then `ws`, updateAgentStatus, the `message` subscription,
// a PING every 5 s, and a sendMessage mutation (values inlined into the query text) for each
// visitor message. Request ids count up so each answer can be matched to its message.
'use strict';

const WebSocket = require('ws');
const { ready, phase, done, unixMicros, args } = require('./common');

const opts = args();
const GRAPHQL_URL = opts['graphql-url'];
const ACCESS_TOKEN = opts.token;
const EXPECT = Number(opts.expect);
const TIMEOUT_S = Number(opts['timeout-s'] ?? 120);

const REQUEST_ID = { UPDATE_AGENT_STATUS: 1, MESSAGE_SUBSCRIPTION: 2 };
let nextId = 100;
const pending = new Map();
const samples = [];
let errors = 0;
let firstError = null;
let started = null;
let messageSubscriptionId = null;

async function startAgentSession() {
  const query = `mutation {
    startAgentSession(access_token: "${ACCESS_TOKEN}") {
      websocket_url
      session_id
      client_id
    }
  }`;
  const res = await fetch(GRAPHQL_URL, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  const body = await res.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data.startAgentSession;
}

// Every expected message not answered by now is an error, as in our bots (Tally::give_up in
// crates/zd-bench/src/echo.rs): a run that ends early must not read as a clean, short one.
function giveUp(why) {
  if (!firstError) firstError = why;
  errors += Math.max(0, EXPECT - samples.length - errors);
  finish();
}

let finished = false;
function finish() {
  if (finished) return;
  finished = true;
  const elapsed = started ? (Date.now() - started) / 1000 : 0;
  done([phase('echo', samples.length, errors, elapsed, samples, firstError)]);
  process.exit(0);
}

function stamp(text) {
  const words = text.split(' ');
  return words[0] === 'bench' && words.length >= 3 ? Number(words[2]) : null;
}

function sendMessage(webSocket, channelId, message, sentAt) {
  const id = nextId++;
  pending.set(id, sentAt);
  webSocket.send(
    JSON.stringify({
      payload: {
        query: `mutation {
          sendMessage(channel_id: ${JSON.stringify(channelId)}, msg: ${JSON.stringify(message)}) {
            success
          }
        }`,
      },
      type: 'request',
      id,
    }),
  );
}

async function main() {
  const session = await startAgentSession();
  const webSocket = new WebSocket(session.websocket_url);

  webSocket.on('open', () => {
    setInterval(() => webSocket.send(JSON.stringify({ sig: 'PING', payload: Date.now() })), 5000);
    webSocket.send(
      JSON.stringify({
        payload: { query: 'mutation { updateAgentStatus(status: ONLINE) { node { id } } }' },
        type: 'request',
        id: REQUEST_ID.UPDATE_AGENT_STATUS,
      }),
    );
    webSocket.send(
      JSON.stringify({
        payload: {
          query: `subscription {
            message {
              node {
                id
                content
                channel { id }
                from { __typename display_name }
              }
            }
          }`,
        },
        type: 'request',
        id: REQUEST_ID.MESSAGE_SUBSCRIPTION,
      }),
    );
  });

  webSocket.on('message', (data) => {
    const message = JSON.parse(data);
    if (message.id === REQUEST_ID.MESSAGE_SUBSCRIPTION) {
      messageSubscriptionId = message.payload.data.subscription_id;
      ready();
      return;
    }
    if (message.sig === 'DATA' && message.subscription_id === messageSubscriptionId) {
      const chatMessage = message.payload.data.message.node;
      if (chatMessage.from.__typename === 'Visitor') {
        if (started === null) started = Date.now();
        sendMessage(webSocket, chatMessage.channel.id, `echo: ${chatMessage.content}`, stamp(chatMessage.content));
      }
      return;
    }
    if (pending.has(message.id)) {
      const sentAt = pending.get(message.id);
      pending.delete(message.id);
      const ok = message.payload && message.payload.data && message.payload.data.sendMessage
        && message.payload.data.sendMessage.success;
      if (ok && sentAt !== null) {
        samples.push(unixMicros() - sentAt);
      } else {
        errors += 1;
        if (!firstError) firstError = JSON.stringify(message.payload ?? message).slice(0, 300);
      }
      if (samples.length + errors >= EXPECT) finish();
    }
  });

  webSocket.on('close', () => giveUp('socket closed'));
  // Without a listener an error (a reset) would crash the bot before 'close' counts its losses.
  webSocket.on('error', (e) => giveUp(`socket error: ${e.message}`));
}

setTimeout(() => giveUp(`timed out after ${TIMEOUT_S} s`), TIMEOUT_S * 1000).unref();

main().catch((e) => {
  console.error('echo_bot:', e);
  process.exit(1);
});
