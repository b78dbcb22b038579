// One tab = one device of the user named by ?user=. Two connections to the broker's WebSocket listener:
// - "live": a subscription from now on, without acks, so every open tab shows every new notification;
// - "inbox": the user's consumer group (durable, with an ack timeout), shared by all the user's tabs, which delivers what no
//   device has acknowledged yet: what was sent while every tab was closed, and again what nobody acknowledged in time.
import { ZaichikClient } from '/lib/zaichik/index.js';

const query = new URLSearchParams(location.search);
const user = query.get('user') ?? 'alice';

// A broker with tokens: the device's token (one that may subscribe to notifications.<user>), from ?token= in this demo.
const token = query.get('token');
const topic = `notifications.${user}`;
const list = document.getElementById('notifications');
const status = document.getElementById('status');
document.getElementById('user').textContent = user;

const items = new Map();

function show(message, how) {
  let item = items.get(message.sequence);
  if (!item) {
    item = document.createElement('li');
    item.dataset.sequence = String(message.sequence);
    item.dataset.acknowledged = 'false';
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = message.payloadText;
    const again = document.createElement('span');
    again.className = 'again';
    const ack = document.createElement('button');
    ack.textContent = 'Acknowledge';
    ack.addEventListener('click', () => acknowledge(message.sequence));
    item.append(text, again, ack);
    items.set(message.sequence, item);
    list.prepend(item);
  }

  item.dataset.via = how;
  if (message.deliveryCount > 1) {
    item.dataset.acknowledged = 'false';
    item.dataset.deliveries = String(message.deliveryCount);
    item.querySelector('.again').textContent = `shown again (delivery ${message.deliveryCount})`;
  }
}

let inbox;
async function acknowledge(sequence) {
  await inbox.commitOne(topic, sequence);
  const item = items.get(sequence);
  if (item) {
    item.dataset.acknowledged = 'true';
  }
}

async function main() {
  const response = await fetch(`/config?user=${encodeURIComponent(user)}`);
  if (!response.ok) {
    throw new Error(`the app refused user '${user}': ${response.status}`);
  }

  const config = await response.json();
  const live = await ZaichikClient.connect(config.webSocketUrl, { token });
  inbox = await ZaichikClient.connect(config.webSocketUrl, { token });
  live.on('disconnected', () => { status.textContent = 'reconnecting…'; status.dataset.state = 'reconnecting'; });
  live.on('reconnected', () => { status.textContent = 'connected'; status.dataset.state = 'connected'; });
  const fresh = await live.subscribe(topic, { from: 'latest', ackPolicy: 'none' });
  const mine = await inbox.subscribe(topic, { group: `inbox-${user}`, ackWaitMs: config.ackWaitMs, prefetch: 100 });
  status.textContent = 'connected';
  status.dataset.state = 'connected';
  (async () => { for await (const message of fresh) show(message, 'live'); })();
  (async () => { for await (const message of mine) show(message, 'inbox'); })();
}

document.getElementById('send').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = document.getElementById('text');
  await fetch('/notify', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, text: text.value }) });
  text.value = '';
});

main().catch((error) => {
  status.textContent = `error: ${error.codeName ?? ''} ${error.serverMessage ?? error.message}`;
  status.dataset.state = 'error';
  status.dataset.code = error.codeName ?? '';
  console.error(error);
});
